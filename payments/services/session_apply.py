"""Apply a Checkout Session, as Stripe holds it now, to its order (for operator actions and the audit).

Stand-in until the one session service (issue 10, `payments.services.sessions`) is merged; it is then
replaced by a call to that service, which will hold the late-payment rule.
"""

import logging
from dataclasses import dataclass

from orders import transitions
from orders.models import Order, OrderStatus
from orders.services import order_mark_payment_pending
from payments import gateway
from payments.services.late_payments import late_payment_settle
from payments.services.matching import session_charge_mismatch

logger = logging.getLogger(__name__)

CLOSED = frozenset({OrderStatus.FAILED, OrderStatus.EXPIRED})


@dataclass(frozen=True)
class SessionApplied:
    """What applying a session did: the status the order moved to ('' when it did not move), and why."""

    moved_to: str
    summary: str
    late_payment: bool = False


def checkout_session_apply(
    *, session: gateway.CheckoutSession, order: Order, source: str, fulfill: bool = True
) -> SessionApplied:
    """Move the order to what its session says: paid, fulfill (or confirm); expired, expire."""
    if session.order_id != str(order.pk) or order.stripe_checkout_session_id != session.id:
        return SessionApplied("", f"session {session.id} is not this order's; nothing applied")
    status = Order.objects.filter(pk=order.pk).values_list("status", flat=True).get()
    if session.is_paid:
        mismatch = session_charge_mismatch(session=session, order=order)
        if mismatch:
            return SessionApplied("", f"amount mismatch: {mismatch}; a person must look")
        if status in CLOSED:
            late = late_payment_settle(order_id=order.pk, order_status=status, session=session)
            return SessionApplied("", f"late payment: {late.summary}", late_payment=True)
        move = transitions.order_fulfill if fulfill else transitions.order_confirm
        won = move(
            order_id=order.pk,
            source=source,
            payment_intent_id=session.payment_intent_id,
            customer_email=session.customer_email,
        )
        to = OrderStatus.FULFILLED if fulfill else OrderStatus.CONFIRMED
        return SessionApplied(to, f"applied it, now {to}") if won else _lost(order)
    if session.status == "complete":
        order_mark_payment_pending(order_id=order.pk, stripe_event_id=None)
        return SessionApplied("", "a delayed payment is under way: the order waits for its outcome")
    if session.status == "expired":
        won = transitions.order_expire(order_id=order.pk, source=source)
        return SessionApplied(OrderStatus.EXPIRED, "applied it, now expired") if won else _lost(order)
    return SessionApplied("", "the session is open: nothing to apply")


def _lost(order: Order) -> SessionApplied:
    status = Order.objects.filter(pk=order.pk).values_list("status", flat=True).get()
    return SessionApplied("", f"the order had already moved, it is {status}")
