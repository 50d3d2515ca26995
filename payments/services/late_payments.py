"""Money that reaches an order which can no longer take it: flag the order, and refund unless told not to.

An order is closed (failed, expired) only after its session is expired at Stripe, so a paid session of a
closed order means that rule was bypassed: an order closed before the project expired sessions first, or
closed while its session was still being created, or moved by hand. The shop will not send goods for an
order it has closed, so by default the money goes back, once: the refund row's id, and so its idempotency
key, is derived from the order, so duplicated, redelivered and replayed events, the audit and a retry
after a crash all ask Stripe for the same refund. `REFUND_LATE_PAYMENTS = False` leaves it to a person,
who finds the order under "Needs attention".
"""

import logging
import uuid
from dataclasses import dataclass

from django.conf import settings

from orders.exceptions import RefundRefused
from orders.models import OrderRefund, RefundRequester
from orders.refunds import order_attach_payment_intent
from orders.services import order_flag_attention
from payments import gateway
from payments.services.refunds import order_refund

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LatePayment:
    """What was done about a payment for a closed order."""

    order_id: uuid.UUID
    refund: OrderRefund | None
    summary: str


def late_payment_refund_request_id(*, order_id: uuid.UUID | str) -> uuid.UUID:
    """Return the id of an order's automatic refund row, the same whoever asks and however often.

    The refund service's idempotency key is `refund:<row id>`, so this makes it a function of the order.
    """
    return uuid.uuid5(uuid.NAMESPACE_URL, f"late-payment-refund:{order_id}")


def late_payment_settle(
    *,
    order_id: uuid.UUID | str,
    order_status: str,
    session: gateway.CheckoutSession,
    stripe_event_id: str | None = None,
) -> LatePayment:
    """Flag the closed order that was paid, and refund the whole payment if REFUND_LATE_PAYMENTS."""
    order_id = uuid.UUID(str(order_id))
    paid = f"{session.amount_total} {session.currency}"
    refund = None
    if not session.payment_intent_id:
        action = "nothing to refund (no payment intent)"
    elif not settings.REFUND_LATE_PAYMENTS:
        action = "automatic refunds are off (REFUND_LATE_PAYMENTS): refund it, or fulfill it, by hand"
    else:
        order_attach_payment_intent(order_id=order_id, payment_intent_id=session.payment_intent_id)
        try:
            outcome = order_refund(
                order_id=order_id,
                amount=None,
                requested_by=RefundRequester.AUTOMATIC,
                request_id=late_payment_refund_request_id(order_id=order_id),
            )
        except RefundRefused as exc:
            action = f"not refunded automatically: {exc}"
        else:
            refund = outcome.refund
            asked = (
                "refund asked of Stripe automatically"
                if outcome.ok
                else "the automatic refund did not go through"
            )
            action = f"{asked}: {outcome.message}"
    summary = f"paid {paid} on session {session.id} after the order was {order_status}; {action}"
    order_flag_attention(order_id=order_id, reason=f"Late payment: {summary}")
    logger.warning(
        "order %s session %s event %s: late payment: %s",
        order_id,
        session.id,
        stripe_event_id or "-",
        summary,
    )
    return LatePayment(order_id=order_id, refund=refund, summary=summary)
