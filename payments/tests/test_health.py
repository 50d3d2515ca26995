"""The queue's and the inbox's health figures match the rows, on both databases."""

import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from orders import db
from orders.models import Order, OrderStatus
from payments import gateway, health
from payments.inbox import stripe_event_intake
from payments.models import EventStatus, StripeEvent
from payments.tests.events import emulator_order, open_order
from payments.tests.health_rows import NOW, event_stored, transitions_written

COMPLETED = "checkout.session.completed"

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


def _confirmed(product, *, ago: timedelta):
    order = open_order(product)
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.CONFIRMED, confirmed_at=NOW - ago)
    return order


def test_orders_paid_and_not_fulfilled_count_once_past_the_workers_lease(product, settings):
    settings.WORKER_LEASE_SECONDS = 300
    _confirmed(product, ago=timedelta(minutes=20))
    _confirmed(product, ago=timedelta(minutes=6))
    _confirmed(product, ago=timedelta(seconds=30))  # its webhook may well be on its way: not counted
    fulfilled = _confirmed(product, ago=timedelta(hours=1))
    Order.objects.filter(pk=fulfilled.pk).update(status=OrderStatus.FULFILLED)

    paid = health.orders_paid_not_fulfilled(now=NOW)

    assert (paid.count, paid.oldest_age) == (2, timedelta(minutes=20))


def test_no_paid_order_waiting_has_no_count_and_no_age(product):
    assert health.orders_paid_not_fulfilled(now=NOW) == health.Lost(0, None)


LATER = timedelta(minutes=10)  # every emulator event is older than the lease by then


def _undelivered_payment(emulator, synced_product) -> dict:
    """Pay a session while the webhooks are held: Stripe lists its events as not delivered."""
    emulator.configure(webhook_url="http://127.0.0.1:9/stripe-webhook", webhook_timing="hold")
    _, session = emulator_order(synced_product)
    emulator.pay(session.id, "card")
    return next(e for e in gateway.events_list(types=[COMPLETED]) if e["data"]["object"]["id"] == session.id)


def test_an_event_stripe_did_not_deliver_is_counted_until_the_inbox_holds_it(emulator, synced_product):
    event = _undelivered_payment(emulator, synced_product)
    now = timezone.now() + LATER

    lost = health.stripe_events_undelivered(now=now)

    assert lost.count == 1
    assert lost.oldest_age == now - datetime.fromtimestamp(event["created"], tz=UTC)
    # A backfill stores it; Stripe goes on listing it as undelivered, which no longer counts.
    stripe_event_intake(event=event, source="backfill")
    assert health.stripe_events_undelivered(now=now) == health.Lost(0, None)


def test_an_undelivered_event_of_a_type_the_shop_does_not_handle_is_not_counted(emulator, synced_product):
    # Another endpoint's event on the same account (the emulator makes only handled types: added directly).
    event = {"id": "evt_other_endpoint", "object": "event", "type": "customer.created", "created": 1_000}
    emulator.store.add_event(event, has_endpoint=True)

    assert health.stripe_events_undelivered(now=timezone.now()) == health.Lost(0, None)


def test_an_event_younger_than_the_lease_is_not_counted_yet(emulator, synced_product):
    _undelivered_payment(emulator, synced_product)

    assert health.stripe_events_undelivered() == health.Lost(0, None)


def test_stripes_answer_is_kept_a_minute_and_no_answer_is_none(emulator, synced_product, settings):
    _undelivered_payment(emulator, synced_product)
    assert health.stripe_events_undelivered(now=timezone.now() + LATER).count == 1
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # Stripe unreachable from now on

    assert health.stripe_events_undelivered(now=timezone.now() + LATER).count == 1  # the kept answer
    cache.clear()
    assert health.stripe_events_undelivered() is None
    settings.STRIPE_SECRET_KEY = ""
    cache.clear()
    assert health.stripe_events_undelivered() is None


def test_a_stripe_that_does_not_answer_is_waited_for_briefly(emulator, settings, monkeypatch):
    silent = socket.socket()  # accepts connections (the kernel does) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{silent.getsockname()[1]}"
    settings.STRIPE_TIMEOUT_SECONDS, settings.STRIPE_MAX_NETWORK_RETRIES = 120, 2  # the other calls' budget
    monkeypatch.setattr(health, "UNDELIVERED_TIMEOUT_SECONDS", 0.2)
    answers = []

    asking = threading.Thread(target=lambda: answers.append(health.stripe_events_undelivered()), daemon=True)
    asking.start()
    asking.join(timeout=30)
    silent.close()

    assert not asking.is_alive() and answers == [None]


def test_a_cache_that_is_down_does_not_fail_the_figures(emulator, synced_product, settings):
    _undelivered_payment(emulator, synced_product)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }

    assert health.stripe_events_undelivered(now=timezone.now() + LATER).count == 1
