"""The emulator without its HTTP front: state, knobs, webhooks and checkout flows."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from . import promotions
from .api import StripeApi
from .cart_api import CartApi
from .checkout import CheckoutFlow
from .config import ConfigHolder
from .disputes import DisputeFlow
from .events import EventEmitter
from .idempotency import IdempotencyCache
from .money_api import MoneyApi
from .refunds import RefundFlow
from .scheduler import Scheduler
from .state_file import StateFile
from .store import Store
from .webhooks import Dispatcher


class Emulator:
    """Wire the store, the webhook dispatcher and the flows together."""

    def __init__(
        self,
        base_url: Callable[[], str],
        *,
        state_file: str | os.PathLike[str] | None = None,
        **settings: Any,
    ) -> None:
        self.config = ConfigHolder(**settings)
        self.store = Store()
        # Background jobs (deliveries, settlements, the expiry sweep) change state too.
        self.scheduler = Scheduler(after_job=self.save_state)
        self.dispatcher = Dispatcher(self.config, self.scheduler, self.store.mark_delivered)
        self.emitter = EventEmitter(self.store, self.config, self.dispatcher)
        self.flow = CheckoutFlow(self.store, self.config, self.emitter, self.scheduler)
        self.refunds = RefundFlow(self.store, self.config, self.emitter)
        self.disputes = DisputeFlow(self.store, self.config, self.emitter)
        self.api = StripeApi(self.store, self.flow, base_url)
        self.money_api = MoneyApi(self.store, self.refunds)
        self.cart_api = CartApi(self.store)
        self.idempotency = IdempotencyCache()
        self._base_url = base_url
        self._state_file = StateFile(state_file) if state_file is not None else None
        if self._state_file is not None:
            self._state_file.load(self.store, self.idempotency)

    def start_background(self) -> None:
        """Start the worker threads and the expiry sweeper; resume what a restart interrupted."""
        self.scheduler.start()
        self.flow.start_sweeper()
        self.flow.resume(self._base_url())

    def stop_background(self) -> None:
        """Stop the worker threads without waiting for deliveries in flight."""
        self.scheduler.stop()

    def save_state(self) -> None:
        """Rewrite the state file, if there is one and something changed; never call holding store.lock."""
        if self._state_file is None:
            return
        try:
            self._state_file.save(self.store, self.idempotency)
        except OSError as exc:
            # The emulator keeps serving from memory; the next change tries again.
            print(f"stripe-emulator: cannot write {self._state_file.path}: {exc}", file=sys.stderr)

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change webhook_url, webhook_secrets or knobs; return the whole config."""
        config = self.config.update(**changes)
        if "seed" in changes:
            self.dispatcher.reseed(config.seed)
        return config.to_dict()

    def get_config(self) -> dict[str, Any]:
        """Return the current config."""
        return self.config.snapshot().to_dict()

    def reset(self) -> None:
        """Forget objects, events, deliveries and idempotency keys; keep config and seed."""
        # The randomness restarts from `seed`, so a seeded run repeats after each reset.
        with self.store.lock:
            self.store.clear()
            self.idempotency.clear()
        self.dispatcher.reset()

    def wait_for_idle(self, timeout: float = 10.0) -> bool:
        """Return True once no delivery is pending or in flight (held ones excluded)."""
        return self.dispatcher.wait_for_idle(timeout)

    def deliveries(self) -> list[dict[str, Any]]:
        """Return the delivery log, oldest first."""
        return self.dispatcher.log()

    def release_webhooks(self) -> int:
        """Send the held deliveries; return how many were released."""
        return self.dispatcher.release()

    def pay(
        self,
        session_id: str,
        method: str = "card",
        *,
        email: str | None = None,
        name: str | None = None,
        shipping: dict[str, Any] | None = None,
        shipping_rate: str | None = None,
        promotion_code: str | None = None,
    ) -> dict[str, Any]:
        """Pay a session as the hosted page would; return the session and redirect_url."""
        return self.flow.pay(
            session_id,
            method,
            email=email,
            name=name,
            shipping=shipping,
            shipping_rate=shipping_rate,
            promotion_code=promotion_code,
        )

    def create_promotion_code(self, **fields: Any) -> dict[str, Any]:
        """Create a promotion code and its coupon; return both (fields as POST /_emulator/promotion_codes)."""
        return promotions.create(self.store, fields)

    def tamper(self, session_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Force a session's amount_total, amount_subtotal or total_details; return the session."""
        return self.flow.tamper(session_id, changes)

    def settle(self, session_id: str) -> dict[str, Any]:
        """Settle a session's pending delayed payment now; return the session."""
        return self.flow.settle(session_id)

    def expire(self, session_id: str) -> dict[str, Any]:
        """Expire an open session now; return the session."""
        return self.flow.expire(session_id)

    def refund(
        self,
        *,
        payment_intent: str | None = None,
        charge: str | None = None,
        amount: int | None = None,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Refund a payment as the Stripe Dashboard would (no API request); return the refund."""
        return self.refunds.create(
            charge_id=charge, intent_id=payment_intent, amount=amount, reason=reason, metadata=metadata or {}
        )

    def settle_refund(
        self, refund_id: str, outcome: str = "succeeded", failure_reason: str | None = None
    ) -> dict[str, Any]:
        """Settle a pending refund as succeeded, failed or canceled; return the refund."""
        return self.refunds.settle(refund_id, outcome, failure_reason)

    def open_dispute(
        self,
        *,
        payment_intent: str | None = None,
        charge: str | None = None,
        reason: str | None = None,
        amount: int | None = None,
        status: str | None = None,
    ) -> dict[str, Any]:
        """Open a dispute on a payment; return the dispute."""
        return self.disputes.open(
            charge_id=charge, intent_id=payment_intent, reason=reason, amount=amount, status=status
        )

    def update_dispute(self, dispute_id: str, status: str) -> dict[str, Any]:
        """Move an open dispute to another open status; return the dispute."""
        return self.disputes.update(dispute_id, status)

    def close_dispute(self, dispute_id: str, outcome: str) -> dict[str, Any]:
        """Close a dispute as won, lost or warning_closed; return the dispute."""
        return self.disputes.close(dispute_id, outcome)
