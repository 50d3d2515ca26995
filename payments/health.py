"""The event queue's and the inbox's health figures, for `/metrics` and the admin alike.

Read from the database when asked, so every process agrees, and cheap over millions of finished rows: the
queue reads its partial index, counts are capped (`orders.db.capped_count`), latencies read a bounded sample.
"""

import contextlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Min, Q
from django.utils import timezone

from orders.db import capped_count
from orders.models import Order, OrderStatus, OrderTransition, TransitionSource
from payments import gateway
from payments.exceptions import PaymentProviderError
from payments.handlers import HANDLERS
from payments.models import FINISHED_STATUSES, UNFINISHED_STATUSES, EventStatus, StripeEvent

LATENCY_WINDOW = timedelta(minutes=5)
LATENCY_SAMPLE_LIMIT = 10_000  # the most recent finished events read: a burst cannot make a scrape costly
LATENCY_QUANTILES = (0.5, 0.9, 0.99)

# Each process asks Stripe for its undelivered events at most once a minute (a failure is kept as long)
# and waits at most a few seconds: a scrape never waits on Stripe for long.
UNDELIVERED_CACHE_SECONDS = 60
UNDELIVERED_TIMEOUT_SECONDS = 3.0
UNDELIVERED_LIMIT = 100  # one page, newest first
UNDELIVERED_CACHE_KEY = "health:stripe-events-undelivered"


@dataclass(frozen=True)
class Lost:
    """Paid orders or Stripe events whose webhook looks lost: how many, and how long for the oldest."""

    count: int
    oldest_age: timedelta | None


@dataclass(frozen=True)
class EventQueue:
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
    """Return the queue's figures from its partial index: they cost what the queue holds, not the history."""
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


def lost_after() -> timedelta:
    """Return how long a webhook may be on its way before it counts as lost: Stripe delivers in seconds, a
    worker processes at once, or after WORKER_LEASE_SECONDS if the one that claimed the event died."""
    return timedelta(seconds=settings.WORKER_LEASE_SECONDS)


def orders_paid_not_fulfilled(*, now: datetime | None = None) -> Lost:
    """Return the orders paid (confirmed by the buyer's return) and not fulfilled for longer than
    lost_after(): their fulfilling webhook never came, or no worker processes the queue."""
    now = now or timezone.now()
    figures = Order.objects.filter(
        status=OrderStatus.CONFIRMED, confirmed_at__lt=now - lost_after()
    ).aggregate(count=Count("pk"), oldest=Min("confirmed_at"))
    return Lost(figures["count"], now - figures["oldest"] if figures["oldest"] else None)


def stripe_events_undelivered(*, now: datetime | None = None) -> Lost | None:
    """Return the handled events Stripe lists as undelivered for longer than lost_after() that the inbox
    does not hold (Stripe goes on listing a backfilled one); None when Stripe did not answer."""
    now = now or timezone.now()
    try:
        listed = cache.get(UNDELIVERED_CACHE_KEY)
    except Exception:  # the cache (Redis) is down: ask Stripe rather than fail the whole scrape
        listed = None
    if listed is None:
        try:
            listed = gateway.events_undelivered(
                types=sorted(HANDLERS), limit=UNDELIVERED_LIMIT, timeout=UNDELIVERED_TIMEOUT_SECONDS
            )
        except PaymentProviderError:
            listed = False  # not configured, unreachable or refused: kept too, so asked once a minute
        with contextlib.suppress(Exception):
            cache.set(UNDELIVERED_CACHE_KEY, listed, UNDELIVERED_CACHE_SECONDS)
    if listed is False:
        return None
    due = {event_id: created for event_id, created in listed if created < (now - lost_after()).timestamp()}
    stored = set(StripeEvent.objects.filter(stripe_id__in=due).values_list("stripe_id", flat=True))
    lost = [created for event_id, created in due.items() if event_id not in stored]
    oldest = datetime.fromtimestamp(min(lost), tz=UTC) if lost else None
    return Lost(len(lost), now - oldest if oldest else None)


def stripe_event_counts() -> dict[str, int]:
    """Return how many stored events are in each status, zeros included (capped: see the module)."""
    return {
        status: capped_count(StripeEvent.objects.filter(status=status))[0] for status in EventStatus.values
    }


def order_transition_counts() -> dict[str, int]:
    """Return how many order transitions each source ever made, zeros included (capped: see the module)."""
    return {
        src: capped_count(OrderTransition.objects.filter(source=src))[0] for src in TransitionSource.values
    }


def event_processing_latency(
    *, now: datetime | None = None, window: timedelta = LATENCY_WINDOW, limit: int = LATENCY_SAMPLE_LIMIT
) -> EventLatency:
    """Return the quantiles of `received_at` -> `processed_at` over the (at most `limit`) most recent
    finished events received in the window; one still waiting shows in the queue's figures instead."""
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
