"""Real `worker` processes: they process what the webhook queued, and a killed one loses nothing."""

import os
import signal
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from orders.models import Order, OrderStatus, OrderTransition
from payments.models import StripeEvent
from payments.tests.conftest import WEBHOOK_SECRET
from payments.tests.events import deliver, open_order, session_event
from payments.worker import task_claim, task_leases_expire, task_requeue

WITNESS_SETTINGS = "payments.tests.witness.settings"
SIGNAL_TASK = "orders.tasks.order_fulfillment_signal_task"


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
    assert StripeEvent.objects.get().status == "processed"
    assert set(DBTaskResult.objects.values_list("status", flat=True)) == {TaskResultStatus.SUCCESSFUL}


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_task_loses_nothing_and_the_signal_is_sent_once(
    client, product, worker, witness, wait_until
):
    lease = {"TASK_LEASE_SECONDS": "2", "WITNESS_DIR": str(witness)}
    order = open_order(product)
    deliver(client, session_event("checkout.session.completed", order))

    stuck = worker(settings_module=WITNESS_SETTINGS, WITNESS_BLOCK="true", **lease)
    wait_until(lambda: lines(witness, "claimed"))  # the receiver runs, inside the signal's claim
    os.kill(stuck.pid, signal.SIGKILL)
    stuck.wait(timeout=10)

    # The killed worker's claim and the receiver's transaction died with it: the task is still RUNNING.
    order.refresh_from_db()
    assert (order.status, order.fulfillment_signalled_at) == (OrderStatus.FULFILLED, None)
    assert DBTaskResult.objects.get(task_path=SIGNAL_TASK).status == TaskResultStatus.RUNNING
    assert signalled_orders(witness) == Counter()

    worker(settings_module=WITNESS_SETTINGS, **lease)

    wait_until(lambda: signalled_orders(witness)[str(order.pk)] == 1)
    wait_until(lambda: DBTaskResult.objects.get(task_path=SIGNAL_TASK).status == TaskResultStatus.SUCCESSFUL)
    order.refresh_from_db()
    assert order.fulfillment_signalled_at is not None
    assert signalled_orders(witness) == Counter({str(order.pk): 1})
    assert len(lines(witness, "claimed")) == 2  # the killed run, and the run that committed
    assert len(DBTaskResult.objects.get(task_path=SIGNAL_TASK).worker_ids) == 2
    assert OrderTransition.objects.filter(order=order).count() == 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_several_workers_fulfill_each_order_once_with_one_signal(product, worker, witness, wait_until):
    orders = [open_order(product) for _ in range(30)]
    client = Client()
    for order in orders:
        completed = session_event("checkout.session.completed", order)
        for _ in range(2):  # every event twice: two tasks race for it on different workers
            assert deliver(client, completed).status_code == 200

    for _ in range(3):
        worker(settings_module=WITNESS_SETTINGS, WITNESS_DIR=str(witness))

    wait_until(lambda: sum(signalled_orders(witness).values()) >= len(orders), timeout=60)
    wait_until(lambda: not DBTaskResult.objects.exclude(status=TaskResultStatus.SUCCESSFUL).exists())
    assert signalled_orders(witness) == Counter({str(order.pk): 1 for order in orders})
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.FULFILLED}
    fulfilments = Counter(
        OrderTransition.objects.filter(to_status="fulfilled").values_list("order_id", flat=True)
    )
    assert fulfilments == Counter({order.pk: 1 for order in orders})
    assert set(StripeEvent.objects.values_list("status", "attempts")) == {("processed", 1)}


def _claimed(*, ago: timedelta, status: str = TaskResultStatus.RUNNING) -> DBTaskResult:
    return DBTaskResult.objects.create(
        args_kwargs={"args": [], "kwargs": {"stripe_event_id": "evt_1"}},
        task_path="payments.inbox.stripe_event_process_task",
        backend_name="default",
        status=status,
        started_at=timezone.now() - ago,
        worker_ids=["dead-worker"],
    )


@pytest.mark.django_db
def test_lease_returns_only_tasks_claimed_longer_ago_than_the_lease_and_unfinished():
    expired = _claimed(ago=timedelta(minutes=6))
    fresh = _claimed(ago=timedelta(minutes=1))
    finished = _claimed(ago=timedelta(minutes=6), status=TaskResultStatus.SUCCESSFUL)

    assert task_leases_expire(lease=timedelta(minutes=5)) == 1
    assert task_leases_expire(lease=timedelta(minutes=5)) == 0

    statuses = dict(DBTaskResult.objects.values_list("id", "status"))
    assert statuses == {
        expired.pk: TaskResultStatus.READY,
        fresh.pk: TaskResultStatus.RUNNING,
        finished.pk: TaskResultStatus.SUCCESSFUL,
    }


@pytest.mark.django_db
def test_a_task_cut_by_the_database_goes_back_only_under_the_claim_that_ran_it():
    cut = _claimed(ago=timedelta(seconds=1))
    failed_by_it = _claimed(ago=timedelta(seconds=1), status=TaskResultStatus.FAILED)
    claimed_again = _claimed(ago=timedelta(seconds=1))
    stale = DBTaskResult.objects.get(pk=claimed_again.pk)
    DBTaskResult.objects.filter(pk=claimed_again.pk).update(
        started_at=timezone.now()
    )  # another worker's claim
    finished = _claimed(ago=timedelta(seconds=1), status=TaskResultStatus.SUCCESSFUL)

    for task in (cut, failed_by_it, stale, finished):
        task_requeue(task=task, reason="the database failed under it")

    statuses = dict(DBTaskResult.objects.values_list("id", "status"))
    assert statuses == {
        cut.pk: TaskResultStatus.READY,
        failed_by_it.pk: TaskResultStatus.READY,
        claimed_again.pk: TaskResultStatus.RUNNING,
        finished.pk: TaskResultStatus.SUCCESSFUL,
    }


@pytest.mark.django_db
def test_a_follow_up_claimed_by_another_worker_is_left_to_it():
    ready = _claimed(ago=timedelta(0), status=TaskResultStatus.READY)
    taken = DBTaskResult.objects.get(pk=ready.pk)

    assert task_claim(task=ready, worker_id="this-worker")
    assert not task_claim(task=taken, worker_id="other-worker")

    claimed = DBTaskResult.objects.get(pk=ready.pk)
    assert claimed.status == TaskResultStatus.RUNNING
    assert claimed.worker_ids == ["dead-worker", "this-worker"]
