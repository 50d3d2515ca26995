"""The queue's and the inbox's health figures match the rows, on both databases."""

from datetime import timedelta

import pytest
from django.db import connection
from django_tasks import TaskResultStatus

from orders import db
from payments import health
from payments.models import EventStatus
from payments.tests.health_rows import (
    NOW,
    event_stored,
    task_claimed,
    task_queued,
    transitions_written,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _database_queue():
    """Queue tasks as production does, and run none."""


def test_an_empty_queue_has_no_depth_and_no_age():
    queue = health.task_queue(now=NOW)

    assert (queue.waiting, queue.scheduled, queue.oldest_waiting_age) == (0, 0, None)


def test_queue_depth_splits_tasks_due_now_from_retries_scheduled_later():
    task_queued(enqueued_at=NOW - timedelta(seconds=30))
    task_queued(enqueued_at=NOW - timedelta(seconds=5))
    # A retry whose backoff has passed is due; one whose backoff has not is only scheduled.
    task_queued(enqueued_at=NOW - timedelta(seconds=60), run_after=NOW - timedelta(seconds=10))
    task_queued(enqueued_at=NOW - timedelta(seconds=90), run_after=NOW + timedelta(minutes=5))
    # Finished and claimed tasks are not waiting.
    task_queued(enqueued_at=NOW - timedelta(hours=1), status=TaskResultStatus.SUCCESSFUL)
    task_claimed(started_at=NOW - timedelta(seconds=1))

    queue = health.task_queue(now=NOW)

    assert (queue.waiting, queue.scheduled) == (3, 1)
    # The undelayed task enqueued 30 s ago has waited longest: the retries count from their run_after.
    assert queue.oldest_waiting_age == timedelta(seconds=30)


def test_a_due_retry_waits_from_its_run_after_not_from_when_it_was_enqueued():
    task_queued(enqueued_at=NOW - timedelta(minutes=10), run_after=NOW - timedelta(seconds=45))

    assert health.task_queue(now=NOW).oldest_waiting_age == timedelta(seconds=45)


def test_a_task_claimed_longer_ago_than_the_lease_is_stuck(settings):
    settings.TASK_LEASE_SECONDS = 300
    task_claimed(started_at=NOW - timedelta(seconds=10))
    task_claimed(started_at=NOW - timedelta(seconds=301))
    task_queued(enqueued_at=NOW - timedelta(hours=1))

    running = health.running_tasks(now=NOW)

    assert (running.running, running.stuck) == (2, 1)


def test_the_oldest_received_event_counts_only_events_still_received():
    event_stored(status=EventStatus.PROCESSED, received_at=NOW - timedelta(hours=2), processed_at=NOW)
    event_stored(status=EventStatus.FAILED, received_at=NOW - timedelta(hours=1))
    event_stored(status=EventStatus.RECEIVED, received_at=NOW - timedelta(seconds=42))
    event_stored(status=EventStatus.RECEIVED, received_at=NOW - timedelta(seconds=3))

    assert health.oldest_received_event_age(now=NOW) == timedelta(seconds=42)


def test_no_received_event_has_no_age():
    event_stored(status=EventStatus.PROCESSED, processed_at=NOW)

    assert health.oldest_received_event_age(now=NOW) is None


def test_events_are_counted_by_status_with_every_status_present():
    for status, count in {
        EventStatus.PROCESSED: 3,
        EventStatus.NEEDS_REVIEW: 1,
        EventStatus.RECEIVED: 2,
    }.items():
        for _ in range(count):
            event_stored(status=status)

    assert health.stripe_event_counts() == {
        "received": 2,
        "processed": 3,
        "ignored": 0,
        "failed": 0,
        "needs_review": 1,
    }


def test_transitions_are_counted_by_source_with_every_source_present(product):
    transitions_written(product=product, counts={"webhook": 4, "redirect": 2, "reconcile": 1})

    assert health.order_transition_counts() == {
        "redirect": 2,
        "webhook": 4,
        "replay": 0,
        "reconcile": 1,
        "admin": 0,
        "command": 0,
        "system": 0,
    }


def test_a_count_above_the_exact_limit_is_still_at_least_the_limit(monkeypatch):
    monkeypatch.setattr(db, "EXACT_COUNT_LIMIT", 2)
    for _ in range(5):
        event_stored(status=EventStatus.PROCESSED)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {health.StripeEvent._meta.db_table}")

    counts = health.stripe_event_counts()

    # Exact on SQLite; PostgreSQL's estimate, which ANALYZE has just made exact for this small table.
    assert counts["processed"] == 5
    assert counts["failed"] == 0


def test_latency_quantiles_cover_finished_events_received_in_the_window():
    for seconds in range(1, 11):  # 1 s .. 10 s
        event_stored(
            status=EventStatus.PROCESSED,
            received_at=NOW - timedelta(seconds=60),
            processed_at=NOW - timedelta(seconds=60 - seconds),
        )
    event_stored(status=EventStatus.IGNORED, received_at=NOW - timedelta(seconds=30), processed_at=NOW)
    # Outside the window, or not finished: not counted.
    event_stored(status=EventStatus.PROCESSED, received_at=NOW - timedelta(minutes=6), processed_at=NOW)
    event_stored(status=EventStatus.RECEIVED, received_at=NOW - timedelta(seconds=10))

    latency = health.event_processing_latency(now=NOW)

    assert latency.count == 11
    assert latency.quantiles == {0.5: 6.0, 0.9: 10.0, 0.99: 30.0}
    assert latency.max == 30.0


def test_latency_reads_at_most_the_sample_limit_of_the_most_recent_events():
    event_stored(status=EventStatus.PROCESSED, received_at=NOW - timedelta(seconds=100), processed_at=NOW)
    event_stored(status=EventStatus.PROCESSED, received_at=NOW - timedelta(seconds=2), processed_at=NOW)

    latency = health.event_processing_latency(now=NOW, limit=1)

    assert (latency.count, latency.max) == (1, 2.0)


def test_no_finished_event_in_the_window_has_no_latency():
    latency = health.event_processing_latency(now=NOW)

    assert (latency.count, latency.quantiles, latency.max) == (0, {}, None)
