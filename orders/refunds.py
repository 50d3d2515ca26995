"""Refunds and disputes of an order: reserve a refund, record what Stripe says, recompute what went back.

`Order.amount_refunded` is never added to. Every write of a refund or dispute row is followed, in the
same transaction, by `order_refunds_recompute`, which sums the rows again (succeeded refunds plus lost
disputes, capped at the total) and takes the `refund` transition when the sum covers the order. A
duplicated or reordered event can change a row at most to the state it already holds, so it cannot count
twice. Rows only move forward through their statuses (`REFUND_STATUS_RANK`, `DISPUTE_STATUS_RANK`).

Every writer locks the order's row first, then writes the refund or dispute rows, then sums: one lock
order, so writers never deadlock, and the last one to take the lock sees every row committed before it.
"""

import logging
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from orders import transitions
from orders.db import storable_text
from orders.exceptions import OrderNotFound, RefundRefused
from orders.models import (
    CLOSED_STATUSES,
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
from orders.money import currency_decimals, money_format
from orders.refund_signals import disputes_owed_signal, refunds_owed_signal
from orders.tasks import order_disputed_signal_task, order_refunded_signal_task

logger = logging.getLogger(__name__)

# Orders whose money may be given back: fulfilled ones (partly refunded ones stay fulfilled), and, for the
# automatic refund of money that reached an order already closed (a late payment), failed and expired ones.
REFUNDABLE_STATUSES = frozenset({OrderStatus.FULFILLED})
LATE_PAYMENT_STATUSES = CLOSED_STATUSES

# Refunds that hold part of the order's money: gone (succeeded) or on their way (requested, pending).
RESERVING_STATUSES = (RefundStatus.REQUESTED, RefundStatus.PENDING, RefundStatus.SUCCEEDED)

REFUND_STATUS_RANK = {
    RefundStatus.REQUESTED: 0,
    RefundStatus.PENDING: 1,
    RefundStatus.SUCCEEDED: 2,
    # A succeeded refund can still fail (a closed card account): failed outranks succeeded.
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

DISPUTE_REASON_MAX_LENGTH = OrderDispute._meta.get_field("reason").max_length
_AMOUNT = re.compile(r"^\s*(\d+)(?:\.(\d+))?\s*$")
REQUESTER_SOURCES = {
    RefundRequester.ADMIN: TransitionSource.ADMIN,
    RefundRequester.COMMAND: TransitionSource.COMMAND,
    RefundRequester.AUTOMATIC: TransitionSource.SYSTEM,
    RefundRequester.DASHBOARD: TransitionSource.WEBHOOK,
}


@dataclass(frozen=True)
class RefundTotals:
    """An order's money after a recompute: what went back, and whether this call refunded the order."""

    amount_total: int
    amount_refunded: int
    reserved: int  # succeeded, pending and requested refunds, plus lost disputes
    refunded_now: bool  # this call took the `refund` transition

    @property
    def full(self) -> bool:
        return self.amount_refunded >= self.amount_total


def refund_amount_parse(text: str, *, currency: str) -> tuple[int, bool]:
    """Return minor units from '1250' (minor units) or '12.50' (a decimal); the bool says it was a decimal."""
    match = _AMOUNT.match(text or "")
    decimals = currency_decimals(currency)
    if not match or (match.group(2) is not None and len(match.group(2)) > decimals):
        example = f"12.{'5' * decimals}" if decimals else "no decimal point: this currency has no minor unit"
        raise RefundRefused(f"{text!r} is not an amount: write minor units (1250) or a decimal ({example}).")
    whole, fraction = match.groups()
    if fraction is None:
        return int(whole), False
    return int(whole) * 10**decimals + int(fraction.ljust(decimals, "0")), True


def order_refundable_remaining(*, order_id: uuid.UUID | str) -> int:
    """Return what is left to refund: the total less refunds succeeded or under way and lost disputes."""
    order = Order.objects.only("amount_total").get(pk=order_id)
    return order.amount_total - _reserved(order.pk)


def order_refund_request(
    *,
    order_id: uuid.UUID | str,
    amount: int | None,
    reason: str = "",
    requested_by: str,
    requested_by_user: str = "",
    request_id: uuid.UUID | None = None,
) -> tuple[OrderRefund, bool]:
    """Reserve a refund (the whole remainder when `amount` is None); return the row and whether it is new.

    `request_id` (a confirmation form's token) makes a repeated submit find its first row instead of
    asking twice. Raises RefundRefused, with a message for people, before anything is written.
    """
    requester = RefundRequester(requested_by)
    if reason not in RefundReason.values and reason != "":
        choices = ", ".join(RefundReason.values)
        raise RefundRefused(f"{reason!r} is not a refund reason Stripe knows: use {choices}, or none.")
    with transaction.atomic():
        # A row lock, where the state machine elsewhere needs only a conditional UPDATE: a refund reserves
        # money against the SUM of the order's other refund rows, which no WHERE clause on one row can
        # see. While we hold the order's row, every other request and recompute for it waits, so two
        # operators refunding the remainder at once see each other's reservation: one of them is refused.
        order = _lock(order_id)
        if request_id is not None:
            existing = OrderRefund.objects.filter(pk=request_id).first()
            if existing is not None:
                return _repeated(existing, order=order, amount=amount), False
        amount = _refund_amount(order, amount, requester)
        refund = OrderRefund.objects.create(
            id=request_id or uuid.uuid4(),
            order_id=order.pk,
            amount=amount,
            currency=order.currency,
            reason=reason,
            requested_by=requester,
            requested_by_user=requested_by_user,
        )
    logger.info(
        "order %s refund %s requested: %d %s by %s%s (reason=%s)",
        order.pk,
        refund.pk,
        amount,
        order.currency,
        requester.value,
        f" ({requested_by_user})" if requested_by_user else "",
        reason or "-",
    )
    return refund, True


def order_refund_record(
    *,
    refund_id: uuid.UUID | str,
    stripe_refund_id: str,
    status: str,
    failure_reason: str = "",
) -> OrderRefund:
    """Record Stripe's answer to our refund request (its id and status), unless a webhook got further."""
    refund = OrderRefund.objects.only("order_id").get(pk=refund_id)
    with transaction.atomic():
        order = _lock(refund.order_id)
        OrderRefund.objects.filter(pk=refund_id, stripe_refund_id__isnull=True).update(
            stripe_refund_id=stripe_refund_id, updated_at=timezone.now()
        )
        changed = _refund_advance(refund_id, refund_status_from_stripe(status), failure_reason=failure_reason)
        totals = order_refunds_recompute(order_id=refund.order_id, source=_source_of(refund_id), order=order)
        _signal_refund_if_owed(refund_id)
    refund = OrderRefund.objects.get(pk=refund_id)
    logger.info(
        "order %s refund %s (%s) recorded: %s%s; refunded %d of %d",
        refund.order_id,
        refund.pk,
        stripe_refund_id,
        refund.status,
        "" if changed else " (a webhook had told us already)",
        totals.amount_refunded,
        totals.amount_total,
    )
    return refund


def order_refund_refused(*, refund_id: uuid.UUID | str, message: str) -> OrderRefund:
    """Mark a refund request failed because Stripe refused it; its money is free to refund again."""
    refund = OrderRefund.objects.only("order_id").get(pk=refund_id)
    with transaction.atomic():
        _lock(refund.order_id)
        OrderRefund.objects.filter(pk=refund_id, status=RefundStatus.REQUESTED).update(
            status=RefundStatus.FAILED, failure_reason=message, updated_at=timezone.now()
        )
    logger.warning("order %s refund %s refused by Stripe: %s", refund.order_id, refund_id, message)
    return OrderRefund.objects.get(pk=refund_id)


@dataclass(frozen=True)
class RefundApplied:
    """What applying one Stripe refund object did: its row, whether it changed, and the order's money."""

    refund: OrderRefund
    created: bool  # the refund was unknown here (made in the Dashboard, say)
    changed: bool
    totals: RefundTotals


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
) -> RefundApplied:
    """Upsert the row of a refund Stripe reports (by its id, or by our request id in its metadata)."""
    status = refund_status_from_stripe(status)
    reason = reason if reason in RefundReason.values else ""
    failure_reason = storable_text(failure_reason, field="refund failure reason")
    with transaction.atomic(savepoint=False):
        order = _lock(order_id)
        created = False
        if request_id:
            # Our own refund whose webhook came before (or instead of) the API's answer: claim its row.
            OrderRefund.objects.filter(
                pk=_uuid(request_id), order_id=order_id, stripe_refund_id__isnull=True
            ).update(stripe_refund_id=stripe_refund_id, updated_at=timezone.now())
        refund_pk = (
            OrderRefund.objects.filter(stripe_refund_id=stripe_refund_id).values_list("pk", flat=True).first()
        )
        if refund_pk is None:
            refund_pk, created = _refund_insert(
                order_id=order_id,
                stripe_refund_id=stripe_refund_id,
                amount=amount,
                currency=currency,
                status=status,
                reason=reason,
                failure_reason=failure_reason,
            )
        changed = created or _refund_advance(refund_pk, status, amount=amount, failure_reason=failure_reason)
        totals = order_refunds_recompute(
            order_id=order_id, source=source, stripe_event_id=stripe_event_id, order=order
        )
        _signal_refund_if_owed(refund_pk)
    return RefundApplied(OrderRefund.objects.get(pk=refund_pk), created, changed, totals)


@dataclass(frozen=True)
class DisputeApplied:
    """What applying one Stripe dispute object did."""

    dispute: OrderDispute
    created: bool
    changed: bool
    totals: RefundTotals


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
) -> DisputeApplied:
    """Upsert a dispute's row from what Stripe reports, never moving it backwards, then recompute."""
    reason = storable_text(reason, max_length=DISPUTE_REASON_MAX_LENGTH, field="dispute reason")
    fields = {"amount": amount, "currency": currency, "reason": reason, "evidence_due_by": evidence_due_by}
    with transaction.atomic(savepoint=False):
        order = _lock(order_id)
        created = False
        dispute_pk = (
            OrderDispute.objects.filter(stripe_dispute_id=stripe_dispute_id)
            .values_list("pk", flat=True)
            .first()
        )
        if dispute_pk is None:
            try:
                with transaction.atomic():
                    dispute_pk = OrderDispute.objects.create(
                        order_id=order_id, stripe_dispute_id=stripe_dispute_id, status=status, **fields
                    ).pk
                    created = True
            except IntegrityError:
                dispute_pk = OrderDispute.objects.get(stripe_dispute_id=stripe_dispute_id).pk
        changed = created or bool(
            OrderDispute.objects.filter(pk=dispute_pk)
            .filter(Q(status__in=_not_beyond(DISPUTE_STATUS_RANK, status)) | Q(status=status))
            .exclude(status=status, **fields)  # already so: not a change
            .update(status=status, updated_at=timezone.now(), **fields)
        )
        totals = order_refunds_recompute(
            order_id=order_id, source=source, stripe_event_id=stripe_event_id, order=order
        )
        _signal_dispute_if_owed(dispute_pk)
    return DisputeApplied(OrderDispute.objects.get(pk=dispute_pk), created, changed, totals)


def order_refunds_recompute(
    *,
    order_id: uuid.UUID | str,
    source: str,
    stripe_event_id: str | None = None,
    order: Order | None = None,
) -> RefundTotals:
    """Sum the order's succeeded refunds and lost disputes into `amount_refunded`; refund it when covered.

    `order` is the row a caller already locked in this transaction (it wrote only refund and dispute rows
    since), so the lock is not taken twice; without it the order is locked here.
    """
    with transaction.atomic(savepoint=False):
        order = order if order is not None else _lock(order_id)
        returned = _returned(order.pk)
        capped = min(returned, order.amount_total)
        if returned > order.amount_total:
            logger.error(
                "order %s: refunds and lost disputes (%d) exceed the total (%d): counted as %d",
                order.pk,
                returned,
                order.amount_total,
                capped,
            )
        if capped != order.amount_refunded:
            Order.objects.filter(pk=order.pk).update(amount_refunded=capped, updated_at=timezone.now())
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
            logger.error(
                "order %s is refunded but only %d of %d went back (a refund failed late): a person must look",
                order.pk,
                capped,
                order.amount_total,
            )
        reserved = _reserved(order.pk)
    if capped != order.amount_refunded:
        logger.info(
            "order %s amount_refunded %d -> %d of %d (event=%s)",
            order.pk,
            order.amount_refunded,
            capped,
            order.amount_total,
            stripe_event_id or "-",
        )
    return RefundTotals(order.amount_total, capped, reserved, refunded_now)


def refund_status_from_stripe(status: str) -> str:
    """Return the row status for Stripe's refund status (requires_action waits like pending)."""
    if status == "requires_action":
        return RefundStatus.PENDING
    return RefundStatus(status)


def _lock(order_id: uuid.UUID | str) -> Order:
    order = (
        Order.objects.select_for_update()
        .only("pk", "status", "amount_total", "amount_refunded", "currency")
        .filter(pk=order_id)
        .first()
    )
    if order is None:
        raise OrderNotFound(f"No order {order_id}.")
    return order


def _check_refundable(order: Order, requester: RefundRequester) -> None:
    if order.status in REFUNDABLE_STATUSES:
        return
    if requester == RefundRequester.AUTOMATIC and order.status in LATE_PAYMENT_STATUSES:
        return
    if order.status == OrderStatus.REFUNDED:
        raise RefundRefused(f"Order {order.pk} is already refunded in full.")
    raise RefundRefused(
        f"Order {order.pk} is {order.status}: only a fulfilled order can be refunded "
        "(nothing was charged for it, or the payment has not completed)."
    )


def _repeated(existing: OrderRefund, *, order: Order, amount: int | None) -> OrderRefund:
    if existing.order_id != order.pk or (amount is not None and amount != existing.amount):
        raise RefundRefused(
            f"This refund request ({existing.pk}) was already made for "
            f"{money_format(existing.amount, existing.currency)} on order {existing.order_id}; "
            "start a new refund for another amount."
        )
    return existing


def _reserved(order_pk: uuid.UUID) -> int:
    refunds = OrderRefund.objects.filter(order_id=order_pk, status__in=RESERVING_STATUSES).aggregate(
        total=Sum("amount")
    )["total"]
    return (refunds or 0) + _lost(order_pk)


def money_returned(*, refunds: Iterable[tuple[str, int]], disputes: Iterable[tuple[str, int]]) -> int:
    """Return what went back to the buyer: succeeded refunds plus lost disputes, as (status, amount) pairs.

    The one rule, for the order's rows here and for what Stripe lists (the audit compares the two).
    """
    return sum(amount for status, amount in refunds if status == RefundStatus.SUCCEEDED) + sum(
        amount for status, amount in disputes if status == DisputeStatus.LOST
    )


def _returned(order_pk: uuid.UUID) -> int:
    return money_returned(
        refunds=OrderRefund.objects.filter(order_id=order_pk).values_list("status", "amount"),
        disputes=OrderDispute.objects.filter(order_id=order_pk).values_list("status", "amount"),
    )


def _lost(order_pk: uuid.UUID) -> int:
    lost = OrderDispute.objects.filter(order_id=order_pk, status=DisputeStatus.LOST).aggregate(
        total=Sum("amount")
    )["total"]
    return lost or 0


def _under_way(order_pk: uuid.UUID) -> str:
    waiting = OrderRefund.objects.filter(
        order_id=order_pk, status__in=(RefundStatus.REQUESTED, RefundStatus.PENDING)
    ).count()
    return f" ({waiting} refund(s) still under way count against it)" if waiting else ""


def _nothing_left(order: Order, reserved: int) -> str:
    if _returned(order.pk) >= order.amount_total:
        return f"Order {order.pk} is already refunded in full."
    return (
        f"Nothing is left to refund on order {order.pk}: refunds under way already cover its "
        f"{money_format(order.amount_total, order.currency)}{_under_way(order.pk)}."
    )


def _not_beyond(ranks: dict[str, int], status: str) -> list[str]:
    """Return the statuses a row may leave for `status`: those ranked below it."""
    rank = ranks.get(status, 0)
    return [known for known, known_rank in ranks.items() if known_rank < rank]


def _refund_advance(refund_pk: uuid.UUID | str, status: str, **fields: object) -> bool:
    """Move the refund row to `status` (refreshing its fields) unless it is already further on."""
    fields = {name: value for name, value in fields.items() if value not in (None, "")}
    if status != RefundStatus.FAILED:
        fields.pop("failure_reason", None)
    return bool(
        OrderRefund.objects.filter(pk=refund_pk)
        .filter(Q(status__in=_not_beyond(REFUND_STATUS_RANK, status)) | Q(status=status))
        .exclude(status=status, **fields)  # already so: not a change
        .update(status=status, updated_at=timezone.now(), **fields)
    )


def _refund_insert(**values: object) -> tuple[uuid.UUID, bool]:
    """Insert the row of a refund we did not ask for; a concurrent copy of the event may win the insert."""
    try:
        with transaction.atomic():
            return OrderRefund.objects.create(requested_by=RefundRequester.DASHBOARD, **values).pk, True
    except IntegrityError:
        return OrderRefund.objects.get(stripe_refund_id=values["stripe_refund_id"]).pk, False


def _source_of(refund_pk: uuid.UUID | str) -> str:
    requester = OrderRefund.objects.values_list("requested_by", flat=True).get(pk=refund_pk)
    return REQUESTER_SOURCES[RefundRequester(requester)]


def _signal_refund_if_owed(refund_pk: uuid.UUID | str) -> None:
    # Queued in the writer's transaction: the task commits with the refund that made it due, or neither
    # does. The worker's claim still decides; a copy queued by a duplicate event finds nothing to send.
    if refunds_owed_signal().filter(pk=refund_pk).exists():
        order_refunded_signal_task.enqueue(refund_id=str(refund_pk))


def _signal_dispute_if_owed(dispute_pk: int) -> None:
    status = disputes_owed_signal().filter(pk=dispute_pk).values_list("status", flat=True).first()
    if status is not None:
        order_disputed_signal_task.enqueue(dispute_id=dispute_pk, status=status)


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def order_refund_amount_check(*, order_id: uuid.UUID | str, amount: int | None, requested_by: str) -> int:
    """Return the amount a refund would take (the remainder when None), or raise RefundRefused saying why.

    For a confirmation page: the request itself checks again under the order's lock.
    """
    order = Order.objects.only("pk", "status", "amount_total", "currency").filter(pk=order_id).first()
    if order is None:
        raise OrderNotFound(f"No order {order_id}.")
    return _refund_amount(order, amount, RefundRequester(requested_by))


def _refund_amount(order: Order, amount: int | None, requester: RefundRequester) -> int:
    """Return the amount to refund (the remainder when None), or raise RefundRefused."""
    _check_refundable(order, requester)
    reserved = _reserved(order.pk)
    remaining = order.amount_total - reserved
    if remaining <= 0:
        raise RefundRefused(_nothing_left(order, reserved))
    if amount is None:
        return remaining
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise RefundRefused(f"A refund must be a positive whole number of minor units, not {amount!r}.")
    if amount > remaining:
        raise RefundRefused(
            f"Cannot refund {money_format(amount, order.currency)} on order {order.pk}: only "
            f"{money_format(remaining, order.currency)} of its "
            f"{money_format(order.amount_total, order.currency)} is left to refund"
            f"{_under_way(order.pk)}."
        )
    return amount


def order_attach_payment_intent(*, order_id: uuid.UUID | str, payment_intent_id: str) -> bool:
    """Record the order's PaymentIntent id where it is missing (refunds and disputes find orders by it)."""
    attached = (
        Order.objects.filter(pk=order_id, stripe_payment_intent_id="").update(
            stripe_payment_intent_id=payment_intent_id
        )
        == 1
    )
    logger.info("order %s payment intent %s attached=%s", order_id, payment_intent_id, attached)
    return attached
