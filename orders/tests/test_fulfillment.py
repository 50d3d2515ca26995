"""The fulfillment signal is owed until sent, and a sweep pays what a dead process left owing."""

from datetime import timedelta

import pytest

from orders import transitions
from orders.fulfillment import order_fulfillment_signal_send, order_fulfillment_signals_resend
from orders.models import Order, Product
from orders.services import order_create
from orders.signals import order_fulfilled


@pytest.fixture
def received():
    calls = []

    def receiver(sender, **kwargs):
        calls.append(kwargs)

    order_fulfilled.connect(receiver, dispatch_uid="test-fulfillment-receiver")
    yield calls
    order_fulfilled.disconnect(dispatch_uid="test-fulfillment-receiver")


def _fulfilled_by_a_process_that_died(product, django_capture_on_commit_callbacks) -> Order:
    """Fulfill an order, then drop the on-commit callbacks, as a SIGKILL after the commit would."""
    order = order_create(product=product, quantity=1)
    with django_capture_on_commit_callbacks(execute=False):
        assert transitions.order_fulfill(order_id=order.pk, source="webhook", stripe_event_id="evt_dead").won
    return order


@pytest.mark.django_db(transaction=True)
def test_winner_marks_the_order_signalled_when_it_sends(product, received):
    order = order_create(product=product, quantity=1)

    transitions.order_fulfill(order_id=order.pk, source="webhook", stripe_event_id="evt_1")

    order.refresh_from_db()
    assert order.fulfillment_signalled_at is not None
    assert [call["stripe_event_id"] for call in received] == ["evt_1"]


@pytest.mark.django_db
def test_signal_lost_with_its_process_is_sent_by_the_sweep_once(
    product, received, django_capture_on_commit_callbacks
):
    order = _fulfilled_by_a_process_that_died(product, django_capture_on_commit_callbacks)
    assert received == []

    assert order_fulfillment_signals_resend(older_than=timedelta(0)) == 1
    assert order_fulfillment_signals_resend(older_than=timedelta(0)) == 0

    assert received == [
        {"signal": order_fulfilled, "order_id": order.pk, "source": "webhook", "stripe_event_id": "evt_dead"}
    ]


@pytest.mark.django_db
def test_sweep_leaves_recent_fulfillments_to_their_own_sender(
    product, received, django_capture_on_commit_callbacks
):
    _fulfilled_by_a_process_that_died(product, django_capture_on_commit_callbacks)

    assert order_fulfillment_signals_resend(older_than=timedelta(minutes=5)) == 0
    assert received == []


@pytest.mark.django_db(transaction=True)
def test_failing_receiver_rolls_back_its_writes_and_leaves_the_signal_owed(product):
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
        order.refresh_from_db()
        assert order.status == "fulfilled"
        assert order.fulfillment_signalled_at is None
        assert not Product.objects.filter(sku="gift-0").exists()

        assert order_fulfillment_signals_resend(older_than=timedelta(0)) == 1
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
