"""The task queue's and the event inbox's health figures, for `/metrics` and the admin alike.

Every figure is read from the database when it is asked for, so all gunicorn workers and all task
workers agree on it. Each stays cheap when the tables hold millions of finished rows:

- Tasks waiting and running are read from partial indexes that hold only READY rows (django-tasks-db's
  `tasks_db_new_ordering_idx`) and only RUNNING rows (`payments_task_running_idx`, migration
  `payments.0004`), so their cost follows the queue, never the history of finished tasks.
- The oldest received event, the recent latencies and the counts below use StripeEvent's
  (status, received_at) index, and the counts of transitions OrderTransition's (source) index.
- Counts by status or source are exact up to EXACT_COUNT_LIMIT (a count of at most that many index
  entries). Above it, PostgreSQL answers with its planner's estimate, which costs no scan and follows
  the table's growth between ANALYZEs; other databases count exactly (a SQLite shop is small).
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Min, Q, QuerySet
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult, get_date_max

from orders.db import capped_count
from orders.models import OrderTransition, TransitionSource
from payments.models import FINISHED_STATUSES, EventStatus, StripeEvent

LATENCY_WINDOW = timedelta(minutes=5)
# The most recent finished events a latency summary reads: a burst cannot make a scrape expensive.
LATENCY_SAMPLE_LIMIT = 10_000
LATENCY_QUANTILES = (0.5, 0.9, 0.99)


@dataclass(frozen=True)
class TaskQueue:
    """The tasks waiting for a worker (READY)."""

    waiting: int  # may run now: a worker should pick them up at once
    scheduled: int  # a retry's backoff (`run_after` in the future): not due yet
    oldest_waiting_age: timedelta | None  # how long the longest-waiting runnable task has been due


@dataclass(frozen=True)
class RunningTasks:
    """The tasks a worker has claimed (RUNNING)."""

    running: int
    stuck: int  # claimed longer ago than TASK_LEASE_SECONDS: their worker is presumed dead


@dataclass(frozen=True)
class EventLatency:
    """Seconds from storing an event to finishing it, over the events received in a recent window."""

    window: timedelta
    count: int  # finished events in the window that the figures below describe
    quantiles: dict[float, float]  # {0.5: seconds, 0.9: ..., 0.99: ...}; empty when count is 0
    max: float | None


def task_queue(*, now: datetime | None = None) -> TaskQueue:
    """Return the tasks waiting, those scheduled for a retry, and how long the oldest runnable one waited.

    A task is due from `run_after` when it has one (a retry) and from `enqueued_at` otherwise (django-
    tasks-db stores "no run_after" as its far-future date_max), so a retry's backoff is not counted as
    waiting.
    """
    now = now or timezone.now()
    no_delay = get_date_max()
    due = Q(run_after=no_delay) | Q(run_after__lte=now)
    figures = DBTaskResult.objects.filter(status=TaskResultStatus.READY).aggregate(
        waiting=Count("pk", filter=due),
        scheduled=Count("pk", filter=~due),
        oldest_undelayed=Min("enqueued_at", filter=Q(run_after=no_delay)),
        oldest_retry_due=Min("run_after", filter=Q(run_after__lte=now)),
    )
    due_since = [moment for moment in (figures["oldest_undelayed"], figures["oldest_retry_due"]) if moment]
    return TaskQueue(
        waiting=figures["waiting"],
        scheduled=figures["scheduled"],
        oldest_waiting_age=max(now - min(due_since), timedelta(0)) if due_since else None,
    )


def running_tasks(*, now: datetime | None = None) -> RunningTasks:
    """Return the tasks claimed by a worker, and those claimed longer ago than the lease."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.TASK_LEASE_SECONDS)
    figures = DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING).aggregate(
        running=Count("pk"), stuck=Count("pk", filter=Q(started_at__lt=cutoff))
    )
    return RunningTasks(running=figures["running"], stuck=figures["stuck"])


def oldest_received_event_age(*, now: datetime | None = None) -> timedelta | None:
    """Return how long the oldest event still `received` (stored, not processed) has waited, or None."""
    now = now or timezone.now()
    oldest = (
        StripeEvent.objects.filter(status=EventStatus.RECEIVED)
        .order_by("received_at")
        .values_list("received_at", flat=True)
        .first()
    )
    return max(now - oldest, timedelta(0)) if oldest else None


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
    shows in `oldest_received_event_age` instead. At most `limit` of the most recent are read.
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
