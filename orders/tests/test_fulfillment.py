"""The fulfillment signal: queued with the fulfilment, sent by a worker, retried, and owed until sent."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from orders import transitions
from orders.models import Order, Product
from orders.services import order_create
from orders.signals import order_fulfilled, order_fulfillment_signal_send, signals_resend


@pytest.fixture
def received():
    calls = []

    def receiver(sender, **kwargs):
        calls.append(kwargs)

    order_fulfilled.connect(receiver, dispatch_uid="test-fulfillment-receiver")
    yield calls
    order_fulfilled.disconnect(dispatch_uid="test-fulfillment-receiver")


def _fulfilled_with_no_worker_running(product) -> Order:
    """Fulfill an order whose signal's task no worker runs (none is running, or its retries ran out)."""
    order = order_create(product=product, quantity=1)
    assert transitions.order_fulfill(order_id=order.pk, source="webhook", stripe_event_id="evt_dead").won
    return order


def _retries_due_now() -> int:
    return DBTaskResult.objects.filter(status=TaskResultStatus.READY).update(run_after=timezone.now())


@pytest.mark.django_db(transaction=True)
def test_winner_marks_the_order_signalled_when_it_sends(product, received, worker_run):
    order = order_create(product=product, quantity=1)

    transitions.order_fulfill(order_id=order.pk, source="webhook", stripe_event_id="evt_1")
    assert received == []
    assert worker_run() == 1

    order.refresh_from_db()
    assert order.fulfillment_signalled_at is not None
    assert [call["stripe_event_id"] for call in received] == ["evt_1"]


@pytest.mark.django_db
def test_signal_no_worker_sent_is_sent_by_the_sweep_once(product, received):
    order = _fulfilled_with_no_worker_running(product)
    assert received == []

    assert signals_resend(older_than=timedelta(0)) == 1
    assert signals_resend(older_than=timedelta(0)) == 0

    assert received == [
        {"signal": order_fulfilled, "order_id": order.pk, "source": "webhook", "stripe_event_id": "evt_dead"}
    ]


@pytest.mark.django_db
def test_sweep_leaves_recent_fulfillments_to_their_own_sender(product, received):
    _fulfilled_with_no_worker_running(product)

    assert signals_resend(older_than=timedelta(minutes=5)) == 0
    assert received == []


@pytest.mark.django_db(transaction=True)
def test_failing_receiver_rolls_back_its_writes_and_leaves_the_signal_owed(product, worker_run):
    writes = []

    def receiver(sender, order_id, **kwargs):
        Product.objects.create(sku=f"gift-{len(writes)}", name="gift", unit_amount=1)
        writes.append(order_id)
        if len(writes) == 1:
            raise RuntimeError("warehouse is down")

    order_fulfilled.connect(receiver, dispatch_uid="test-failing-receiver")
    try:
        order = order_create(product=product, quantity=1)
        # The transition is committed and final: the caller still learns it won.
        assert transitions.order_fulfill(order_id=order.pk, source="webhook").won is True
        assert worker_run() == 1  # it failed; its retry waits for the backoff
        order.refresh_from_db()
        assert order.status == "fulfilled"
        assert order.fulfillment_signalled_at is None
        assert not Product.objects.filter(sku="gift-0").exists()

        assert signals_resend(older_than=timedelta(0)) == 1
        # The retry finds the signal sent and sends nothing.
        assert _retries_due_now() == 1
        assert worker_run() == 1
    finally:
        order_fulfilled.disconnect(dispatch_uid="test-failing-receiver")

    order.refresh_from_db()
    assert order.fulfillment_signalled_at is not None
    assert list(Product.objects.filter(name="gift").values_list("sku", flat=True)) == ["gift-1"]


@pytest.mark.django_db
def test_signal_is_never_sent_for_an_order_that_is_not_fulfilled(product, received):
    order = order_create(product=product, quantity=1)

    assert order_fulfillment_signal_send(order_id=order.pk, source="system", stripe_event_id=None) is False
    assert received == []


@pytest.mark.django_db(transaction=True)
def test_failing_receiver_is_retried_with_backoff_until_it_succeeds(product, worker_run, settings):
    settings.TASK_RETRY_BASE_SECONDS = 0  # every retry due at once, so one batch of the worker runs them
    calls = []

    def receiver(sender, order_id, **kwargs):
        calls.append(order_id)
        if len(calls) < 3:
            raise RuntimeError("warehouse is down")

    order_fulfilled.connect(receiver, dispatch_uid="test-flaky-receiver")
    try:
        order = order_create(product=product, quantity=1)
        transitions.order_fulfill(order_id=order.pk, source="webhook")
        assert worker_run() == 3
    finally:
        order_fulfilled.disconnect(dispatch_uid="test-flaky-receiver")

    assert calls == [order.pk] * 3
    order.refresh_from_db()
    assert order.fulfillment_signalled_at is not None
    attempts = sorted(task.args_kwargs["kwargs"].get("attempt", 1) for task in DBTaskResult.objects.all())
    assert attempts == [1, 2, 3]


@pytest.mark.django_db(transaction=True)
def test_retry_waits_twice_as_long_after_each_failure(product, worker_run, settings):
    settings.TASK_RETRY_BASE_SECONDS = 5
    settings.TASK_RETRY_MAX_SECONDS = 12

    def receiver(sender, **kwargs):
        raise RuntimeError("warehouse is down")

    order_fulfilled.connect(receiver, dispatch_uid="test-down-receiver")
    try:
        order = order_create(product=product, quantity=1)
        transitions.order_fulfill(order_id=order.pk, source="webhook")
        waits = []
        for _ in range(3):
            before = timezone.now()
            assert worker_run() == 1
            retry = DBTaskResult.objects.get(status=TaskResultStatus.READY)
            waits.append(round((retry.run_after - before).total_seconds()))
            _retries_due_now()
    finally:
        order_fulfilled.disconnect(dispatch_uid="test-down-receiver")

    assert waits == [5, 10, 12]


@pytest.mark.django_db(transaction=True)
def test_signal_whose_attempts_ran_out_stays_owed_for_the_sweep(product, worker_run, settings, received):
    settings.TASK_RETRY_BASE_SECONDS = 0
    settings.SIGNAL_MAX_ATTEMPTS = 2

    def receiver(sender, **kwargs):
        raise RuntimeError("warehouse is down")

    order_fulfilled.connect(receiver, dispatch_uid="test-down-receiver")
    try:
        order = order_create(product=product, quantity=1)
        transitions.order_fulfill(order_id=order.pk, source="webhook", stripe_event_id="evt_1")
        assert worker_run() == 2
    finally:
        order_fulfilled.disconnect(dispatch_uid="test-down-receiver")

    assert set(DBTaskResult.objects.values_list("status", flat=True)) == {TaskResultStatus.FAILED}
    order.refresh_from_db()
    assert order.fulfillment_signalled_at is None
    received.clear()  # the two attempts' calls, rolled back with their claims
    assert signals_resend(older_than=timedelta(0)) == 1
    assert [call["stripe_event_id"] for call in received] == ["evt_1"]
