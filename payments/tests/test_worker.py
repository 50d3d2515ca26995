"""Real `process_events` workers, and the queue they share: processed once, and a killed one loses nothing."""

import os
import signal
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from conftest import run_together
from orders.models import Order, OrderStatus, OrderTransition
from payments.inbox import stripe_event_intake, stripe_events_claim, stripe_events_release
from payments.models import StripeEvent
from payments.tests.conftest import WEBHOOK_SECRET
from payments.tests.events import deliver, open_order, session_event

pytestmark = pytest.mark.django_db

WITNESS_SETTINGS = "payments.tests.witness.settings"


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRETS = [WEBHOOK_SECRET]


@pytest.fixture
def witness(tmp_path) -> Path:
    """Return the directory the workers' witness receiver writes each fulfillment signal to."""
    path = tmp_path / "witness"
    path.mkdir()
    return path


def lines(witness: Path, name: str) -> list[str]:
    path = witness / name
    return path.read_text().splitlines() if path.exists() else []


def signalled_orders(witness: Path) -> Counter:
    """Return how many committed fulfillment signals each order got."""
    return Counter(line.split()[0] for line in lines(witness, "sent"))


def test_webhook_answers_before_processing_and_a_worker_then_fulfills(
    client, product, worker, witness, wait_until
):
    order = open_order(product)

    response = deliver(client, session_event("checkout.session.completed", order))

    assert response.content == b"received: processing queued"
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING  # no worker yet: the event waits, stored and queued
    assert StripeEvent.objects.get().status == "received"

    worker(settings_module=WITNESS_SETTINGS, WITNESS_DIR=str(witness))

    wait_until(lambda: signalled_orders(witness)[str(order.pk)] == 1)
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED
    assert order.fulfillment_signalled_at is not None
    stored = StripeEvent.objects.get()
    assert (stored.status, stored.next_attempt_at, stored.claimed_until) == ("processed", None, None)


@pytest.mark.django_db(transaction=True)
def test_worker_killed_inside_a_signal_loses_nothing_and_the_signal_is_sent_once(
    client, product, worker, witness, wait_until
):
    lease = {"WORKER_LEASE_SECONDS": "2", "WITNESS_DIR": str(witness)}
    order = open_order(product)
    deliver(client, session_event("checkout.session.completed", order))

    stuck = worker(settings_module=WITNESS_SETTINGS, WITNESS_BLOCK="true", **lease)
    wait_until(lambda: lines(witness, "claimed"))  # the receiver runs, inside the signal's claim
    os.kill(stuck.pid, signal.SIGKILL)
    stuck.wait(timeout=10)

    # The event committed; the signal's claim and the receiver's transaction died with the worker.
    order.refresh_from_db()
    assert (order.status, order.fulfillment_signalled_at) == (OrderStatus.FULFILLED, None)
    assert StripeEvent.objects.get().status == "processed"
    assert signalled_orders(witness) == Counter()

    worker(settings_module=WITNESS_SETTINGS, **lease)  # its sweep finds the signal owed

    wait_until(lambda: signalled_orders(witness)[str(order.pk)] == 1)
    order.refresh_from_db()
    assert order.fulfillment_signalled_at is not None
    assert signalled_orders(witness) == Counter({str(order.pk): 1})
    assert len(lines(witness, "claimed")) == 2  # the killed run, and the run that committed
    assert OrderTransition.objects.filter(order=order).count() == 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_several_workers_fulfill_each_order_once_with_one_signal(product, worker, witness, wait_until):
    orders = [open_order(product) for _ in range(30)]
    client = Client()
    for order in orders:
        completed = session_event("checkout.session.completed", order)
        for _ in range(2):  # every event twice: one queue entry all the same
            assert deliver(client, completed).status_code == 200

    for _ in range(3):
        worker(settings_module=WITNESS_SETTINGS, WITNESS_DIR=str(witness))

    wait_until(lambda: sum(signalled_orders(witness).values()) >= len(orders), timeout=60)
    assert signalled_orders(witness) == Counter({str(order.pk): 1 for order in orders})
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.FULFILLED}
    fulfilments = Counter(
        OrderTransition.objects.filter(to_status="fulfilled").values_list("order_id", flat=True)
    )
    assert fulfilments == Counter({order.pk: 1 for order in orders})
    assert set(StripeEvent.objects.values_list("status", "attempts")) == {("processed", 1)}


def test_claims_take_only_due_events_no_live_worker_holds_and_never_the_same_one_twice(product):
    stored = [
        stripe_event_intake(event=session_event("checkout.session.completed", open_order(product)))
        for _ in range(5)
    ]
    assert all(not outcome.duplicate for outcome in stored)
    StripeEvent.objects.filter(pk=StripeEvent.objects.order_by("pk").last().pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=1)  # a retry not due yet
    )
    lease = timedelta(minutes=5)

    first = stripe_events_claim(limit=3, lease=lease)
    second = stripe_events_claim(limit=3, lease=lease)
    third = stripe_events_claim(limit=3, lease=lease)

    assert (len(first), len(second), third) == (3, 1, [])
    assert not {c.pk for c in first} & {c.pk for c in second}


def test_a_claim_whose_lease_ran_out_is_taken_again_and_a_released_one_at_once(product):
    for _ in range(2):
        stripe_event_intake(event=session_event("checkout.session.completed", open_order(product)))
    dead, stopping = stripe_events_claim(limit=2, lease=timedelta(minutes=5))
    StripeEvent.objects.filter(pk=dead.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))

    assert stripe_events_release(pks=[stopping.pk]) == 1
    assert {c.pk for c in stripe_events_claim(limit=10, lease=timedelta(minutes=5))} == {dead.pk, stopping.pk}


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_workers_claiming_at_once_share_the_queue_without_overlap(product):
    for _ in range(40):
        stripe_event_intake(event=session_event("checkout.session.completed", open_order(product)))

    def claim(number: int) -> list[int]:
        return [c.pk for c in stripe_events_claim(limit=5, lease=timedelta(minutes=5))]

    claims = [pk for rounds in run_together([claim] * 4, rounds=2) for batch in rounds for pk in batch]

    assert len(claims) == len(set(claims)) == 40


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_died_holding_a_batch_leaves_it_to_the_next_once_its_lease_runs_out(
    product, worker, witness, wait_until
):
    orders = [open_order(product) for _ in range(3)]
    for order in orders:
        stripe_event_intake(event=session_event("checkout.session.completed", order))
    stripe_events_claim(limit=10, lease=timedelta(seconds=2))  # the batch of a worker killed at once

    worker(settings_module=WITNESS_SETTINGS, WITNESS_DIR=str(witness))

    wait_until(lambda: len(signalled_orders(witness)) == 3)
    assert set(StripeEvent.objects.values_list("status", "attempts")) == {("processed", 1)}
    assert signalled_orders(witness) == Counter({str(order.pk): 1 for order in orders})


@pytest.mark.django_db(transaction=True)
def test_sigterm_finishes_the_event_in_hand_and_gives_back_the_rest_of_the_batch(
    client, product, worker, witness, wait_until
):
    orders = [open_order(product) for _ in range(20)]
    for order in orders:
        deliver(client, session_event("checkout.session.completed", order))
    slow = worker(settings_module=WITNESS_SETTINGS, WITNESS_DIR=str(witness), WITNESS_SLOW="0.3")
    wait_until(lambda: lines(witness, "claimed"))

    slow.send_signal(signal.SIGTERM)

    assert slow.wait(timeout=20) == 0
    done = StripeEvent.objects.filter(status="processed").count()
    assert 1 <= done < 20
    # Every signal owed by what it processed was sent; the rest is unclaimed, ready for the next worker.
    assert len(signalled_orders(witness)) == done
    assert not StripeEvent.objects.filter(status="received").exclude(claimed_until=None).exists()
    assert "claimed events given back" in Path(slow.log_path).read_text()
