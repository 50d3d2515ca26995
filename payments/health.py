"""The event queue's and the inbox's health figures, for `/metrics` and the admin alike.

Every figure is read from the database when it is asked for, so every web process and every worker
agrees on it, and each stays cheap when the tables hold millions of finished rows: the queue's figures
come from its partial index, the counts by status or source are capped (`orders.db.capped_count`), the
latencies read at most LATENCY_SAMPLE_LIMIT recent rows.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q, QuerySet
from django.utils import timezone

from orders.db import capped_count
from orders.models import OrderTransition, TransitionSource
from payments.models import FINISHED_STATUSES, UNFINISHED_STATUSES, EventStatus, StripeEvent

LATENCY_WINDOW = timedelta(minutes=5)
# The most recent finished events a latency summary reads: a burst cannot make a scrape expensive.
LATENCY_SAMPLE_LIMIT = 10_000
LATENCY_QUANTILES = (0.5, 0.9, 0.99)


@dataclass(frozen=True)
class EventQueue:
    """The stored events still to process, as workers see them."""

    waiting: int  # due now and held by no worker: a worker should take them at once
    claimed: int  # held by a worker now
    scheduled: int  # a failed event's retry, not due yet
    oldest_waiting_age: timedelta | None  # how long the longest-due waiting event has been due
    finished_per_second: float  # events finished over the last LATENCY_WINDOW


@dataclass(frozen=True)
class EventLatency:
    """Seconds from storing an event to finishing it, over the events received in a recent window."""

    window: timedelta
    count: int  # finished events in the window that the figures below describe
    quantiles: dict[float, float]  # {0.5: seconds, 0.9: ..., 0.99: ...}; empty when count is 0
    max: float | None


def event_queue(*, now: datetime | None = None) -> EventQueue:
    """Return the queue's figures from its own partial index (only unfinished events), so they cost what
    the queue holds, never the history of finished events."""
    now = now or timezone.now()
    unclaimed = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    waiting = Q(next_attempt_at__lte=now) & unclaimed
    figures = StripeEvent.objects.filter(
        status__in=UNFINISHED_STATUSES, next_attempt_at__isnull=False
    ).aggregate(
        waiting=Count("pk", filter=waiting),
        claimed=Count("pk", filter=~unclaimed),
        scheduled=Count("pk", filter=Q(next_attempt_at__gt=now) & unclaimed),
        oldest=Min("next_attempt_at", filter=waiting),
    )
    recent = StripeEvent.objects.filter(status__in=FINISHED_STATUSES, processed_at__gte=now - LATENCY_WINDOW)
    finished = recent.order_by()[:LATENCY_SAMPLE_LIMIT].count()
    return EventQueue(
        waiting=figures["waiting"],
        claimed=figures["claimed"],
        scheduled=figures["scheduled"],
        oldest_waiting_age=max(now - figures["oldest"], timedelta(0)) if figures["oldest"] else None,
        finished_per_second=finished / LATENCY_WINDOW.total_seconds(),
    )


def stripe_event_counts() -> dict[str, int]:
    """Return the number of stored events in each status (every status, zeros included).

    Exact up to EXACT_COUNT_LIMIT; above it, on PostgreSQL, the planner's estimate (see the module).
    """
    return {status: _count(StripeEvent.objects.filter(status=status)) for status in EventStatus.values}


def order_transition_counts() -> dict[str, int]:
    """Return the number of order transitions ever made by each source (every source, zeros included).

    Exact up to EXACT_COUNT_LIMIT; above it, on PostgreSQL, the planner's estimate (see the module).
    """
    return {
        source: _count(OrderTransition.objects.filter(source=source)) for source in TransitionSource.values
    }


def event_processing_latency(
    *, now: datetime | None = None, window: timedelta = LATENCY_WINDOW, limit: int = LATENCY_SAMPLE_LIMIT
) -> EventLatency:
    """Return the quantiles of `received_at` -> `processed_at` over events received in the window.

    Only finished events (processed, ignored, needs_review) have a `processed_at`; one still waiting
    shows in the queue's figures instead. At most `limit` of the most recent are read.
    """
    now = now or timezone.now()
    rows = (
        StripeEvent.objects.filter(status__in=FINISHED_STATUSES, received_at__gte=now - window)
        .exclude(processed_at=None)
        .order_by("-received_at")
        .values_list("received_at", "processed_at")[:limit]
    )
    seconds = sorted(max((processed - received).total_seconds(), 0.0) for received, processed in rows)
    return EventLatency(
        window=window,
        count=len(seconds),
        quantiles={q: _quantile(seconds, q) for q in LATENCY_QUANTILES} if seconds else {},
        max=seconds[-1] if seconds else None,
    )


def _quantile(ordered: list[float], q: float) -> float:
    """Return the nearest-rank quantile of an ordered, non-empty list."""
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def _count(queryset: QuerySet) -> int:
    return capped_count(queryset)[0]
