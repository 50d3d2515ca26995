"""Handlers of Stripe's refund and dispute events, registered into `payments.handlers.HANDLERS`.

Each reads the refund or dispute object the signed event carries and hands it to the one upsert
(`payments.services.refunds`, which the audit's repairs call too): it finds the order by payment intent,
and rows never move backwards and the refunded amount is recomputed from the rows, so duplicated,
reordered and replayed events are harmless, and a refund made in Stripe's Dashboard is recorded like one
made here. Payments this project did not take are ignored.

Unlike the checkout handlers these may call Stripe, rarely: to find the order of a payment whose id was
never stored (through the PaymentIntent's metadata), and to list a charge's refunds, which `charge.refunded`
no longer embeds.
"""

from dataclasses import replace
from typing import Any

from orders.refunds import RefundTotals
from payments import gateway
from payments.handlers import Handler
from payments.models import EventStatus
from payments.outcome import EventOutcome
from payments.services.refunds import (
    PaymentNotOurs,
    order_for_payment_intent,
    stripe_dispute_apply,
    stripe_refund_apply,
)


def _object(event: dict[str, Any], kind: str) -> dict[str, Any] | None:
    data = event["data"].get("object")
    if isinstance(data, dict) and data.get("object") == kind and data.get("id"):
        return data
    return None


def _ignored(event: dict[str, Any], reason: str) -> EventOutcome:
    return EventOutcome.of(event, EventStatus.IGNORED, reason)


def _money(totals: RefundTotals) -> str:
    full = "; order refunded" if totals.refunded_now else ""
    return f"refunded {totals.amount_refunded} of {totals.amount_total}{full}"


def _apply_refund(refund: gateway.StripeRefund, event: dict[str, Any], source: str) -> EventOutcome:
    try:
        order_id, applied = stripe_refund_apply(refund=refund, source=source, stripe_event_id=event["id"])
    except PaymentNotOurs as exc:
        return _ignored(event, f"refund {refund.id} of a payment not made by this project: {exc}")
    what = (
        "recorded (unknown here: made in the Dashboard?)"
        if applied.created
        else ("updated" if applied.changed else "no-op: already as far or further")
    )
    return EventOutcome.of(
        event,
        EventStatus.PROCESSED,
        f"refund {refund.id} {applied.refund.status}: {what}; {_money(applied.totals)}",
        order_id=order_id,
    )


def refund_changed(event: dict[str, Any], source: str) -> EventOutcome:
    """Record a refund as the event shows it (refund.created, refund.updated, refund.failed)."""
    data = _object(event, "refund")
    if data is None:
        return _ignored(event, "event data is not a Refund")
    return _apply_refund(gateway.StripeRefund.from_payload(data), event, source)


def charge_refunded(event: dict[str, Any], source: str) -> EventOutcome:
    """Record every refund of the charge: those the event embeds, else those Stripe lists for the payment."""
    charge = _object(event, "charge")
    if charge is None:
        return _ignored(event, "event data is not a Charge")
    payment_intent_id = gateway.StripeRefund.from_payload({"id": "", **charge}).payment_intent_id
    try:
        order_id = order_for_payment_intent(payment_intent_id=payment_intent_id)
    except PaymentNotOurs as exc:
        return _ignored(event, f"charge {charge['id']} not made by this project: {exc}")
    embedded = charge.get("refunds") or {}
    if embedded.get("data") and not embedded.get("has_more"):
        # API versions before 2022-11-15 embed the refunds, without their payment intent: it is the charge's.
        refunds = [
            replace(refund, payment_intent_id=refund.payment_intent_id or payment_intent_id)
            for refund in map(gateway.StripeRefund.from_payload, embedded["data"])
        ]
    else:
        refunds = gateway.refunds_list(payment_intent_id=payment_intent_id)
    outcomes = [_apply_refund(refund, event, source) for refund in refunds]
    reasons = "; ".join(o.reason for o in outcomes) or "no refund found"
    # The charge is this order's, so a refund that could not be recorded leaves the order off Stripe's money.
    applied = any(o.status == EventStatus.PROCESSED for o in outcomes)
    status = EventStatus.PROCESSED if applied else EventStatus.NEEDS_REVIEW
    return EventOutcome.of(event, status, f"charge {charge['id']}: {reasons}", order_id=order_id)


def dispute_changed(event: dict[str, Any], source: str) -> EventOutcome:
    """Record a dispute as the event shows it (charge.dispute.created, .updated, .closed)."""
    data = _object(event, "dispute")
    if data is None:
        return _ignored(event, "event data is not a Dispute")
    dispute = gateway.StripeDispute.from_payload(data)
    try:
        order_id, applied = stripe_dispute_apply(dispute=dispute, source=source, stripe_event_id=event["id"])
    except PaymentNotOurs as exc:
        return _ignored(event, f"dispute {dispute.id} of a payment not made by this project: {exc}")
    what = "recorded" if applied.created else ("updated" if applied.changed else "no-op: already further")
    return EventOutcome.of(
        event,
        EventStatus.PROCESSED,
        f"dispute {dispute.id} {applied.dispute.status}: {what}; {_money(applied.totals)}",
        order_id=order_id,
    )


HANDLERS: dict[str, Handler] = {
    "charge.refunded": charge_refunded,
    "refund.created": refund_changed,
    "refund.updated": refund_changed,
    "refund.failed": refund_changed,
    "charge.dispute.created": dispute_changed,
    "charge.dispute.updated": dispute_changed,
    "charge.dispute.closed": dispute_changed,
}
