"""The customer's side of Checkout: paying, settling delayed payments, expiring."""

from __future__ import annotations

import contextlib
import copy
import time
from typing import Any

from . import cart, charges, objects, promotions
from .config import ConfigHolder
from .errors import StripeError
from .events import EventEmitter
from .scheduler import Scheduler
from .shipping import keep_shipping, shipping_choice
from .store import EventRecord, Store

PAY_METHODS = ("card", "delayed_success", "delayed_failure")
DEFAULT_EMAIL = "customer@example.com"
DEFAULT_NAME = "Jenny Rosen"
SESSION_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"
SWEEP_INTERVAL = 1.0


class CheckoutFlow:
    """Change sessions the way a customer on the hosted page (or time) would."""

    def __init__(
        self, store: Store, config: ConfigHolder, emitter: EventEmitter, scheduler: Scheduler
    ) -> None:
        self._store = store
        self._config = config
        self._emitter = emitter
        self._scheduler = scheduler

    def start_sweeper(self) -> None:
        """Expire overdue sessions about once a second from now on."""

        def sweep() -> None:
            self.expire_overdue()
            self._scheduler.call_later(SWEEP_INTERVAL, sweep)

        self._scheduler.call_later(SWEEP_INTERVAL, sweep)

    def resume(self, base_url: str) -> None:
        """Carry on after a start: arm delayed payments waiting to settle, point open sessions here."""
        delay = self._config.snapshot().async_delay
        with self._store.lock:
            generation = self._store.generation
            waiting = [sid for sid, state in self._store.session_state.items() if state.pending_outcome]
            for session in self._store.newest_first("sessions"):
                url = f"{base_url}/pay/{session['id']}"
                if session["status"] == "open" and session["url"] != url:
                    session["url"] = url
                    self._store.touch()
        for session_id in waiting:
            self._scheduler.call_later(delay, lambda sid=session_id: self._settle_later(sid, generation))

    def pay(
        self,
        session_id: str,
        method: str,
        *,
        email: str | None = None,
        name: str | None = None,
        shipping: dict[str, Any] | None = None,
        shipping_rate: str | None = None,
        promotion_code: str | None = None,
    ) -> dict[str, Any]:
        """Pay an open session; return the session and where the browser goes next.

        `shipping` ({"name", "address": {...}}) and `shipping_rate` are the customer's choices on a
        session that offers them; `promotion_code` is a code typed just before paying.
        """
        if method not in PAY_METHODS:
            raise StripeError.invalid(
                f"Invalid method: must be one of {', '.join(PAY_METHODS)}", param="method"
            )
        self.expire_overdue(session_id)
        cfg = self._config.snapshot()
        with self._store.lock:
            session = self._payable(session_id)
            state = self._store.session_state[session_id]
            shipping_details, rate_id = shipping_choice(session, details=shipping, rate_id=shipping_rate)
            if promotion_code:
                cart.apply_promotion_code(self._store, session, promotion_code)
            now = int(time.time())
            keep_shipping(session, shipping_details, rate_id)
            session["customer_details"] = objects.customer_details(
                email=email or session["customer_email"] or DEFAULT_EMAIL, name=name or DEFAULT_NAME
            )
            cart.refresh(self._store, session, state, tax_rates=cfg.tax_rates)
            session["status"] = "complete"
            session["url"] = None
            self._redeem(session)
            delayed = method != "card" and session["amount_total"] > 0
            if session["amount_total"] > 0:
                intent = objects.payment_intent(
                    amount=session["amount_total"],
                    currency=session["currency"],
                    status="processing" if delayed else "succeeded",
                    method_type="us_bank_account" if delayed else "card",
                    metadata=dict(state.intent_metadata),
                    description=state.intent_description,
                    receipt_email=None,
                    created=now,
                )
                if shipping_details is not None:
                    intent["shipping"] = {
                        **shipping_details,
                        "carrier": None,
                        "phone": None,
                        "tracking_number": None,
                    }
                self._store.add("payment_intents", intent)
                session["payment_intent"] = intent["id"]
                if delayed:
                    state.pending_outcome = "succeeded" if method == "delayed_success" else "failed"
                else:
                    session["payment_status"] = "paid"
                    self._charge(session, intent, now)
            record = self._emitter.record("checkout.session.completed", session)
            result = copy.deepcopy(session)
            generation = self._store.generation
        self._emitter.publish(record, wait_first_attempt=cfg.webhook_timing == "before_redirect")
        if delayed:
            self._scheduler.call_later(cfg.async_delay, lambda: self._settle_later(session_id, generation))
        redirect = result["success_url"].replace(SESSION_PLACEHOLDER, session_id)
        return {"session": result, "redirect_url": redirect}

    def apply_promotion_code(self, session_id: str, code: str) -> dict[str, Any]:
        """Apply a code the customer typed on the payment page; return the session."""
        self.expire_overdue(session_id)
        cfg = self._config.snapshot()
        with self._store.lock:
            session = self._payable(session_id)
            cart.apply_promotion_code(self._store, session, code)
            cart.refresh(self._store, session, self._store.session_state[session_id], tax_rates=cfg.tax_rates)
            self._store.touch()
            return copy.deepcopy(session)

    def tamper(self, session_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Force a session's amounts so they no longer add up (a test control); return the session."""
        with self._store.lock:
            session = self._existing(session_id)
            cart.tamper(session, self._store.session_state[session_id], changes)
            self._store.touch()
            return copy.deepcopy(session)

    def settle(self, session_id: str) -> dict[str, Any]:
        """Settle a pending delayed payment now; return the session."""
        with self._store.lock:
            session = self._existing(session_id)
            state = self._store.session_state[session_id]
            if state.pending_outcome is None:
                raise StripeError(
                    409, f"Checkout Session {session_id} has no delayed payment waiting to settle."
                )
            intent = self._store.get("payment_intents", session["payment_intent"])
            assert intent is not None
            if state.pending_outcome == "succeeded":
                session["payment_status"] = "paid"
                intent.update(status="succeeded", amount_received=intent["amount"])
                self._charge(session, intent, int(time.time()))
                event_type = "checkout.session.async_payment_succeeded"
            else:
                intent.update(
                    status="requires_payment_method",
                    last_payment_error={
                        "code": "payment_method_provider_decline",
                        "decline_code": "generic_decline",
                        "message": "The payment was declined by the customer's bank.",
                        "type": "card_error",
                    },
                )
                event_type = "checkout.session.async_payment_failed"
            state.pending_outcome = None
            record = self._emitter.record(event_type, session)
            result = copy.deepcopy(session)
        self._emitter.publish(record)
        return result

    def expire(
        self, session_id: str, *, request_id: str | None = None, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Expire an open session and emit checkout.session.expired; return the session."""
        self.expire_overdue(session_id)
        with self._store.lock:
            session = self._existing(session_id)
            if session["status"] != "open":
                raise StripeError.invalid(
                    'Only Checkout Sessions with a status in ["open"] can be expired. '
                    f"This Checkout Session has a status of `{session['status']}`."
                )
            record = self._expire(session, request_id, idempotency_key)
            result = copy.deepcopy(session)
        self._emitter.publish(record)
        return result

    def expire_overdue(self, session_id: str | None = None) -> None:
        """Expire open sessions whose expires_at has passed (only `session_id`, if given)."""
        now = time.time()
        with self._store.lock:
            if session_id is None:
                candidates = self._store.pop_due_sessions(now)
            else:
                found = self._store.get("sessions", session_id)
                candidates = [found] if found is not None else []
            records = [
                self._expire(s, None, None)
                for s in candidates
                if s["status"] == "open" and s["expires_at"] <= now
            ]
        for record in records:
            self._emitter.publish(record)

    def _expire(
        self, session: dict[str, Any], request_id: str | None, idempotency_key: str | None
    ) -> EventRecord:
        session["status"] = "expired"
        session["url"] = None
        return self._emitter.record(
            "checkout.session.expired", session, request_id=request_id, idempotency_key=idempotency_key
        )

    def _redeem(self, session: dict[str, Any]) -> None:
        for entry in session["discounts"]:
            promo = self._store.get("promotion_codes", entry["promotion_code"])
            assert promo is not None
            promo["times_redeemed"] += 1
            promotions.coupon_of(self._store, promo)["times_redeemed"] += 1

    def _charge(self, session: dict[str, Any], intent: dict[str, Any], now: int) -> None:
        details = session["customer_details"] or {}
        charges.record_charge(
            self._store, intent, email=details.get("email"), name=details.get("name"), created=now
        )

    def _existing(self, session_id: str) -> dict[str, Any]:
        session = self._store.get("sessions", session_id)
        if session is None:
            raise StripeError.no_such("checkout.session", session_id)
        return session

    def _payable(self, session_id: str) -> dict[str, Any]:
        session = self._existing(session_id)
        if session["status"] == "complete":
            raise StripeError(409, "This Checkout Session is already complete; it cannot be paid again.")
        if session["status"] == "expired":
            raise StripeError(409, "This Checkout Session has expired; it can no longer be paid.")
        return session

    def _settle_later(self, session_id: str, generation: int) -> None:
        with self._store.lock:
            state = self._store.session_state.get(session_id)
            if generation != self._store.generation or state is None:
                return
            if state.pending_outcome is None:
                return
        # It may have been settled through the control API in the meantime.
        with contextlib.suppress(StripeError):
            self.settle(session_id)
