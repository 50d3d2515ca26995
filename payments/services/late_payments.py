"""Money that reaches an order which can no longer take it: flag the order, and refund unless told not to.

An order is closed (failed, expired) only after its session is expired at Stripe, so a paid session of a
closed order means the rule was bypassed (an order closed before this project expired sessions first, a
session closed in the Dashboard after a payment, a delayed payment that settled after the order failed).
The goods cannot be sent for an order the shop has closed, so by default the money goes back, once: the
idempotency key is derived from the order, so duplicated, redelivered and replayed events, the audit and
a retry after a crash all ask Stripe for the same refund. `REFUND_LATE_PAYMENTS = False` leaves it to a
person, who finds the order under "Needs attention".
"""

import logging
import uuid
from dataclasses import dataclass

from django.conf import settings

from orders.services import order_flag_attention
from payments import gateway

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LatePayment:
    """What was done about a payment for a closed order."""

    order_id: uuid.UUID
    refund: gateway.StripeRefund | None
    summary: str


def late_payment_refund_key(*, order_id: uuid.UUID | str) -> str:
    """Return the idempotency key of an order's automatic refund: one per order, whoever asks."""
    return f"late-payment-refund:{order_id}"


def late_payment_settle(
    *,
    order_id: uuid.UUID | str,
    order_status: str,
    session: gateway.CheckoutSession,
    stripe_event_id: str | None = None,
) -> LatePayment:
    """Flag the closed order that was paid, and refund the payment if REFUND_LATE_PAYMENTS.

    The refund is asked for before the flag is written, so no row lock is held while Stripe answers;
    raises PaymentProviderError when Stripe cannot refund, leaving the event to be processed again.
    """
    order_id = uuid.UUID(str(order_id))
    paid = f"{session.amount_total} {session.currency}"
    refund = None
    if settings.REFUND_LATE_PAYMENTS and session.payment_intent_id:
        refund = gateway.refund_create(
            payment_intent_id=session.payment_intent_id,
            idempotency_key=late_payment_refund_key(order_id=order_id),
            metadata={"order_id": str(order_id), "late_payment": "true"},
        )
        action = f"refund {refund.id} of {refund.amount} {refund.currency} requested automatically"
    elif session.payment_intent_id:
        action = "automatic refunds are off (REFUND_LATE_PAYMENTS): refund or fulfil it by hand"
    else:
        action = "nothing to refund (no payment intent)"
    summary = f"paid {paid} on session {session.id} after the order was {order_status}; {action}"
    order_flag_attention(order_id=order_id, reason=f"Late payment: {summary}.")
    logger.warning(
        "order %s session %s event %s: late payment: %s",
        order_id,
        session.id,
        stripe_event_id or "-",
        summary,
    )
    return LatePayment(order_id=order_id, refund=refund, summary=summary)
