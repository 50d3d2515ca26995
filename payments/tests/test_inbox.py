"""The inbox: stored before processed, processed once, failures kept for a retry, nothing lost."""

import json
from contextlib import contextmanager
from unittest import mock

import pytest
from django.db import OperationalError, connection

from orders.models import OrderStatus, OrderTransition
from orders.signals import order_fulfilled
from payments import handlers
from payments.models import EventStatus, StripeEvent
from payments.services.inbox import stripe_event_process, stripe_event_receive, stripe_event_record
from payments.tests.conftest import WEBHOOK_SECRET
from payments.tests.events import body, deliver, event, new_id, open_order, session_event

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
    assert stored.source == "webhook"
    assert stored.received_at is not None


def test_duplicate_delivery_changes_nothing(
    client, product, django_capture_on_commit_callbacks, fulfilled_signals
):
    order = open_order(product)
    evt = session_event(COMPLETED, order)

    with django_capture_on_commit_callbacks(execute=True):
        first = deliver(client, evt)
    before = StripeEvent.objects.values().get()
    with django_capture_on_commit_callbacks(execute=True):
        second = deliver(client, evt)

    assert (first.status_code, first.content) == (200, b"processed: fulfilled")
    assert (second.status_code, second.content) == (200, b"duplicate: event already processed")
    assert StripeEvent.objects.values().get() == before
    assert OrderTransition.objects.filter(order=order).count() == 1
    assert fulfilled_signals == [order.pk]


def test_duplicate_of_an_ignored_event_changes_nothing(client):
    evt = event("customer.created", {"id": "cus_1", "object": "customer"})
    deliver(client, evt)

    response = deliver(client, evt)

    assert response.content == b"duplicate: event already ignored"
    assert StripeEvent.objects.get().attempts == 1


def test_event_left_received_by_a_crash_is_processed_on_redelivery(client, product):
    order = open_order(product)
    evt = session_event(COMPLETED, order)
    stripe_event_record(event=evt)  # stored, then the worker died before processing

    response = deliver(client, evt)

    assert response.content == b"processed: fulfilled"
    stored = StripeEvent.objects.get()
    assert (stored.status, stored.attempts) == ("processed", 1)
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED


def crash(event, source):
    raise RuntimeError("the fulfilment backend is down")


def test_failed_event_is_processed_again_on_redelivery(client, product):
    order = open_order(product)
    evt = session_event(COMPLETED, order)
    with mock.patch.dict(handlers.HANDLERS, {COMPLETED: crash}):
        assert deliver(client, evt).status_code == 500

    response = deliver(client, evt)

    assert response.status_code == 200
    stored = StripeEvent.objects.get()
    assert (stored.status, stored.attempts) == ("processed", 2)


def test_redelivery_of_a_needs_review_event_answers_200_and_changes_nothing(client, product):
    order = open_order(product)
    evt = session_event(COMPLETED, order, amount_total=1)
    first = deliver(client, evt)
    before = StripeEvent.objects.values().get()

    response = deliver(client, evt)

    assert first.status_code == 200
    assert first.content.decode().startswith("needs_review: amount mismatch")
    assert response.status_code == 200
    assert response.content == b"duplicate: event already needs_review"
    assert StripeEvent.objects.values().get() == before
    assert (before["status"], before["attempts"]) == ("needs_review", 1)
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


def test_database_down_while_reading_a_duplicate_answers_503(client, product):
    evt = session_event(COMPLETED, open_order(product))
    deliver(client, evt)

    with database_refuses("SELECT"):  # the INSERT meets the unique id, then the status cannot be read
        response = deliver(client, evt)

    assert response.status_code == 503


def test_unexpected_error_while_processing_rolls_back_and_keeps_the_event_as_failed(
    client, product, django_capture_on_commit_callbacks, fulfilled_signals
):
    order = open_order(product)
    evt = session_event(COMPLETED, order)

    def fulfill_then_crash(event, source):
        handlers.checkout_session_event(event, source)
        raise RuntimeError("the fulfilment backend is down")

    with (
        mock.patch.dict(handlers.HANDLERS, {COMPLETED: fulfill_then_crash}),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = deliver(client, evt)

    assert response.status_code == 500
    stored = StripeEvent.objects.get()
    assert (stored.status, stored.attempts) == ("failed", 1)
    assert "RuntimeError: the fulfilment backend is down" in stored.outcome
    assert "Traceback (most recent call last)" in stored.last_error
    assert "fulfill_then_crash" in stored.last_error
    # The fulfilment inside the failed transaction was rolled back with it.
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    assert not OrderTransition.objects.exists()
    assert fulfilled_signals == []

    with django_capture_on_commit_callbacks(execute=True):
        retry = deliver(client, evt)

    assert retry.content == b"processed: fulfilled"
    stored.refresh_from_db()
    assert (stored.status, stored.attempts, stored.last_error) == ("processed", 2, "")
    assert fulfilled_signals == [order.pk]


def test_database_down_while_processing_answers_500_and_leaves_the_event_to_redelivery(client, product):
    order = open_order(product)
    evt = session_event(COMPLETED, order)

    with database_refuses("UPDATE"):
        response = deliver(client, evt)

    assert response.status_code == 500
    stored = StripeEvent.objects.get()
    assert stored.status == "received"  # neither the outcome nor the failure could be written
    assert deliver(client, evt).content == b"processed: fulfilled"


def test_run_that_finds_the_event_finished_by_another_worker_rolls_back(
    product, django_capture_on_commit_callbacks, fulfilled_signals
):
    order = open_order(product)
    evt = session_event(COMPLETED, order)
    pk, _, _ = stripe_event_record(event=evt)
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

    first = stripe_event_receive(event=evt)
    second = stripe_event_receive(event=evt, source="backfill")

    assert (first.duplicate, second.duplicate) == (False, True)
    assert StripeEvent.objects.get().source == "webhook"


def test_events_with_distinct_ids_for_one_order_are_all_kept(client, product):
    order = open_order(product)
    ids = [new_id("evt_") for _ in range(3)]
    for event_id in ids:
        evt = session_event(COMPLETED, order)
        evt["id"] = event_id
        deliver(client, evt)

    assert set(order.stripe_events.values_list("stripe_id", flat=True)) == set(ids)
    assert OrderTransition.objects.filter(order=order).count() == 1
