"""One handler per Stripe event type, and the registry the inbox dispatches through.

A handler reads the signed event (the truth at its moment; no Stripe call is made), asks the order
state machine for a transition and says what happened as an `Outcome`. It runs inside the inbox's
transaction, so the transition and the event's new status commit together. A transition that loses
(the order already moved) is a normal outcome: states only move forward, so arrival order is harmless.
"""

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orders import transitions
from orders.exceptions import OrderNotFound
from orders.models import Order
from orders.selectors import order_get_for_payment
from orders.services import order_attach_checkout_session, order_mark_payment_pending
from payments.gateway import CheckoutSession
from payments.models import EventStatus
from payments.services.matching import session_charge_mismatch

logger = logging.getLogger(__name__)

PAID_STATUSES = frozenset({"paid", "no_payment_required"})


@dataclass(frozen=True)
class Outcome:
    """What handling an event did: the event's final status, why, and the order it concerns."""

    status: str
    reason: str
    order_id: uuid.UUID | None = None
    session_id: str = ""


Handler = Callable[[dict[str, Any], str], Outcome]


class _Ignored(Exception):
    """The event is not this project's to act on; the message says why."""

    def __init__(self, reason: str, session_id: str = ""):
        super().__init__(reason)
        self.session_id = session_id


def _session_and_order(event: dict[str, Any]) -> tuple[CheckoutSession, Order]:
    """Return the event's session and the order it was created for, or raise _Ignored."""
    data = event["data"].get("object")
    if not isinstance(data, dict) or data.get("object") != "checkout.session" or not data.get("id"):
        raise _Ignored("event data is not a Checkout Session")
    session = CheckoutSession.from_payload(data)
    foreign = "session not created by this project"
    reference = session.order_id
    if not reference:
        raise _Ignored(f"{foreign}: it names no order", session.id)
    try:
        order_id = uuid.UUID(str(reference))
    except ValueError:
        raise _Ignored(f"{foreign}: order reference {reference!r} is not an order id", session.id) from None
    try:
        order = order_get_for_payment(order_id=order_id)
    except OrderNotFound:
        raise _Ignored(f"{foreign}: no order {order_id}", session.id) from None
    if order.stripe_checkout_session_id is None:
        # Stripe created the session (one per order, by idempotency key) but storing its id on the
        # order failed: the signed event proves the session is this order's, so record it now.
        if order_attach_checkout_session(order_id=order.pk, session_id=session.id):
            order.stripe_checkout_session_id = session.id
        else:
            order = order_get_for_payment(order_id=order_id)
    if order.stripe_checkout_session_id != session.id:
        raise _Ignored(
            f"{foreign}: order {order.pk} belongs to session {order.stripe_checkout_session_id}", session.id
        )
    return session, order


def _amount_mismatch(session: CheckoutSession, order: Order) -> str:
    """Return why the session's amount differs from the order's, or an empty string."""
    mismatch = session_charge_mismatch(session=session, order=order)
    return f"amount mismatch: {mismatch}; not fulfilled, a person must look" if mismatch else ""


def _current_status(order_id: uuid.UUID) -> str:
    return Order.objects.filter(pk=order_id).values_list("status", flat=True).first() or "missing"


def _moved(won: bool, done: str, order: Order, session: CheckoutSession) -> Outcome:
    reason = done if won else f"no-op: order already {_current_status(order.pk)}"
    return Outcome(EventStatus.PROCESSED, reason, order.pk, session.id)


def _fulfill(event: dict[str, Any], source: str, session: CheckoutSession, order: Order) -> Outcome:
    mismatch = _amount_mismatch(session, order)
    if mismatch:
        # Final: a retry cannot change what was charged. The inbox logs it at error level.
        return Outcome(EventStatus.FAILED, mismatch, order.pk, session.id)
    won = transitions.order_fulfill(
        order_id=order.pk,
        source=source,
        stripe_event_id=event["id"],
        payment_intent_id=session.payment_intent_id,
        customer_email=session.customer_email,
    )
    return _moved(won, "fulfilled", order, session)


def checkout_session_completed(event: dict[str, Any], source: str) -> Outcome:
    """Fulfill a paid session's order; note a delayed payment as pending."""
    session, order = _session_and_order(event)
    if session.payment_status in PAID_STATUSES:
        return _fulfill(event, source, session, order)
    # A delayed method (bank debit...): the money is not there yet; async_payment_* will say.
    marked = order_mark_payment_pending(order_id=order.pk, stripe_event_id=event["id"])
    reason = (
        f"payment {session.payment_status or 'unknown'}: marked as pending, no transition"
        if marked
        else f"no-op: order already {_current_status(order.pk)}"
    )
    return Outcome(EventStatus.PROCESSED, reason, order.pk, session.id)


def checkout_session_async_payment_succeeded(event: dict[str, Any], source: str) -> Outcome:
    """Fulfill the order whose delayed payment succeeded."""
    session, order = _session_and_order(event)
    return _fulfill(event, source, session, order)


def checkout_session_async_payment_failed(event: dict[str, Any], source: str) -> Outcome:
    """Fail the order whose delayed payment failed."""
    session, order = _session_and_order(event)
    won = transitions.order_fail(
        order_id=order.pk,
        source=source,
        reason=f"The delayed payment failed (Checkout Session {session.id}).",
        stripe_event_id=event["id"],
    )
    return _moved(won, "failed: the delayed payment failed", order, session)


def checkout_session_expired(event: dict[str, Any], source: str) -> Outcome:
    """Expire the order whose session expired unpaid."""
    session, order = _session_and_order(event)
    won = transitions.order_expire(order_id=order.pk, source=source, stripe_event_id=event["id"])
    return _moved(won, "expired", order, session)


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": checkout_session_completed,
    "checkout.session.async_payment_succeeded": checkout_session_async_payment_succeeded,
    "checkout.session.async_payment_failed": checkout_session_async_payment_failed,
    "checkout.session.expired": checkout_session_expired,
}


def event_handle(*, event: dict[str, Any], source: str) -> Outcome:
    """Run the event's handler with the given transition source; ignore types without one."""
    handler = HANDLERS.get(event["type"])
    if handler is None:
        return Outcome(EventStatus.IGNORED, "unhandled event type")
    try:
        return handler(event, source)
    except _Ignored as exc:
        return Outcome(EventStatus.IGNORED, str(exc), session_id=exc.session_id)
