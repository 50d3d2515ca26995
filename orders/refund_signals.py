"""The shop's refund and dispute hooks: `order_refunded` and `order_disputed`, each sent once, durably.

As with `order_fulfilled` (see `orders.fulfillment`), the transaction that makes a signal due queues its
task (`orders.tasks`), and the worker sends it inside a transaction of its own that marks it as sent: a
refund's `signalled_at`, a dispute's `signalled_status`. Receivers' database writes commit with the mark,
or roll back with it and run again; a signal whose task's attempts ran out stays owed and
`refund_signals_resend` sends it. What "owed" means is decided once, by the two querysets below: the
claims, the resend and the writers that queue the tasks all ask them.
"""

import logging
import uuid
from datetime import timedelta

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from orders.models import Order, OrderDispute, OrderRefund, RefundStatus
from orders.signals import order_disputed, order_refunded

logger = logging.getLogger(__name__)


def refunds_owed_signal() -> QuerySet[OrderRefund]:
    """Return the refunds owed an `order_refunded`: succeeded, and not yet signalled."""
    return OrderRefund.objects.filter(status=RefundStatus.SUCCEEDED, signalled_at__isnull=True)


def disputes_owed_signal() -> QuerySet[OrderDispute]:
    """Return the disputes owed an `order_disputed`: their status is not the one last signalled."""
    return OrderDispute.objects.exclude(signalled_status=F("status"))


def order_refunded_signal_send(*, refund_pk: uuid.UUID | str) -> bool:
    """Send `order_refunded` for a succeeded refund unless it was sent; return whether this call sent it."""
    with transaction.atomic():
        claimed = refunds_owed_signal().filter(pk=refund_pk).update(signalled_at=timezone.now())
        if claimed:
            refund = OrderRefund.objects.get(pk=refund_pk)
            order = Order.objects.only("amount_total", "amount_refunded").get(pk=refund.order_id)
            order_refunded.send(
                sender=OrderRefund,
                order_id=refund.order_id,
                amount=refund.amount,
                currency=refund.currency,
                full=order.amount_refunded >= order.amount_total,
                refund_id=refund.stripe_refund_id,
            )
    if claimed:
        logger.info(
            "order %s refund %s (%s) signalled: %d %s",
            refund.order_id,
            refund.pk,
            refund.stripe_refund_id,
            refund.amount,
            refund.currency,
        )
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


def refund_signals_resend(*, older_than: timedelta) -> int:
    """Send the refund and dispute signals owed for rows last changed before the age; return how many."""
    cutoff = timezone.now() - older_than
    sent = 0
    owed_refunds = refunds_owed_signal().filter(updated_at__lt=cutoff).values_list("pk", flat=True)
    for refund_pk in owed_refunds.iterator(chunk_size=500):
        if order_refunded_signal_send(refund_pk=refund_pk):
            logger.warning("refund %s signal was owed (no worker sent it): sent", refund_pk)
            sent += 1
    owed_disputes = disputes_owed_signal().filter(updated_at__lt=cutoff).values_list("pk", flat=True)
    for dispute_pk in owed_disputes.iterator(chunk_size=500):
        if order_disputed_signal_send(dispute_pk=dispute_pk):
            logger.warning("dispute %s signal was owed (no worker sent it): sent", dispute_pk)
            sent += 1
    return sent
