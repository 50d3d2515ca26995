"""The queue's and the inbox's health figures match the rows, on both databases."""

from datetime import timedelta

import pytest
from django.db import connection

from orders import db
from payments import health
from payments.models import EventStatus, StripeEvent
from payments.tests.health_rows import NOW, event_stored, transitions_written

pytestmark = pytest.mark.django_db


def test_an_empty_queue_has_no_depth_and_no_age():
    queue = health.event_queue(now=NOW)

    assert (queue.waiting, queue.claimed, queue.scheduled, queue.oldest_waiting_age) == (0, 0, 0, None)


def test_the_queue_splits_events_due_claimed_and_scheduled_and_ages_the_longest_due():
    event_stored(status=EventStatus.RECEIVED, received_at=NOW - timedelta(seconds=30))
    event_stored(status=EventStatus.RECEIVED, received_at=NOW - timedelta(seconds=5))
    # A failed event whose backoff has passed is due again; one whose backoff has not is only scheduled.
    event_stored(status=EventStatus.FAILED, received_at=NOW - timedelta(hours=1), next_attempt_at=NOW)
    event_stored(status=EventStatus.FAILED, next_attempt_at=NOW + timedelta(minutes=5))
    # Held by a live worker, or by one whose lease ran out (dead: waiting again).
    event_stored(status=EventStatus.RECEIVED, claimed_until=NOW + timedelta(seconds=60))
    event_stored(
        status=EventStatus.RECEIVED,
        received_at=NOW - timedelta(seconds=45),
        claimed_until=NOW - timedelta(seconds=1),
    )
    # Finished, and failed for good: not in the queue.
    event_stored(status=EventStatus.PROCESSED, received_at=NOW - timedelta(hours=2), processed_at=NOW)
    StripeEvent.objects.filter(pk=event_stored(status=EventStatus.FAILED).pk).update(next_attempt_at=None)

    queue = health.event_queue(now=NOW)

    assert (queue.waiting, queue.claimed, queue.scheduled) == (4, 1, 1)
    assert queue.oldest_waiting_age == timedelta(seconds=45)


def test_the_processing_rate_counts_events_finished_in_the_window():
    for seconds in (10, 100, 200):
        event_stored(status=EventStatus.PROCESSED, processed_at=NOW - timedelta(seconds=seconds))
    event_stored(status=EventStatus.PROCESSED, processed_at=NOW - timedelta(hours=1))

    assert health.event_queue(now=NOW).finished_per_second == 3 / health.LATENCY_WINDOW.total_seconds()


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
        "settled": 0,
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
