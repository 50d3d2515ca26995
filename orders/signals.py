"""The shop's hooks after an order changes, each sent once (docs/design.md, Signals).

A signal is owed by a column of its row from the commit that makes it due; a sender claims it with a
conditional UPDATE of that column and runs the receivers in the same transaction, so their database
writes commit once with the claim. Effects outside the database should be idempotent.
"""

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, QuerySet
from django.dispatch import Signal
from django.utils import timezone

from orders.logs import log_fields
from orders.models import Order, OrderDispute, OrderRefund, OrderStatus, OrderTransition, RefundStatus

logger = logging.getLogger(__name__)

# Once per fulfilled order: ship the goods, grant the access. Receivers get `order_id`, `source` and
# `stripe_event_id` as keyword arguments.
order_fulfilled = Signal()
# Once per succeeded refund. Receivers get `order_id`, `amount` (of this refund, minor units), `currency`,
# `full` (the order is refunded in full as the signal is sent), `refund_id` (Stripe's) and `refund_pk` (ours).
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
    with transaction.atomic(), log_fields(order_id=order_id):
        owed = orders_owed_fulfillment_signal().filter(pk=order_id)
        if not owed.update(fulfillment_signalled_at=timezone.now()):
            return False
        order_fulfilled.send(sender=Order, order_id=order_id, source=source, stripe_event_id=stripe_event_id)
    return True


def order_refunded_signal_send(*, refund_pk: uuid.UUID | str) -> bool:
    """Send `order_refunded` for a succeeded refund unless it was sent; return whether this call sent it."""
    with transaction.atomic():
        if not refunds_owed_signal().filter(pk=refund_pk).update(signalled_at=timezone.now()):
            return False
        refund = OrderRefund.objects.select_related("order").get(pk=refund_pk)
        order_refunded.send(
            sender=OrderRefund,
            order_id=refund.order_id,
            amount=refund.amount,
            currency=refund.currency,
            full=refund.order.fully_refunded,
            refund_id=refund.stripe_refund_id,
            refund_pk=refund.pk,
        )
    order_id, stripe_id = refund.order_id, refund.stripe_refund_id
    logger.info(
        "order %s refund %s (%s) signalled", order_id, refund.pk, stripe_id, extra={"order_id": str(order_id)}
    )
    return True


def order_disputed_signal_send(*, dispute_pk: int) -> bool:
    """Send `order_disputed` for the dispute's status unless it was sent; return whether this call sent it."""
    with transaction.atomic():
        # F("status"): the status the row holds at this UPDATE, which our lock then keeps until commit.
        if not disputes_owed_signal().filter(pk=dispute_pk).update(signalled_status=F("status")):
            return False
        dispute = OrderDispute.objects.get(pk=dispute_pk)
        order_id, stripe_id, status = dispute.order_id, dispute.stripe_dispute_id, dispute.status
        order_disputed.send(sender=OrderDispute, order_id=order_id, dispute_id=stripe_id, status=status)
    logger.info("order %s dispute %s signalled: %s", order_id, stripe_id, status)
    return True


# Each signal's outbox: its rows still owing it, the column that says when they became due, and the one
# that names their order.
OUTBOXES = {
    "fulfillment": (orders_owed_fulfillment_signal, "fulfilled_at", "pk"),
    "refund": (refunds_owed_signal, "updated_at", "order_id"),
    "dispute": (disputes_owed_signal, "updated_at", "order_id"),
}


def signals_owed(*, changed_before: datetime, limit: int = 500) -> list[tuple[str, Any]]:
    """Return (kind, pk) of the signals owed by rows last changed before the moment, the oldest first."""
    owed = []
    for kind, (rows, changed, _) in OUTBOXES.items():
        due = rows().filter(**{f"{changed}__lt": changed_before}).order_by(changed)
        owed += [(kind, pk) for pk in due.values_list("pk", flat=True)[:limit]]
    return owed


def signals_for_order(*, order_id: uuid.UUID | str, kinds: Iterable[str]) -> list[tuple[str, Any]]:
    """Return (kind, pk) of the signals of these kinds the order owes now."""
    owed = []
    for kind in kinds:
        rows, _, of_order = OUTBOXES[kind]
        owed += [(kind, pk) for pk in rows().filter(**{of_order: order_id}).values_list("pk", flat=True)]
    return owed


def signal_send(kind: str, pk: Any) -> bool:
    """Send one owed signal unless it was sent; return whether this call sent it."""
    if kind == "refund":
        return order_refunded_signal_send(refund_pk=pk)
    if kind == "dispute":
        return order_disputed_signal_send(dispute_pk=pk)
    # Tell the receivers what the winning caller would have: the fulfilling transition's source and event.
    source, event_id = (
        OrderTransition.objects.filter(order_id=pk, to_status=OrderStatus.FULFILLED)
        .values_list("source", "stripe_event_id")
        .first()
    ) or ("system", None)
    return order_fulfillment_signal_send(order_id=pk, source=source, stripe_event_id=event_id)


def signals_resend(*, older_than: timedelta, dry_run: bool = False) -> int:
    """Send every signal owed for longer than `older_than`, and count them (`dry_run`: count, send none)."""
    owed = signals_owed(changed_before=timezone.now() - older_than, limit=10**9)
    if dry_run:
        return len(owed)
    sent = 0
    for kind, pk in owed:
        try:
            signalled = signal_send(kind, pk)
        except Exception:
            # The claim rolled back with the receiver: still owed. The others are sent all the same.
            logger.exception("%s %s signal: a receiver raised; it stays owed", kind, pk)
            continue
        if signalled:
            logger.warning("%s %s signal was owed (no worker sent it): sent", kind, pk)
            sent += 1
    return sent
