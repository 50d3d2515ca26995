"""Charges: created when a payment succeeds; the money that refunds and disputes act on."""

from __future__ import annotations

from typing import Any

from . import objects
from .errors import StripeError
from .store import Store

# Refunds in these states hold part of the charge: it cannot be refunded again.
HOLDING_REFUND_STATUSES = ("pending", "succeeded")


def record_charge(
    store: Store, intent: dict[str, Any], *, email: str | None, name: str | None, created: int
) -> dict[str, Any]:
    """Create the succeeded charge of `intent` and point its latest_charge at it; hold the lock."""
    charge = objects.charge(intent=intent, email=email, name=name, created=created)
    store.add("charges", charge)
    intent["latest_charge"] = charge["id"]
    return charge


def find_charge(
    store: Store, *, charge_id: str | None, intent_id: str | None, purpose: str = "refund"
) -> dict[str, Any]:
    """Return the charge named directly or through its PaymentIntent; hold the lock."""
    if charge_id and intent_id:
        raise StripeError.invalid(
            "You may only specify one of these parameters: charge, payment_intent.", param="charge"
        )
    if intent_id:
        intent = store.get("payment_intents", intent_id)
        if intent is None:
            raise StripeError.no_such("payment_intent", intent_id, param="payment_intent", status=400)
        if intent["latest_charge"] is None:
            raise StripeError.invalid(
                f"This PaymentIntent ({intent_id}) does not have a successful charge to {purpose}.",
                param="payment_intent",
            )
        charge_id = intent["latest_charge"]
    if not charge_id:
        raise StripeError.invalid(
            "One of the following params should be provided for this request: charge or payment_intent.",
            param="charge",
            code="parameter_missing",
        )
    charge = store.get("charges", charge_id)
    if charge is None:
        raise StripeError.no_such("charge", charge_id, param="charge", status=400)
    return charge


def refunds_of(store: Store, charge_id: str) -> list[dict[str, Any]]:
    """Return the charge's refunds, newest first."""
    return store.where("refunds", "charge", charge_id)


def dispute_of(store: Store, charge_id: str) -> dict[str, Any] | None:
    """Return the charge's dispute (a charge has at most one), or None."""
    found = store.where("disputes", "charge", charge_id)
    return found[0] if found else None


def unrefunded(store: Store, charge: dict[str, Any]) -> int:
    """Return what can still be refunded: pending refunds count as refunded already."""
    held = sum(r["amount"] for r in refunds_of(store, charge["id"]) if r["status"] in HOLDING_REFUND_STATUSES)
    return charge["amount"] - held


def refresh_refunded(store: Store, charge: dict[str, Any]) -> None:
    """Recompute the charge's amount_refunded and refunded from its succeeded refunds."""
    charge["amount_refunded"] = sum(
        r["amount"] for r in refunds_of(store, charge["id"]) if r["status"] == "succeeded"
    )
    charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
