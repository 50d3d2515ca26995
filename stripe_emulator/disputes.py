"""Disputes (chargebacks and inquiries): opened, updated and closed as a card network would."""

from __future__ import annotations

import copy
import time
from typing import Any

from . import charges, objects
from .config import ConfigHolder
from .currency import format_amount
from .errors import StripeError
from .events import EventEmitter
from .store import EventRecord, Store

DISPUTE_REASONS = (
    "bank_cannot_process",
    "check_returned",
    "credit_not_processed",
    "customer_initiated",
    "debit_not_authorized",
    "duplicate",
    "fraudulent",
    "general",
    "incorrect_account_details",
    "insufficient_funds",
    "noncompliant",
    "product_not_received",
    "product_unacceptable",
    "subscription_canceled",
    "unrecognized",
)
OPEN_STATUSES = ("needs_response", "warning_needs_response")
UPDATE_STATUSES = ("needs_response", "under_review", "warning_needs_response", "warning_under_review")
CLOSED_STATUSES = ("won", "lost", "warning_closed")
EVIDENCE_WINDOW = 7 * 24 * 60 * 60


class DisputeFlow:
    """Open, update and close disputes, emitting charge.dispute.* events."""

    def __init__(self, store: Store, config: ConfigHolder, emitter: EventEmitter) -> None:
        self._store = store
        self._config = config
        self._emitter = emitter

    def open(
        self,
        *,
        charge_id: str | None,
        intent_id: str | None,
        reason: str | None,
        amount: int | None,
        status: str | None,
    ) -> dict[str, Any]:
        """Open a dispute on a charge (a chargeback, or an inquiry with a warning_ status)."""
        reason = reason or "fraudulent"
        status = status or "needs_response"
        _check_choice("reason", reason, DISPUTE_REASONS)
        _check_choice("status", status, OPEN_STATUSES)
        with self._store.lock:
            charge = charges.find_charge(
                self._store, charge_id=charge_id, intent_id=intent_id, purpose="dispute"
            )
            existing = charges.dispute_of(self._store, charge["id"])
            if existing is not None:
                raise StripeError(409, f"Charge {charge['id']} is already disputed ({existing['id']}).")
            disputable = charge["amount"] - charge["amount_refunded"]
            if disputable <= 0:
                raise StripeError(
                    409, f"Charge {charge['id']} has been fully refunded; it can no longer be disputed."
                )
            if amount is not None and not 0 < amount <= disputable:
                raise StripeError.invalid(
                    f"Dispute amount must be more than zero and at most the charge's unrefunded amount "
                    f"({format_amount(disputable, charge['currency'])}).",
                    param="amount",
                )
            now = int(time.time())
            dispute = objects.dispute(
                charge_obj=charge,
                amount=disputable if amount is None else amount,
                reason=reason,
                status=status,
                due_by=now + EVIDENCE_WINDOW,
                created=now,
            )
            self._store.add("disputes", dispute)
            charge["disputed"] = True
            record = self._emitter.record("charge.dispute.created", dispute)
            result = copy.deepcopy(dispute)
        self._publish(record)
        return result

    def update(self, dispute_id: str, status: str) -> dict[str, Any]:
        """Move an open dispute to another open status (e.g. under_review once evidence is in)."""
        _check_choice("status", status, UPDATE_STATUSES)
        with self._store.lock:
            dispute = self._open_dispute(dispute_id)
            dispute["status"] = status
            dispute["is_charge_refundable"] = status.startswith("warning_")
            record = self._emitter.record("charge.dispute.updated", dispute)
            result = copy.deepcopy(dispute)
        self._publish(record)
        return result

    def close(self, dispute_id: str, outcome: str) -> dict[str, Any]:
        """Close a dispute: won or lost for a chargeback, warning_closed for an inquiry."""
        _check_choice("outcome", outcome, CLOSED_STATUSES)
        with self._store.lock:
            dispute = self._open_dispute(dispute_id)
            inquiry = dispute["status"].startswith("warning_")
            if inquiry != (outcome == "warning_closed"):
                allowed = "warning_closed" if inquiry else "won or lost"
                raise StripeError.invalid(
                    f"A dispute with status `{dispute['status']}` closes as {allowed}, not {outcome}.",
                    param="outcome",
                )
            dispute["status"] = outcome
            record = self._emitter.record("charge.dispute.closed", dispute)
            result = copy.deepcopy(dispute)
        self._publish(record)
        return result

    def _open_dispute(self, dispute_id: str) -> dict[str, Any]:
        dispute = self._store.get("disputes", dispute_id)
        if dispute is None:
            raise StripeError.no_such("dispute", dispute_id)
        if dispute["status"] in CLOSED_STATUSES:
            raise StripeError(
                409, f"Dispute {dispute_id} is closed (status `{dispute['status']}`); it cannot change."
            )
        return dispute

    def _publish(self, record: EventRecord) -> None:
        wait = self._config.snapshot().webhook_timing == "before_redirect"
        self._emitter.publish(record, wait_first_attempt=wait)


def _check_choice(param: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise StripeError.invalid(f"Invalid {param}: must be one of {', '.join(choices)}", param=param)
