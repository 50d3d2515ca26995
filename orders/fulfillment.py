"""The shop's fulfillment hook: `order_fulfilled`, sent once per fulfilled order, durably.

The winning `order_fulfill` queues the signal's task in its own transaction (`orders.tasks`). The signal
is owed until `Order.fulfillment_signalled_at` is set, and that is set in the transaction the receivers
run in: receivers' database writes commit with the mark, or roll back with it and run again.
`order_fulfillment_signals_resend` pays what is owed when the task's attempts ran out.
Receivers with effects outside the database (an email, a call to a warehouse) may, rarely, see an order
twice (a crash after their effect, before the commit) and should be idempotent on the order id.
"""

import logging
import uuid
from datetime import timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from orders.models import Order, OrderStatus, OrderTransition
from orders.signals import order_fulfilled

logger = logging.getLogger(__name__)


def order_fulfillment_signal_send(
    *, order_id: uuid.UUID | str, source: str, stripe_event_id: str | None
) -> bool:
    """Send `order_fulfilled` for a fulfilled order unless it was sent; return whether this call sent it."""
    with transaction.atomic():
        claimed = Order.objects.filter(
            pk=order_id, status=OrderStatus.FULFILLED, fulfillment_signalled_at__isnull=True
        ).update(fulfillment_signalled_at=timezone.now())
        if claimed:
            order_fulfilled.send(
                sender=Order, order_id=order_id, source=source, stripe_event_id=stripe_event_id
            )
    if claimed:
        # DEBUG: receivers log the fulfillment themselves (payments.receivers does, at INFO).
        logger.debug(
            "order %s fulfillment signal sent (source=%s event=%s)", order_id, source, stripe_event_id or "-"
        )
    return bool(claimed)


def orders_owed_fulfillment_signal(*, older_than: timedelta) -> QuerySet[Order]:
    """Return fulfilled orders, fulfilled before the age, whose signal was never sent."""
    return Order.objects.filter(
        status=OrderStatus.FULFILLED,
        fulfillment_signalled_at__isnull=True,
        fulfilled_at__lt=timezone.now() - older_than,
    ).order_by("fulfilled_at")


def order_fulfillment_signals_resend(*, older_than: timedelta) -> int:
    """Send the signals still owed for orders fulfilled before the age; return how many were sent."""
    owed = orders_owed_fulfillment_signal(older_than=older_than).values_list("pk", flat=True)
    sent = 0
    for order_id in owed.iterator(chunk_size=500):
        # Hand the receivers what the winning caller would have: the fulfilling transition's source and event.
        source, event_id = (
            OrderTransition.objects.filter(order_id=order_id, to_status=OrderStatus.FULFILLED)
            .values_list("source", "stripe_event_id")
            .first()
        ) or ("system", None)
        if order_fulfillment_signal_send(order_id=order_id, source=source, stripe_event_id=event_id):
            logger.warning("order %s fulfillment signal was owed (its sender died): sent", order_id)
            sent += 1
    return sent
