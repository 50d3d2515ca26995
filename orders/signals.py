"""The shop's hooks after an order changes, each sent once: what is owed, and the claim that sends it.

A signal is owed by a column of its row (`Order.fulfillment_signalled_at`, `OrderRefund.signalled_at`,
`OrderDispute.signalled_status`) from the commit that makes it due. A sender claims it with a conditional
UPDATE of that column and runs the receivers in the same transaction, outside the order's row lock: their
database writes commit exactly once with the claim, or roll back with it and run again. A receiver with
effects outside the database (an e-mail, a warehouse API) should be idempotent on what it is told, since
a crash after its effect and before the commit makes it run again.
"""

import logging
import uuid
from datetime import timedelta

from django.db import transaction
from django.db.models import F, QuerySet
from django.dispatch import Signal
from django.utils import timezone

from orders.models import Order, OrderDispute, OrderRefund, OrderStatus, OrderTransition, RefundStatus

logger = logging.getLogger(__name__)

# Once per fulfilled order: ship the goods, grant the access. Receivers get `order_id`, `source` and
# `stripe_event_id` as keyword arguments.
order_fulfilled = Signal()
# Once per succeeded refund. Receivers get `order_id`, `amount` (of this refund, minor units), `currency`,
# `full` (the order is refunded in full as the signal is sent) and `refund_id` (Stripe's).
order_refunded = Signal()
# Once per status a dispute reaches, told of the newest status when it is sent (never of one going
# backwards). Receivers get `order_id`, `dispute_id` (Stripe's) and `status`.
order_disputed = Signal()


def orders_owed_fulfillment_signal() -> QuerySet[Order]:
    return Order.objects.filter(status=OrderStatus.FULFILLED, fulfillment_signalled_at__isnull=True)


def refunds_owed_signal() -> QuerySet[OrderRefund]:
    return OrderRefund.objects.filter(status=RefundStatus.SUCCEEDED, signalled_at__isnull=True)


def disputes_owed_signal() -> QuerySet[OrderDispute]:
    return OrderDispute.objects.exclude(signalled_status=F("status"))


def order_fulfillment_signal_send(
    *, order_id: uuid.UUID | str, source: str, stripe_event_id: str | None
) -> bool:
    """Send `order_fulfilled` for a fulfilled order unless it was sent; return whether this call sent it."""
    with transaction.atomic():
        claimed = (
            orders_owed_fulfillment_signal()
            .filter(pk=order_id)
            .update(fulfillment_signalled_at=timezone.now())
        )
        if claimed:
            order_fulfilled.send(
                sender=Order, order_id=order_id, source=source, stripe_event_id=stripe_event_id
            )
    return bool(claimed)


def order_refunded_signal_send(*, refund_pk: uuid.UUID | str) -> bool:
    """Send `order_refunded` for a succeeded refund unless it was sent; return whether this call sent it."""
    with transaction.atomic():
        claimed = refunds_owed_signal().filter(pk=refund_pk).update(signalled_at=timezone.now())
        if claimed:
            refund = OrderRefund.objects.select_related("order").get(pk=refund_pk)
            order_refunded.send(
                sender=OrderRefund,
                order_id=refund.order_id,
                amount=refund.amount,
                currency=refund.currency,
                full=refund.order.fully_refunded,
                refund_id=refund.stripe_refund_id,
            )
    if claimed:
        logger.info("order %s refund %s (%s) signalled", refund.order_id, refund.pk, refund.stripe_refund_id)
    return bool(claimed)


def order_disputed_signal_send(*, dispute_pk: int) -> bool:
    """Send `order_disputed` for the dispute's status unless it was sent; return whether this call sent it."""
    with transaction.atomic():
        # F("status"): the status the row holds at this UPDATE, which our lock then keeps until commit.
        claimed = disputes_owed_signal().filter(pk=dispute_pk).update(signalled_status=F("status"))
        if claimed:
            dispute = OrderDispute.objects.get(pk=dispute_pk)
            order_disputed.send(
                sender=OrderDispute,
                order_id=dispute.order_id,
                dispute_id=dispute.stripe_dispute_id,
                status=dispute.status,
            )
    if claimed:
        logger.info(
            "order %s dispute %s signalled: %s", dispute.order_id, dispute.stripe_dispute_id, dispute.status
        )
    return bool(claimed)


def signals_resend(*, older_than: timedelta, dry_run: bool = False) -> int:
    """Send every signal owed since before the age (its sender died, or its attempts ran out); count them.

    `dry_run` counts what is owed and sends nothing.
    """
    cutoff = timezone.now() - older_than
    owed_orders = orders_owed_fulfillment_signal().filter(fulfilled_at__lt=cutoff).order_by("fulfilled_at")
    owed_refunds = refunds_owed_signal().filter(updated_at__lt=cutoff)
    owed_disputes = disputes_owed_signal().filter(updated_at__lt=cutoff)
    if dry_run:
        return sum(owed.count() for owed in (owed_orders, owed_refunds, owed_disputes))
    sent = 0
    for order_id in owed_orders.values_list("pk", flat=True).iterator(chunk_size=500):
        # Hand the receivers what the winning caller would have: the fulfilling transition's source and event.
        source, event_id = (
            OrderTransition.objects.filter(order_id=order_id, to_status=OrderStatus.FULFILLED)
            .values_list("source", "stripe_event_id")
            .first()
        ) or ("system", None)
        signalled = order_fulfillment_signal_send(order_id=order_id, source=source, stripe_event_id=event_id)
        sent += _resent(signalled, f"order {order_id} fulfilment")
    for refund_pk in owed_refunds.values_list("pk", flat=True):
        sent += _resent(order_refunded_signal_send(refund_pk=refund_pk), f"refund {refund_pk}")
    for dispute_pk in owed_disputes.values_list("pk", flat=True):
        sent += _resent(order_disputed_signal_send(dispute_pk=dispute_pk), f"dispute {dispute_pk}")
    return sent


def _resent(sent: bool, what: str) -> bool:
    if sent:
        logger.warning("%s signal was owed (no worker sent it): sent", what)
    return sent
