"""The refund and dispute signals through real `worker` processes: each sent once, with retries."""

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from orders import transitions
from orders.models import Order, OrderDispute, OrderRefund
from orders.services import order_create
from orders.signals import order_fulfilled, signals_owed
from payments import worker as worker_module
from payments.models import FINISHED_STATUSES, StripeEvent
from payments.tests.conftest import emulator_worker_env
from payments.tests.events import deliver, dispute_object, event, new_id, refund_object
from payments.worker import Worker

pytestmark = pytest.mark.django_db(transaction=True)

WITNESS_SETTINGS = "payments.tests.witness.settings"


@pytest.fixture
def witness(tmp_path) -> Path:
    """Return the directory the workers' witness receivers write each signal to."""
    path = tmp_path / "witness"
    path.mkdir()
    return path


def witnessed(witness: Path, name: str) -> Counter:
    """Return how often each line (what the signal was about, less the worker's pid) was written."""
    path = witness / name
    return (
        Counter(line.rsplit(" ", 1)[0] for line in path.read_text().splitlines())
        if path.exists()
        else Counter()
    )


@pytest.fixture
def order(product, emulator) -> Order:
    """Return a fulfilled 99.98 USD order whose payment intent is stored (Stripe is the emulator)."""
    order = order_create(lines=[(product, 2)])
    transitions.order_fulfill(order_id=order.pk, source="webhook", payment_intent_id=new_id("pi_"))
    return Order.objects.get(pk=order.pk)


@pytest.fixture
def workers(worker, emulator, witness):
    """Return a starter of witness workers calling the emulator as Stripe; env adds to theirs."""

    def start(count: int = 1, **env: str) -> None:
        for _ in range(count):
            worker(
                settings_module=WITNESS_SETTINGS,
                WITNESS_DIR=str(witness),
                **emulator_worker_env(emulator),
                **env,
            )

    return start


def queue_drained() -> bool:
    """Return whether every event is finished and no signal is owed."""
    unfinished_events = StripeEvent.objects.exclude(status__in=FINISHED_STATUSES)
    return not unfinished_events.exists() and not signals_owed(changed_before=timezone.now())


def test_each_refund_and_dispute_signal_is_sent_once_however_often_its_events_come(
    order, workers, witness, wait_until
):
    client = Client()
    refund_id, dispute_id = new_id("re_"), new_id("dp_")
    succeeded = event(
        "refund.updated", refund_object(order, refund_id=refund_id, amount=3000, status="succeeded")
    )
    created = event(
        "refund.created", refund_object(order, refund_id=refund_id, amount=3000, status="pending")
    )
    opened = event(
        "charge.dispute.created", dispute_object(order, dispute_id=dispute_id, status="needs_response")
    )
    closed = event("charge.dispute.closed", dispute_object(order, dispute_id=dispute_id, status="lost"))
    all_events = [succeeded, created, opened, closed]

    # Before any worker runs: every event twice, then replayed, so each signal is made due several times.
    for evt in (succeeded, created, opened):
        for _ in range(2):
            assert deliver(client, evt).status_code == 200
    call_command("replay_events", succeeded["id"], created["id"], opened["id"], verbosity=0)
    # Several workers race for the signals where the database lets them (PostgreSQL's SKIP LOCKED).
    workers(2 if connection.vendor == "postgresql" else 1)

    wait_until(lambda: witnessed(witness, "disputed-sent")[f"{dispute_id} needs_response"] == 1)
    for _ in range(2):
        assert deliver(client, closed).status_code == 200
    wait_until(lambda: witnessed(witness, "disputed-sent")[f"{dispute_id} lost"] == 1)
    wait_until(queue_drained)

    # Once everything was sent: the events again, delivered and replayed, send nothing more.
    for evt in all_events:
        assert deliver(client, evt).status_code == 200
    call_command("replay_events", *(evt["id"] for evt in all_events), verbosity=0)
    wait_until(queue_drained)

    assert witnessed(witness, "refunded-sent") == Counter({refund_id: 1})
    assert witnessed(witness, "disputed-sent") == Counter(
        {f"{dispute_id} needs_response": 1, f"{dispute_id} lost": 1}
    )
    assert witnessed(witness, "sent") == Counter({str(order.pk): 1})  # the fulfilment's signal
    assert OrderRefund.objects.get(stripe_refund_id=refund_id).signalled_at is not None
    assert OrderDispute.objects.get(stripe_dispute_id=dispute_id).signalled_status == "lost"


def test_a_failing_receiver_in_the_worker_is_retried_until_its_signal_is_sent_once(
    order, workers, witness, wait_until
):
    client = Client()
    refund_id, dispute_id = new_id("re_"), new_id("dp_")
    deliver(
        client,
        event("refund.updated", refund_object(order, refund_id=refund_id, amount=3000, status="succeeded")),
    )
    deliver(
        client,
        event("charge.dispute.created", dispute_object(order, dispute_id=dispute_id, status="under_review")),
    )

    # Every receiver raises twice, then works; the worker tries again after each backoff.
    workers(WITNESS_FAIL="2", RETRY_BASE_SECONDS="0.2", WORKER_SWEEP_SECONDS="0.2")

    wait_until(queue_drained)
    for name, about in (
        ("refunded-", refund_id),
        ("disputed-", f"{dispute_id} under_review"),
        ("", str(order.pk)),
    ):
        assert witnessed(witness, f"{name}claimed") == Counter({about: 3})
        assert witnessed(witness, f"{name}sent") == Counter({about: 1})


@pytest.fixture
def clock(monkeypatch):
    """Return the worker's monotonic clock, which the test moves by hand."""
    now = [1000.0]
    monkeypatch.setattr(worker_module.time, "monotonic", lambda: now[0])
    return now


def test_a_raising_receiver_is_tried_again_after_a_doubling_backoff_until_it_works(product, clock, settings):
    settings.RETRY_BASE_SECONDS, settings.RETRY_MAX_SECONDS = 5, 12
    calls = []

    def receiver(sender, order_id, **kwargs):
        calls.append(clock[0])
        if len(calls) < 4:
            raise RuntimeError("warehouse is down")

    order = order_create(lines=[(product, 1)])
    transitions.order_fulfill(order_id=order.pk, source="webhook")
    worker = Worker(name="test")
    order_fulfilled.connect(receiver, dispatch_uid="test-flaky-receiver")
    try:
        for _ in range(40):  # a sweep a second, for 40 seconds
            worker.sweep(grace=timedelta(0))
            clock[0] += 1
    finally:
        order_fulfilled.disconnect(dispatch_uid="test-flaky-receiver")

    assert [when - 1000 for when in calls] == [0, 5, 15, 27]  # waits of 5, 10, then 12 (the cap)
    order.refresh_from_db()
    assert order.fulfillment_signalled_at is not None
