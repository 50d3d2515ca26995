"""What a person must look at, for the admin's Needs attention page and the counts on its index.

Each list is bounded (the most urgent `limit` rows through an index) and counted with a capped count
(exact up to orders.admin_support.EXACT_COUNT_LIMIT, PostgreSQL's estimate above), so the page costs the
same at a million orders as at a hundred. The rules of what counts as "needs a person" live here and in
the filters that link to the full lists (payments/admin_orders.py), which use the same querysets.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from orders.admin_support import capped_count
from orders.models import DisputeStatus, Order, OrderDispute, OrderRefund, OrderStatus, RefundStatus
from payments.models import EventStatus, StripeEvent

LIMIT = 20
# A refund Stripe has not finished with, or could not make: each is money a buyer is still owed.
UNSETTLED_REFUND_STATUSES = (RefundStatus.REQUESTED, RefundStatus.PENDING, RefundStatus.FAILED)
# A dispute the shop must answer, with evidence, before its due date or lose it.
OPEN_DISPUTE_STATUSES = (DisputeStatus.NEEDS_RESPONSE, DisputeStatus.WARNING_NEEDS_RESPONSE)


@dataclass(frozen=True)
class AttentionList:
    """One kind of thing to look at: its most urgent rows and how many there are in all."""

    key: str
    rows: list
    count: int
    count_is_estimate: bool


def session_expired_cutoff(*, now: datetime | None = None) -> datetime:
    """Return the creation time before which an order's Checkout Session has expired at Stripe."""
    return (now or timezone.now()) - timedelta(seconds=settings.CHECKOUT_SESSION_TTL_SECONDS)


def orders_flagged() -> QuerySet[Order]:
    """Return the orders the project could not settle by itself (a late payment), newest first."""
    return Order.objects.filter(needs_attention=True).order_by("-created_at", "-pk")


def open_past_session(*, now: datetime | None = None) -> Q:
    """Return the condition of an order still pending or confirmed after its session expired at Stripe.

    Reconcile or the audit settles such an order; many of them means neither is running.
    """
    return Q(status__in=OrderStatus.OPEN, created_at__lt=session_expired_cutoff(now=now))


def orders_open_past_session(*, now: datetime | None = None) -> QuerySet[Order]:
    """Return the open orders whose session has expired at Stripe, the longest waiting first."""
    return Order.objects.filter(open_past_session(now=now)).order_by("created_at", "pk")


def events_in_status(status: str) -> QuerySet[StripeEvent]:
    """Return the stored events in this status, newest first."""
    return StripeEvent.objects.filter(status=status).order_by("-received_at", "-pk")


def refunds_unsettled() -> QuerySet[OrderRefund]:
    """Return the refunds still requested, pending at Stripe, or failed, the oldest first."""
    return OrderRefund.objects.filter(status__in=UNSETTLED_REFUND_STATUSES).order_by("created_at", "pk")


def disputes_open() -> QuerySet[OrderDispute]:
    """Return the disputes waiting for the shop's response, the evidence due soonest first."""
    return OrderDispute.objects.filter(status__in=OPEN_DISPUTE_STATUSES).order_by("evidence_due_by", "pk")


def attention_querysets(*, now: datetime | None = None) -> dict[str, QuerySet]:
    """Return every list a person must look at, by key, in the order the page shows them."""
    return {
        "flagged_orders": orders_flagged(),
        "needs_review_events": events_in_status(EventStatus.NEEDS_REVIEW),
        "failed_events": events_in_status(EventStatus.FAILED),
        "open_past_session": orders_open_past_session(now=now),
        "unsettled_refunds": refunds_unsettled(),
        "open_disputes": disputes_open(),
    }


def attention_counts(*, now: datetime | None = None) -> dict[str, tuple[int, bool]]:
    """Return (count, is_estimate) for every list, without reading its rows."""
    return {key: capped_count(queryset) for key, queryset in attention_querysets(now=now).items()}


def attention_lists(*, now: datetime | None = None, limit: int = LIMIT) -> list[AttentionList]:
    """Return every list with its `limit` most urgent rows and its capped count."""
    lists = []
    for key, queryset in attention_querysets(now=now).items():
        count, estimate = capped_count(queryset)
        if queryset.model is StripeEvent:
            queryset = queryset.defer("payload", "payload_text")  # kilobytes each, and not shown
        rows = list(queryset[:limit]) if count else []
        lists.append(AttentionList(key=key, rows=rows, count=count, count_is_estimate=estimate))
    return lists
