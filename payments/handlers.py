"""The handler of each Stripe event type, in one registry the inbox dispatches through; a handler runs in the
inbox's transaction, so the order's change and the event's status commit together."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from orders.logs import log_bind, log_fields
from orders.money import money_format
from orders.refunds import Applied, RefundTotals
from payments import gateway
from payments.models import EventStatus
from payments.refunds import NotOurs, order_for_payment_intent, stripe_dispute_apply, stripe_refund_apply
from payments.sessions import SessionDecision, checkout_session_apply


@dataclass(frozen=True)
class EventOutcome:
    """One event's status after a run, why, and the order and session it concerns. `duplicate`: it was
    already finished; `error`: it raised, stored as failed; a dry run's `status`: the stored one, or "new"."""

    stripe_id: str
    type: str
    status: str
    reason: str = ""
    order_id: uuid.UUID | None = None
    session_id: str = ""
    duplicate: bool = False
    error: bool = False
    # The signals its processing made due ("fulfillment", "refund", "dispute"), sent after its commit.
    owes: tuple[str, ...] = ()
    source: str = ""  # the transition source it was processed as

    @classmethod
    def of(cls, event: dict[str, Any], status: str, reason: str, **fields: Any) -> "EventOutcome":
        return cls(event["id"], event["type"], status, reason, **fields)

    @property
    def reply(self) -> str:
        """Return the short text a webhook answer carries."""
        return (
            f"duplicate: event already {self.status}" if self.duplicate else f"{self.status}: {self.reason}"
        )


ASYNC_PAYMENT_FAILED = "checkout.session.async_payment_failed"
EVENT_STATUSES = {
    SessionDecision.NOT_OURS: EventStatus.IGNORED,
    SessionDecision.AMOUNT_MISMATCH: EventStatus.NEEDS_REVIEW,
    SessionDecision.LATE_PAYMENT: EventStatus.NEEDS_REVIEW,
}


def checkout_session_event(event: dict[str, Any], source: str) -> EventOutcome:
    """Apply the event's Checkout Session to its order; the delayed payment failed if the type says so."""
    if (data := _object(event, "checkout.session")) is None:
        return _ignored(event, "event data is not a Checkout Session")
    session = gateway.CheckoutSession.from_payload(data)
    applied = checkout_session_apply(
        session=session,
        source=source,
        stripe_event_id=event["id"],
        payment_failed=event["type"] == ASYNC_PAYMENT_FAILED,
    )
    owes = ("fulfillment",) if applied.won and applied.transition.status == "fulfilled" else ()
    # A late payment is refunded at once: its refund's signal is due when Stripe took it.
    owes += ("refund",) if applied.decision == SessionDecision.LATE_PAYMENT else ()
    return EventOutcome.of(
        event,
        EVENT_STATUSES.get(applied.decision, EventStatus.PROCESSED),
        applied.reason,
        order_id=applied.order_id,
        session_id=session.id,
        owes=owes,
    )


def event_handle(*, event: dict[str, Any], source: str) -> EventOutcome:
    """Run the event's handler with the given transition source; ignore types without one, and events of
    the other mode than the key's (a live Connect endpoint receives both): they concern no order here."""
    livemode = event.get("livemode")
    if isinstance(livemode, bool) and livemode != gateway.key_is_live():
        mode, key = ("live", "test") if livemode else ("test", "live")
        return _ignored(event, f"a {mode}-mode event, and this shop uses a {key} key")
    handler = HANDLERS.get(event["type"])
    if handler is None:
        return _ignored(event, "unhandled event type")
    with log_fields(event_id=event["id"], event_type=event["type"]):
        return handler(event, source)


def _object(event: dict[str, Any], kind: str) -> dict[str, Any] | None:
    data = event["data"].get("object")
    if isinstance(data, dict) and data.get("object") == kind and data.get("id"):
        return data
    return None


def _ignored(event: dict[str, Any], reason: str) -> EventOutcome:
    return EventOutcome.of(event, EventStatus.IGNORED, reason)


def _money(totals: RefundTotals) -> str:
    returned = money_format(totals.amount_refunded, totals.currency)
    total = money_format(totals.amount_total, totals.currency)
    return f"refunded {returned} of {total}{'; order refunded' if totals.refunded_now else ''}"


def _recorded(
    event: dict[str, Any], kind: str, stripe_id: str, order_id: uuid.UUID, applied: Applied, *, new: str
) -> EventOutcome:
    """Say what the upsert of a refund or a dispute did; a changed one owes its signal (named `kind`)."""
    what = new if applied.created else ("updated" if applied.changed else "no-op: already as far or further")
    reason = f"{kind} {stripe_id} {applied.row.status}: {what}; {_money(applied.totals)}"
    owes = (kind,) if applied.changed else ()
    return EventOutcome.of(event, EventStatus.PROCESSED, reason, order_id=order_id, owes=owes)


def _apply_refund(refund: gateway.StripeRefund, event: dict[str, Any], source: str) -> EventOutcome:
    try:
        order_id, applied = stripe_refund_apply(refund=refund, source=source, stripe_event_id=event["id"])
    except NotOurs as exc:
        return _ignored(event, f"refund {refund.id} of a payment not made by this project: {exc}")
    return _recorded(
        event, "refund", refund.id, order_id, applied, new="recorded (unknown here: made in the Dashboard?)"
    )


def refund_changed(event: dict[str, Any], source: str) -> EventOutcome:
    """Record a refund as the event shows it (refund.created, refund.updated, refund.failed)."""
    if (data := _object(event, "refund")) is None:
        return _ignored(event, "event data is not a Refund")
    return _apply_refund(gateway.StripeRefund.from_payload(data), event, source)


def charge_refunded(event: dict[str, Any], source: str) -> EventOutcome:
    """Record every refund of the charge: those the event embeds, else those Stripe lists for the payment."""
    if (charge := _object(event, "charge")) is None:
        return _ignored(event, "event data is not a Charge")
    payment_intent_id = gateway.StripeRefund.from_payload({"id": "", **charge}).payment_intent_id
    try:
        order_id = order_for_payment_intent(payment_intent_id=payment_intent_id)
    except NotOurs as exc:
        return _ignored(event, f"charge {charge['id']} not made by this project: {exc}")
    log_bind(order_id=order_id)
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
    owes = tuple(sorted({kind for outcome in outcomes for kind in outcome.owes}))
    return EventOutcome.of(event, status, f"charge {charge['id']}: {reasons}", order_id=order_id, owes=owes)


def dispute_changed(event: dict[str, Any], source: str) -> EventOutcome:
    """Record a dispute as the event shows it (charge.dispute.created, .updated, .closed)."""
    if (data := _object(event, "dispute")) is None:
        return _ignored(event, "event data is not a Dispute")
    dispute = gateway.StripeDispute.from_payload(data)
    try:
        order_id, applied = stripe_dispute_apply(dispute=dispute, source=source, stripe_event_id=event["id"])
    except NotOurs as exc:
        return _ignored(event, f"dispute {dispute.id} of a payment not made by this project: {exc}")
    return _recorded(event, "dispute", dispute.id, order_id, applied, new="recorded")


HANDLERS: dict[str, Callable[[dict[str, Any], str], EventOutcome]] = {
    "checkout.session.completed": checkout_session_event,
    "checkout.session.async_payment_succeeded": checkout_session_event,
    ASYNC_PAYMENT_FAILED: checkout_session_event,
    "checkout.session.expired": checkout_session_event,
    "charge.refunded": charge_refunded,
    "refund.created": refund_changed,
    "refund.updated": refund_changed,
    "refund.failed": refund_changed,
    "charge.dispute.created": dispute_changed,
    "charge.dispute.updated": dispute_changed,
    "charge.dispute.closed": dispute_changed,
}
