"""The inbox: stored and queued before processed, processed once, failures retried, nothing lost."""

import json
from contextlib import contextmanager
from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from orders.models import OrderStatus, OrderTransition
from orders.signals import order_fulfilled
from payments import handlers
from payments.inbox import (
    stripe_event_intake,
    stripe_event_process,
    stripe_event_process_claimed,
    stripe_events_claim,
)
from payments.models import EventStatus, StripeEvent
from payments.tests.conftest import WEBHOOK_SECRET
from payments.tests.events import body, deliver, event, new_id, open_order, receive, session_event

pytestmark = pytest.mark.django_db

COMPLETED = "checkout.session.completed"


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRETS = [WEBHOOK_SECRET]


@pytest.fixture
def fulfilled_signals():
    """Return the list of order_fulfilled signals sent while the test runs."""
    sent = []
    order_fulfilled.connect(
        lambda **kwargs: sent.append(kwargs["order_id"]), weak=False, dispatch_uid="inbox-test"
    )
    yield sent
    order_fulfilled.disconnect(dispatch_uid="inbox-test")


@contextmanager
def database_refuses(statement: str, table: str = "payments_stripeevent"):
    """Make every `statement` on `table` fail as if the database had gone away."""

    def refuse(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith(statement) and table in sql:
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse):
        yield


def test_event_is_stored_with_its_envelope_and_the_payload_as_sent(client, product):
    order = open_order(product)
    evt = session_event(COMPLETED, order)
    payload = body(evt)

    deliver(client, payload)

    stored = StripeEvent.objects.get()
    assert stored.stripe_id == evt["id"]
    assert stored.type == COMPLETED
    assert stored.api_version == evt["api_version"]
    assert stored.livemode is False
    assert int(stored.stripe_created.timestamp()) == evt["created"]
    assert stored.payload == json.loads(payload)
    assert stored.payload_text == payload.decode()
    assert stored.source == "webhook"
    assert stored.received_at is not None


def _retries_due_now() -> int:
    """Bring the failed events' next attempt to now, as the passing of their backoff would; count them."""
    waiting = StripeEvent.objects.filter(status="failed", next_attempt_at__isnull=False)
    return waiting.update(next_attempt_at=timezone.now())


def test_webhook_stores_and_queues_then_a_worker_processes(client, product, worker_run, fulfilled_signals):
    order = open_order(product)
    evt = session_event(COMPLETED, order)

    response = deliver(client, evt)

    assert (response.status_code, response.content) == (200, b"received: processing queued")
    # Acknowledged before any processing: the order waits for a worker.
    assert StripeEvent.objects.get().status == "received"
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    # The row is the queue entry: due now, held by no worker.
    assert StripeEvent.objects.filter(next_attempt_at__isnull=False, claimed_until=None).count() == 1

    assert worker_run() == 1

    stored = StripeEvent.objects.get()
    assert (stored.status, stored.attempts, stored.order_id) == ("processed", 1, order.pk)
    assert (stored.next_attempt_at, stored.claimed_until) == (None, None)
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED
    assert fulfilled_signals == [order.pk]


def test_duplicate_delivery_of_a_finished_event_changes_nothing_and_queues_nothing(
    client, product, worker_run, fulfilled_signals
):
    order = open_order(product)
    evt = session_event(COMPLETED, order)
    first = deliver(client, evt)
    worker_run()
    before = StripeEvent.objects.values().get()

    second = deliver(client, evt)

    assert (first.status_code, first.content) == (200, b"received: processing queued")
    assert (second.status_code, second.content) == (200, b"duplicate: event already stored")
    assert worker_run() == 0
    assert StripeEvent.objects.values().get() == before
    assert OrderTransition.objects.filter(order=order).count() == 1
    assert fulfilled_signals == [order.pk]


def test_duplicate_of_an_ignored_event_changes_nothing(client, worker_run):
    evt = event("customer.created", {"id": "cus_1", "object": "customer"})
    deliver(client, evt)
    worker_run()

    response = deliver(client, evt)

    assert response.content == b"duplicate: event already stored"
    assert worker_run() == 0
    assert StripeEvent.objects.get().attempts == 1


def test_copies_of_an_event_still_waiting_are_one_queue_entry_processed_once(
    client, product, worker_run, fulfilled_signals
):
    order = open_order(product)
    evt = session_event(COMPLETED, order)

    replies = [deliver(client, evt).content for _ in range(3)]

    assert replies == [b"received: processing queued"] + [b"duplicate: event already stored"] * 2
    assert worker_run() == 1
    stored = StripeEvent.objects.get()
    assert (stored.status, stored.attempts) == ("processed", 1)
    assert OrderTransition.objects.filter(order=order).count() == 1
    assert fulfilled_signals == [order.pk]


def crash(event, source):
    raise RuntimeError("the fulfilment backend is down")


def test_failed_event_is_processed_again_on_redelivery(client, product, worker_run, settings):
    settings.STRIPE_EVENT_MAX_ATTEMPTS = 1  # its retries ran out: only a redelivery runs it again
    order = open_order(product)
    evt = session_event(COMPLETED, order)
    deliver(client, evt)
    with mock.patch.dict(handlers.HANDLERS, {COMPLETED: crash}):
        worker_run()
    assert StripeEvent.objects.get().status == "failed"

    response = deliver(client, evt)
    worker_run()

    assert response.content == b"failed: stored before, processing queued again"
    stored = StripeEvent.objects.get()
    assert (stored.status, stored.attempts) == ("processed", 2)


def test_a_failed_event_waits_for_its_backoff_then_retries_until_its_attempts_run_out(
    client, product, worker_run, settings
):
    settings.STRIPE_EVENT_MAX_ATTEMPTS, settings.RETRY_BASE_SECONDS = 3, 5
    evt = session_event(COMPLETED, open_order(product))
    deliver(client, evt)
    delays = []

    with mock.patch.dict(handlers.HANDLERS, {COMPLETED: crash}):
        for _ in range(3):
            before = timezone.now()
            assert worker_run() == 1
            assert worker_run() == 0  # not due before its backoff
            stored = StripeEvent.objects.get()
            delays.append(
                round((stored.next_attempt_at - before).total_seconds()) if stored.next_attempt_at else None
            )
            _retries_due_now()

    assert (stored.status, stored.attempts) == ("failed", 3)
    assert delays == [5, 10, None]  # doubling; after the last attempt it waits for a replay


def test_redelivery_of_a_needs_review_event_answers_200_and_queues_nothing(client, product, worker_run):
    order = open_order(product)
    evt = session_event(COMPLETED, order, amount_total=1)
    first = deliver(client, evt)
    assert worker_run() == 1  # a refusal only a person can settle: no retry is queued
    before = StripeEvent.objects.values().get()

    response = deliver(client, evt)

    assert first.status_code == 200
    assert response.status_code == 200
    assert response.content == b"duplicate: event already stored"
    assert worker_run() == 0
    assert StripeEvent.objects.values().get() == before
    assert (before["status"], before["attempts"]) == ("needs_review", 1)
    assert "amount mismatch" in before["outcome"]
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING


def test_database_down_while_storing_answers_503_and_stores_nothing(client, product):
    order = open_order(product)

    with database_refuses("INSERT"):
        response = deliver(client, session_event(COMPLETED, order))

    assert response.status_code == 503
    assert b"deliver it again later" in response.content
    assert not StripeEvent.objects.exists()
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING


def test_unexpected_error_while_processing_rolls_back_and_keeps_the_event_as_failed(
    client, product, worker_run, fulfilled_signals
):
    order = open_order(product)
    evt = session_event(COMPLETED, order)
    assert deliver(client, evt).status_code == 200

    def fulfill_then_crash(event, source):
        handlers.checkout_session_event(event, source)
        raise RuntimeError("the fulfilment backend is down")

    with mock.patch.dict(handlers.HANDLERS, {COMPLETED: fulfill_then_crash}):
        assert worker_run() == 1  # the retry waits for its backoff

    stored = StripeEvent.objects.get()
    assert (stored.status, stored.attempts) == ("failed", 1)
    assert "RuntimeError: the fulfilment backend is down" in stored.outcome
    assert "Traceback (most recent call last)" in stored.last_error
    assert "fulfill_then_crash" in stored.last_error
    # The fulfilment inside the failed transaction was rolled back with it, and its signal's task too.
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    assert not OrderTransition.objects.exists()
    assert fulfilled_signals == []

    assert _retries_due_now() == 1
    assert worker_run() == 1

    stored.refresh_from_db()
    assert (stored.status, stored.attempts, stored.last_error) == ("processed", 2, "")
    assert fulfilled_signals == [order.pk]


def test_database_down_while_processing_leaves_the_event_claimed_until_its_lease_runs_out(
    client, product, worker_run
):
    order = open_order(product)
    evt = session_event(COMPLETED, order)
    deliver(client, evt)
    claimed = stripe_events_claim(limit=10, lease=timedelta(minutes=5))

    with database_refuses("UPDATE"):
        assert stripe_event_process_claimed(claimed[0]).error

    stored = StripeEvent.objects.get()
    assert stored.status == "received"  # neither the outcome nor the failure could be written
    assert worker_run() == 0  # held by the worker that met the failure, until its lease runs out
    StripeEvent.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert worker_run() == 1
    stored.refresh_from_db()
    assert stored.status == "processed"


def test_run_that_finds_the_event_finished_by_another_worker_rolls_back(
    product, django_capture_on_commit_callbacks, fulfilled_signals
):
    order = open_order(product)
    evt = session_event(COMPLETED, order)
    stripe_event_intake(event=evt)
    pk = StripeEvent.objects.get(stripe_id=evt["id"]).pk
    # Another worker processed the same event meanwhile.
    StripeEvent.objects.filter(pk=pk).update(status=EventStatus.PROCESSED, outcome="fulfilled", attempts=1)

    with django_capture_on_commit_callbacks(execute=True):
        result = stripe_event_process(pk=pk, event=evt, transition_source="webhook")

    assert (result.duplicate, result.status) == (True, "processed")
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING  # our fulfilment rolled back with the refused status update
    assert not OrderTransition.objects.exists()
    assert fulfilled_signals == []
    assert StripeEvent.objects.get(pk=pk).attempts == 1


def test_the_same_event_received_through_the_service_twice_is_one_row(product):
    evt = session_event(COMPLETED, open_order(product))

    first = receive(evt)
    second = receive(evt, source="backfill")

    assert (first.duplicate, second.duplicate) == (False, True)
    assert StripeEvent.objects.get().source == "webhook"


def test_events_with_distinct_ids_for_one_order_are_all_kept(client, product, worker_run):
    order = open_order(product)
    ids = [new_id("evt_") for _ in range(3)]
    for event_id in ids:
        evt = session_event(COMPLETED, order)
        evt["id"] = event_id
        deliver(client, evt)
    worker_run()

    assert set(order.stripe_events.values_list("stripe_id", flat=True)) == set(ids)
    assert OrderTransition.objects.filter(order=order).count() == 1
