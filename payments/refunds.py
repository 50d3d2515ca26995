"""Refunding an order through Stripe, and the one rule of which order a Stripe payment belongs to.

A refund row is reserved under the order's lock, then asked of Stripe outside that transaction with the
idempotency key `refund:<row id>`, so a retry of a request Stripe never answered is still one refund.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from orders.exceptions import RefundNotFound
from orders.logs import log_fields
from orders.models import Order, OrderRefund, RefundStatus
from orders.money import money_format
from orders.refunds import (
    Applied,
    order_dispute_apply,
    order_refund_apply,
    order_refund_record,
    order_refund_refused,
    order_refund_request,
)
from orders.services import order_payment_details_store
from payments import gateway
from payments.exceptions import (
    NotOurs,
    PaymentProviderRefused,
    PaymentProviderUnavailable,
    StripeResourceMissing,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefundOutcome:
    """A refund request after asking Stripe: its row, whether it is new, and a sentence for people."""

    refund: OrderRefund
    created: bool  # False: a repeated request found the row of the first
    message: str

    @property
    def ok(self) -> bool:
        """Return whether Stripe took the refund (it may still be pending)."""
        return self.refund.status in (RefundStatus.PENDING, RefundStatus.SUCCEEDED)


def order_refund(
    *,
    order_id: uuid.UUID | str,
    amount: int | None,
    reason: str = "",
    requested_by: str,
    requested_by_user: str = "",
    request_id: uuid.UUID | None = None,
) -> RefundOutcome:
    """Refund an order through Stripe (the whole remainder when `amount` is None), once per request.
    Raises, before any call to Stripe, RefundRefused, PaymentProviderNotConfigured or OrderNotFound."""
    gateway.client()
    with log_fields(order_id=order_id):
        refund, created = order_refund_request(
            order_id=order_id,
            amount=amount,
            reason=reason,
            requested_by=requested_by,
            requested_by_user=requested_by_user,
            request_id=request_id,
        )
        return refund_request_send(refund_id=refund.pk, created=created)


def refund_request_send(*, refund_id: uuid.UUID | str, created: bool = False) -> RefundOutcome:
    """Ask Stripe for a refund row still `requested`; a row Stripe already answered is only reported."""
    refund = OrderRefund.objects.select_related("order").get(pk=refund_id)
    if refund.status != RefundStatus.REQUESTED:
        return RefundOutcome(refund, created, _said(refund, repeated=not created))
    order = refund.order
    try:
        answer = gateway.refund_create(
            payment_intent_id=order.stripe_payment_intent_id or _payment_of(order),
            amount=refund.amount,
            reason=refund.reason,
            idempotency_key=f"refund:{refund.pk}",
            metadata={"order_id": str(order.pk), "refund_request_id": str(refund.pk)},
        )
    except PaymentProviderUnavailable as exc:
        logger.warning("order %s refund %s not sent, Stripe unavailable: %s", order.pk, refund.pk, exc)
        return RefundOutcome(
            refund,
            created,
            f"{exc} The refund of {money_format(refund.amount, refund.currency)} is kept as requested "
            f"({refund.pk}); try again with `manage.py refund_order {order.pk} --retry {refund.pk}`. "
            "The retry reuses the same idempotency key, so Stripe refunds at most once.",
        )
    except (NotOurs, PaymentProviderRefused) as exc:
        why = f"Order {order.pk} has no payment to refund: {exc}." if isinstance(exc, NotOurs) else str(exc)
        refund = order_refund_refused(refund_id=refund.pk, message=why)
        return RefundOutcome(refund, created, _said(refund))
    refund = order_refund_record(
        refund_id=refund.pk,
        stripe_refund_id=answer.id,
        status=answer.status,
        failure_reason=answer.failure_reason,
    )
    return RefundOutcome(refund, created, _said(refund, repeated=not created))


def order_for_payment_intent(*, payment_intent_id: str) -> uuid.UUID:
    """Return the order storing the payment's id, else the one its `metadata.order_id` names if that
    order's own session paid with it; or raise NotOurs (PaymentProviderUnavailable: Stripe cannot answer)."""
    if not payment_intent_id:
        raise NotOurs("it names no payment intent")
    stored = Order.objects.filter(stripe_payment_intent_id=payment_intent_id).values_list("pk", flat=True)
    if (order_id := stored.first()) is not None:
        return order_id
    try:
        named = gateway.payment_intent_order_id(payment_intent_id=payment_intent_id)
        order = Order.objects.only("pk", "stripe_checkout_session_id").get(pk=uuid.UUID(named))
    except StripeResourceMissing:
        raise NotOurs(f"Stripe does not know payment {payment_intent_id} (another account?)") from None
    except (ValueError, Order.DoesNotExist):
        raise NotOurs(f"payment {payment_intent_id} names no order of this shop") from None
    paid_with = _payment_of(order)
    if paid_with != payment_intent_id:
        raise NotOurs(f"payment {payment_intent_id} names order {order.pk}, whose session paid {paid_with}")
    return order.pk


def _payment_of(order: Order) -> str:
    """Return the payment the order's own session was paid with, storing it on the order; that session
    must name this order, by the rule sessions are applied by, and be paid."""
    if not order.stripe_checkout_session_id:
        raise NotOurs(f"order {order.pk} never had a Checkout Session, so nothing was paid")
    session = gateway.checkout_session_retrieve(session_id=order.stripe_checkout_session_id)
    if session.named_order_id() != order.pk:
        raise NotOurs(f"its session {session.id} names another order")
    if not session.payment_intent_id:
        raise NotOurs(f"its session {session.id} was not paid")
    order_payment_details_store(
        order_id=order.pk, payment_intent_id=session.payment_intent_id, customer_email=session.customer_email
    )
    return session.payment_intent_id


def stripe_refund_apply(
    *, refund: gateway.StripeRefund, source: str, stripe_event_id: str | None = None
) -> tuple[uuid.UUID, Applied]:
    """Record a refund as Stripe reports it, for the webhooks and the audit alike; return the order id and
    what it did. Raises NotOurs for a payment this project did not take."""
    order_id = order_for_payment_intent(payment_intent_id=refund.payment_intent_id)
    applied = order_refund_apply(
        order_id=order_id,
        stripe_refund_id=refund.id,
        amount=refund.amount,
        currency=refund.currency,
        status=refund.status,
        reason=refund.reason,
        failure_reason=refund.failure_reason,
        request_id=refund.metadata.get("refund_request_id"),
        source=source,
        stripe_event_id=stripe_event_id,
    )
    return order_id, applied


def stripe_dispute_apply(
    *, dispute: gateway.StripeDispute, source: str, stripe_event_id: str | None = None
) -> tuple[uuid.UUID, Applied]:
    """Record a dispute as Stripe reports it, as `stripe_refund_apply` does a refund. Raises NotOurs."""
    order_id = order_for_payment_intent(payment_intent_id=dispute.payment_intent_id)
    due = dispute.evidence_due_by
    due_by = datetime.fromtimestamp(due, tz=UTC) if isinstance(due, int) else None
    applied = order_dispute_apply(
        order_id=order_id,
        stripe_dispute_id=dispute.id,
        amount=dispute.amount,
        currency=dispute.currency,
        status=dispute.status,
        reason=dispute.reason,
        evidence_due_by=due_by,
        source=source,
        stripe_event_id=stripe_event_id,
    )
    if applied.created or applied.changed:
        logger.warning(
            "order %s dispute %s %s: %s (reason=%s, evidence due %s, event=%s, source=%s)",
            order_id,
            dispute.id,
            "recorded" if applied.created else "updated",
            applied.row.status,
            dispute.reason or "-",
            due_by.isoformat() if due_by else "-",
            stripe_event_id or "-",
            source,
        )
    return order_id, applied


def _said(refund: OrderRefund, *, repeated: bool = False) -> str:
    again = "This refund was already asked for: " if repeated else ""
    amount, order = money_format(refund.amount, refund.currency), refund.order_id
    if refund.status == RefundStatus.SUCCEEDED:
        return f"{again}Refunded {amount} on order {order} (Stripe refund {refund.stripe_refund_id})."
    if refund.status == RefundStatus.PENDING:
        return (
            f"{again}Stripe accepted the refund of {amount} on order {order} ({refund.stripe_refund_id}); "
            "it is pending and the order is updated when it settles."
        )
    the_refund = f"{again}The refund of {amount} on order {order}"
    if refund.status == RefundStatus.REQUESTED:
        return f"{the_refund} has not reached Stripe yet."
    why = refund.failure_reason or "Stripe gave no reason"
    return f"{the_refund} {refund.status}: {why}. Nothing was refunded."


def refund_get(*, refund_id: str) -> OrderRefund:
    """Return the refund row with this id, or raise RefundNotFound."""
    try:
        return OrderRefund.objects.get(pk=uuid.UUID(str(refund_id)))
    except (ValueError, OrderRefund.DoesNotExist):
        raise RefundNotFound(f"No refund request {refund_id}.") from None
