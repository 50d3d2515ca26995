"""Refunds and disputes of an order: reserve a refund, record what Stripe says, recompute what went back.

Every writer locks the order's row, then writes refund or dispute rows, then sums them into
`Order.amount_refunded` (never added to). It is the project's one row lock: a refund reserves money
against the SUM of the other rows, which no condition on one row can see (docs/design.md).
"""

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, models, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from orders import transitions
from orders.db import storable_text
from orders.exceptions import OrderNotFound, RefundRefused
from orders.models import (
    DisputeStatus,
    Order,
    OrderDispute,
    OrderRefund,
    OrderStatus,
    RefundReason,
    RefundRequester,
    RefundStatus,
    TransitionSource,
)
from orders.money import money_format

logger = logging.getLogger(__name__)

# A row may leave a status only for one ranked higher, so a duplicated or reordered event cannot count
# twice. A succeeded refund can still fail (a closed card account), so failed outranks succeeded.
REFUND_STATUS_RANK = {
    RefundStatus.REQUESTED: 0,
    RefundStatus.PENDING: 1,
    RefundStatus.SUCCEEDED: 2,
    RefundStatus.FAILED: 3,
    RefundStatus.CANCELED: 3,
}
DISPUTE_STATUS_RANK = {
    DisputeStatus.WARNING_NEEDS_RESPONSE: 0,
    DisputeStatus.WARNING_UNDER_REVIEW: 1,
    DisputeStatus.NEEDS_RESPONSE: 2,
    DisputeStatus.UNDER_REVIEW: 3,
    DisputeStatus.WARNING_CLOSED: 4,
    DisputeStatus.WON: 4,
    DisputeStatus.LOST: 4,
    DisputeStatus.PREVENTED: 4,
}
REQUESTER_SOURCES = {
    RefundRequester.ADMIN: TransitionSource.ADMIN,
    RefundRequester.COMMAND: TransitionSource.COMMAND,
    RefundRequester.AUTOMATIC: TransitionSource.SYSTEM,
    RefundRequester.DASHBOARD: TransitionSource.WEBHOOK,
}
DISPUTE_REASON_MAX_LENGTH = OrderDispute._meta.get_field("reason").max_length


@dataclass(frozen=True)
class RefundTotals:
    """An order's money after a recompute; `refunded_now` when this call took the `refund` transition."""

    amount_total: int
    amount_refunded: int
    currency: str
    refunded_now: bool


@dataclass(frozen=True)
class Applied:
    """What applying one refund or dispute Stripe reports did."""

    row: OrderRefund | OrderDispute
    created: bool  # unknown here before (a refund made in Stripe's Dashboard, say)
    changed: bool
    totals: RefundTotals


def money_returned(*, refunds: Iterable[tuple[str, int]], disputes: Iterable[tuple[str, int]]) -> int:
    """Return succeeded refunds plus lost disputes, as (status, amount) pairs: our rows or Stripe's lists."""
    return sum(amount for status, amount in refunds if status == RefundStatus.SUCCEEDED) + sum(
        amount for status, amount in disputes if status == DisputeStatus.LOST
    )


def order_refundable_remaining(*, order_id: uuid.UUID | str) -> int:
    """Return what is left to refund: the total less refunds succeeded or under way and lost disputes."""
    order = Order.objects.only("amount_total").get(pk=order_id)
    return order.amount_total - _reserved(order.pk)


def order_refund_amount_check(*, order_id: uuid.UUID | str, amount: int | None, requested_by: str) -> int:
    """Return what a refund would take (the remainder when None), or raise RefundRefused: for a confirmation
    step; the request checks again under the lock."""
    return _refund_amount(_order(order_id), amount, RefundRequester(requested_by))


def order_refund_request(
    *,
    order_id: uuid.UUID | str,
    amount: int | None,
    reason: str = "",
    requested_by: str,
    requested_by_user: str = "",
    request_id: uuid.UUID | None = None,
) -> tuple[OrderRefund, bool]:
    """Reserve a refund (the remainder when `amount` is None); return the row and whether it is new.

    A repeated `request_id` (a confirmation form's token) finds its first row instead of asking twice.
    """
    requester = RefundRequester(requested_by)
    if reason not in RefundReason.values and reason != "":
        choices = ", ".join(RefundReason.values)
        raise RefundRefused(f"{reason!r} is not a refund reason Stripe knows: use {choices}, or none.")
    with transaction.atomic():
        order = _order(order_id, lock=True)
        existing = OrderRefund.objects.filter(pk=request_id).first() if request_id else None
        if existing is not None:
            if existing.order_id != order.pk or amount not in (None, existing.amount):
                made = money_format(existing.amount, existing.currency)
                raise RefundRefused(
                    f"This refund request was already made for {made} on order {existing.order_id}; "
                    "start a new refund for another amount."
                )
            return existing, False
        refund = OrderRefund.objects.create(
            id=request_id or uuid.uuid4(),
            order_id=order.pk,
            amount=_refund_amount(order, amount, requester),
            currency=order.currency,
            reason=reason,
            requested_by=requester,
            requested_by_user=requested_by_user,
        )
    made, who = money_format(refund.amount, refund.currency), f"{requester.value} {requested_by_user or '-'}"
    logger.info(
        "order %s refund %s requested: %s by %s (reason=%s)", order.pk, refund.pk, made, who, reason or "-"
    )
    return refund, True


def order_refund_record(
    *, refund_id: uuid.UUID | str, stripe_refund_id: str, status: str, failure_reason: str = ""
) -> OrderRefund:
    """Record Stripe's answer to our refund request (its id and status), unless a webhook got further."""
    refund = OrderRefund.objects.only("order_id", "requested_by").get(pk=refund_id)
    with transaction.atomic():
        order = _order(refund.order_id, lock=True)
        OrderRefund.objects.filter(pk=refund_id, stripe_refund_id__isnull=True).update(
            stripe_refund_id=stripe_refund_id, updated_at=timezone.now()
        )
        _advance(
            OrderRefund,
            refund_id,
            refund_status_from_stripe(status),
            {"failure_reason": storable_text(failure_reason, field="failure reason")},
        )
        source = REQUESTER_SOURCES[RefundRequester(refund.requested_by)]
        order_refunds_recompute(order_id=refund.order_id, source=source, order=order)
    refund = OrderRefund.objects.get(pk=refund_id)
    logger.info(
        "order %s refund %s (%s) recorded: %s", refund.order_id, refund.pk, stripe_refund_id, refund.status
    )
    return refund


def order_refund_refused(*, refund_id: uuid.UUID | str, message: str) -> OrderRefund:
    """Mark a refund request failed because Stripe refused it; its money is free to refund again."""
    refund = OrderRefund.objects.only("order_id").get(pk=refund_id)
    with transaction.atomic():
        _order(refund.order_id, lock=True)
        OrderRefund.objects.filter(pk=refund_id, status=RefundStatus.REQUESTED).update(
            status=RefundStatus.FAILED,
            failure_reason=storable_text(message, field="failure reason"),
            updated_at=timezone.now(),
        )
    logger.warning("order %s refund %s refused by Stripe: %s", refund.order_id, refund_id, message)
    return OrderRefund.objects.get(pk=refund_id)


def order_refund_apply(
    *,
    order_id: uuid.UUID | str,
    stripe_refund_id: str,
    amount: int,
    currency: str,
    status: str,
    reason: str = "",
    failure_reason: str = "",
    request_id: str | None = None,
    source: str = TransitionSource.WEBHOOK,
    stripe_event_id: str | None = None,
) -> Applied:
    """Upsert the row of a refund Stripe reports (by its id, or by our request id in its metadata)."""
    with transaction.atomic(savepoint=False):
        order = _order(order_id, lock=True)
        if request_id:
            # Our own refund whose webhook came before (or instead of) the API's answer: claim its row.
            OrderRefund.objects.filter(
                pk=_uuid(request_id), order_id=order_id, stripe_refund_id__isnull=True
            ).update(stripe_refund_id=stripe_refund_id, updated_at=timezone.now())
        fields = {"amount": amount, "failure_reason": storable_text(failure_reason, field="failure reason")}
        return _upsert(
            OrderRefund,
            order,
            {"stripe_refund_id": stripe_refund_id},
            refund_status_from_stripe(status),
            fields,
            created={
                "currency": currency,
                "reason": reason if reason in RefundReason.values else "",
                "requested_by": RefundRequester.DASHBOARD,
            },
            source=source,
            stripe_event_id=stripe_event_id,
        )


def order_dispute_apply(
    *,
    order_id: uuid.UUID | str,
    stripe_dispute_id: str,
    amount: int,
    currency: str,
    status: str,
    reason: str = "",
    evidence_due_by: datetime | None = None,
    source: str = TransitionSource.WEBHOOK,
    stripe_event_id: str | None = None,
) -> Applied:
    """Upsert the row of a dispute Stripe reports."""
    fields = {
        "amount": amount,
        "currency": currency,
        "reason": storable_text(reason, max_length=DISPUTE_REASON_MAX_LENGTH, field="dispute reason"),
        "evidence_due_by": evidence_due_by,
    }
    with transaction.atomic(savepoint=False):
        order = _order(order_id, lock=True)
        key = {"stripe_dispute_id": stripe_dispute_id}
        return _upsert(
            OrderDispute, order, key, status, fields, source=source, stripe_event_id=stripe_event_id
        )


def order_refunds_recompute(
    *, order_id: uuid.UUID | str, source: str, stripe_event_id: str | None = None, order: Order | None = None
) -> RefundTotals:
    """Sum the order's succeeded refunds and lost disputes into `amount_refunded`; refund it when covered.

    `order`: the row the caller already locked in this transaction.
    """
    with transaction.atomic(savepoint=False):
        order = order or _order(order_id, lock=True)
        returned = _returned(order.pk)
        capped = min(returned, order.amount_total)
        back, total = (money_format(amount, order.currency) for amount in (capped, order.amount_total))
        if returned > order.amount_total:
            went = money_format(returned, order.currency)
            logger.error("order %s: %s returned exceeds the total %s", order.pk, went, total)
        if capped != order.amount_refunded:
            Order.objects.filter(pk=order.pk).update(amount_refunded=capped, updated_at=timezone.now())
            logger.info(
                "order %s refunded %s of %s (event=%s)", order.pk, back, total, stripe_event_id or "-"
            )
        refunded_now = False
        if capped >= order.amount_total and order.status == OrderStatus.FULFILLED:
            refunded_now = transitions.order_refund(
                order_id=order.pk,
                source=source,
                stripe_event_id=stripe_event_id,
                note=f"refunds and lost disputes cover {money_format(capped, order.currency)}",
            ).won
        elif capped < order.amount_total and order.status == OrderStatus.REFUNDED:
            # States never move back; a refund that failed after succeeding leaves money with the shop.
            logger.error("order %s is refunded but only %s of %s went back", order.pk, back, total)
    return RefundTotals(order.amount_total, capped, order.currency, refunded_now)


def refund_status_from_stripe(stripe_status: str) -> str:
    """Return the row status for Stripe's refund status (requires_action waits like pending)."""
    return RefundStatus.PENDING if stripe_status == "requires_action" else RefundStatus(stripe_status)


def _order(order_id: uuid.UUID | str, *, lock: bool = False) -> Order:
    """Return the order's money fields, its row locked when `lock`, or raise OrderNotFound."""
    rows = Order.objects.select_for_update() if lock else Order.objects.all()
    try:
        return rows.only("pk", "status", "amount_total", "amount_refunded", "currency").get(pk=order_id)
    except Order.DoesNotExist:
        raise OrderNotFound(f"No order {order_id}.") from None


def _upsert(
    model: type[OrderRefund] | type[OrderDispute],
    order: Order,
    key: dict[str, str],
    status: str,
    fields: dict[str, object],
    *,
    created: dict[str, object] | None = None,
    source: str,
    stripe_event_id: str | None,
) -> Applied:
    """Insert the row Stripe reports, or move the stored one forward to it; then recompute the order's money.

    A concurrent copy of the same event may win the insert: the unique Stripe id decides, the loser updates.
    """
    pk = model.objects.filter(**key).values_list("pk", flat=True).first()
    is_new = False
    if pk is None:
        try:
            with transaction.atomic():
                pk = model.objects.create(
                    order_id=order.pk, status=status, **key, **fields, **(created or {})
                ).pk
                is_new = True
        except IntegrityError:
            pk = model.objects.get(**key).pk
    changed = is_new or _advance(model, pk, status, fields)
    totals = order_refunds_recompute(
        order_id=order.pk, source=source, stripe_event_id=stripe_event_id, order=order
    )
    return Applied(model.objects.get(pk=pk), is_new, changed, totals)


def _advance(model: type[models.Model], pk: object, status: str, fields: dict[str, object]) -> bool:
    """Move the row to `status` (refreshing its fields) unless it is already there or further on."""
    ranks = REFUND_STATUS_RANK if model is OrderRefund else DISPUTE_STATUS_RANK
    fields = {name: value for name, value in fields.items() if value not in (None, "")}
    if status != RefundStatus.FAILED:
        fields.pop("failure_reason", None)
    behind = [known for known, rank in ranks.items() if rank < ranks.get(status, 0)]
    return bool(
        model.objects.filter(pk=pk)
        .filter(Q(status__in=behind) | Q(status=status))
        .exclude(status=status, **fields)  # already so: not a change
        .update(status=status, updated_at=timezone.now(), **fields)
    )


def _reserved(order_pk: uuid.UUID) -> int:
    """Return the money refunds succeeded or under way, and lost disputes, hold."""
    refunds = OrderRefund.objects.filter(order_id=order_pk, status__in=RefundStatus.RESERVING)
    lost = OrderDispute.objects.filter(order_id=order_pk, status=DisputeStatus.LOST)
    return sum((rows.aggregate(total=Sum("amount"))["total"] or 0) for rows in (refunds, lost))


def _returned(order_pk: uuid.UUID) -> int:
    return money_returned(
        refunds=OrderRefund.objects.filter(order_id=order_pk).values_list("status", "amount"),
        disputes=OrderDispute.objects.filter(order_id=order_pk).values_list("status", "amount"),
    )


def _refund_amount(order: Order, amount: int | None, requester: RefundRequester) -> int:
    late_payment = requester == RefundRequester.AUTOMATIC and order.status in OrderStatus.CLOSED
    if order.status == OrderStatus.REFUNDED:
        raise RefundRefused(f"Order {order.pk} is already refunded in full.")
    if order.status != OrderStatus.FULFILLED and not late_payment:
        raise RefundRefused(
            f"Order {order.pk} is {order.status}: only a fulfilled order can be refunded "
            "(nothing was charged for it, or the payment has not completed)."
        )
    remaining = order.amount_total - _reserved(order.pk)
    under_way = OrderRefund.objects.filter(
        order_id=order.pk, status__in=(RefundStatus.REQUESTED, RefundStatus.PENDING)
    ).count()
    waiting = f" ({under_way} refunds still under way count against it)" if under_way else ""
    if under_way == 1:
        waiting = " (1 refund still under way counts against it)"
    if remaining <= 0:
        if _returned(order.pk) >= order.amount_total:
            raise RefundRefused(f"Order {order.pk} is already refunded in full.")
        raise RefundRefused(
            f"Nothing is left to refund on order {order.pk}: refunds under way already cover its "
            f"{money_format(order.amount_total, order.currency)}{waiting}."
        )
    if amount is None:
        return remaining
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise RefundRefused(f"A refund must be a positive amount, not {amount!r}.")
    if amount > remaining:
        total = money_format(order.amount_total, order.currency)
        raise RefundRefused(
            f"Cannot refund {money_format(amount, order.currency)} on order {order.pk}: only "
            f"{money_format(remaining, order.currency)} of its {total} is left to refund{waiting}."
        )
    return amount


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
