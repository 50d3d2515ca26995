"""Refunds: create them against a charge, settle pending ones, keep the charge's totals."""

from __future__ import annotations

import copy
import time
from typing import Any

from . import charges, objects
from .config import ConfigHolder
from .currency import format_amount
from .errors import StripeError
from .events import EventEmitter
from .ids import new_id
from .store import EventRecord, Store

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
SETTLE_OUTCOMES = ("succeeded", "failed", "canceled")
FAILURE_REASONS = (
    "charge_for_pending_refund_disputed",
    "declined",
    "expired_or_canceled_card",
    "insufficient_funds",
    "lost_or_stolen_card",
    "merchant_request",
    "unknown",
)
DEFAULT_FAILURE_REASON = "expired_or_canceled_card"
NO_REQUEST: dict[str, Any] = {"request_id": None, "idempotency_key": None}


class RefundFlow:
    """Refund charges as the Refunds API or the Dashboard would, and settle pending refunds."""

    def __init__(self, store: Store, config: ConfigHolder, emitter: EventEmitter) -> None:
        self._store = store
        self._config = config
        self._emitter = emitter

    def create(
        self,
        *,
        charge_id: str | None,
        intent_id: str | None,
        amount: int | None,
        reason: str | None,
        metadata: dict[str, str],
        request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Refund `amount` (default: all that remains) of a charge; return the refund as created."""
        if reason is not None and reason not in REFUND_REASONS:
            raise StripeError.invalid(
                f"Invalid reason: must be one of {', '.join(REFUND_REASONS)}", param="reason"
            )
        request = {"request_id": request_id, "idempotency_key": idempotency_key}
        # Checking what remains and taking it happen under one lock, so two refunds of
        # the last amount at the same moment make one refund and one refusal.
        with self._store.lock:
            charge = charges.find_charge(self._store, charge_id=charge_id, intent_id=intent_id)
            amount = self._refundable_amount(charge, amount)
            outcome = self._next_outcome()
            refund = objects.refund(
                charge_obj=charge,
                amount=amount,
                reason=reason,
                metadata=metadata,
                status="succeeded" if outcome == "succeeded" else "pending",
                created=int(time.time()),
            )
            self._store.add("refunds", refund)
            records = [self._emitter.record("refund.created", refund, **request)]
            if outcome == "succeeded":
                records.append(self._refresh_charge(charge, request))
            result = copy.deepcopy(refund)
            if outcome == "failed":
                # The bank turns it down later, on no request of the caller's.
                records += self._settle(refund, "failed", DEFAULT_FAILURE_REASON, NO_REQUEST)
        self._publish(records)
        return result

    def settle(self, refund_id: str, outcome: str, failure_reason: str | None = None) -> dict[str, Any]:
        """Move a pending refund to succeeded, failed or canceled; return the refund."""
        if outcome not in SETTLE_OUTCOMES:
            raise StripeError.invalid(
                f"Invalid outcome: must be one of {', '.join(SETTLE_OUTCOMES)}", param="outcome"
            )
        if failure_reason is not None and (outcome != "failed" or failure_reason not in FAILURE_REASONS):
            raise StripeError.invalid(
                f"Invalid failure_reason: only a failed refund has one, one of {', '.join(FAILURE_REASONS)}",
                param="failure_reason",
            )
        with self._store.lock:
            refund = self._store.get("refunds", refund_id)
            if refund is None:
                raise StripeError.no_such("refund", refund_id)
            if refund["status"] != "pending":
                raise StripeError(
                    409,
                    f"Refund {refund_id} cannot be settled: its status is `{refund['status']}`, "
                    "and only pending refunds settle.",
                )
            records = self._settle(refund, outcome, failure_reason or DEFAULT_FAILURE_REASON, NO_REQUEST)
            result = copy.deepcopy(refund)
        self._publish(records)
        return result

    def _refundable_amount(self, charge: dict[str, Any], amount: int | None) -> int:
        dispute = charges.dispute_of(self._store, charge["id"])
        if dispute is not None and not dispute["is_charge_refundable"]:
            raise StripeError.invalid(
                f"Charge {charge['id']} has been charged back; cannot issue a refund.", code="charge_disputed"
            )
        remaining = charges.unrefunded(self._store, charge)
        if remaining <= 0:
            raise StripeError.invalid(
                f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
            )
        if amount is None:
            return remaining
        if amount > remaining:
            currency = charge["currency"]
            raise StripeError.invalid(
                f"Refund amount ({format_amount(amount, currency)}) is greater than unrefunded amount "
                f"on charge ({format_amount(remaining, currency)})",
                param="amount",
                code="amount_too_large",
            )
        return amount

    def _next_outcome(self) -> str:
        # The "next N" knobs are taken only once the refund is accepted.
        if self._config.take_one("fail_next_refunds"):
            return "failed"
        if self._config.take_one("pending_next_refunds"):
            return "pending"
        return self._config.snapshot().refund_mode

    def _settle(
        self, refund: dict[str, Any], outcome: str, failure_reason: str, request: dict[str, Any]
    ) -> list[EventRecord]:
        refund["status"] = outcome
        if outcome == "failed":
            refund["failure_balance_transaction"] = new_id("txn_")
            refund["failure_reason"] = failure_reason
        records = [self._emitter.record("refund.updated", refund, **request)]
        if outcome == "succeeded":
            charge = self._store.get("charges", refund["charge"])
            assert charge is not None
            records.append(self._refresh_charge(charge, request))
        elif outcome == "failed":
            records.append(self._emitter.record("refund.failed", refund, **request))
        return records

    def _refresh_charge(self, charge: dict[str, Any], request: dict[str, Any]) -> EventRecord:
        charges.refresh_refunded(self._store, charge)
        return self._emitter.record("charge.refunded", charge, **request)

    def _publish(self, records: list[EventRecord]) -> None:
        # before_redirect: the caller's answer waits for the first delivery of each event,
        # so a webhook lands before the API call returns, as it can on Stripe.
        wait = self._config.snapshot().webhook_timing == "before_redirect"
        for record in records:
            self._emitter.publish(record, wait_first_attempt=wait)
