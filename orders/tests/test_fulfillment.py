"""The fulfillment signal: owed by its order from the fulfilment, claimed and sent once, owed until sent."""

from datetime import timedelta

import pytest

from orders import transitions
from orders.models import Order, Product
from orders.services import order_create
from orders.signals import (
    order_fulfilled,
    order_fulfillment_signal_send,
    orders_owed_fulfillment_signal,
    signals_resend,
)


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
    order = order_create(lines=[(product, 1)])
    assert transitions.order_fulfill(order_id=order.pk, source="webhook", stripe_event_id="evt_dead").won
    return order


@pytest.mark.django_db
def test_a_fulfilment_owes_its_signal_until_a_sender_claims_it(product, received):
    order = order_create(lines=[(product, 1)])

    transitions.order_fulfill(order_id=order.pk, source="webhook", stripe_event_id="evt_1")
    assert received == []
    assert list(orders_owed_fulfillment_signal()) == [order]

    assert order_fulfillment_signal_send(order_id=order.pk, source="webhook", stripe_event_id="evt_1")

    order.refresh_from_db()
    assert order.fulfillment_signalled_at is not None
    assert [call["stripe_event_id"] for call in received] == ["evt_1"]
    assert not orders_owed_fulfillment_signal().exists()


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
def test_failing_receiver_rolls_back_its_writes_and_leaves_the_signal_owed(product):
    writes = []

    def receiver(sender, order_id, **kwargs):
        Product.objects.create(sku=f"gift-{len(writes)}", name="gift", unit_amount=1)
        writes.append(order_id)
        if len(writes) == 1:
            raise RuntimeError("warehouse is down")

    order_fulfilled.connect(receiver, dispatch_uid="test-failing-receiver")
    try:
        order = order_create(lines=[(product, 1)])
        # The transition is committed and final: the caller still learns it won.
        assert transitions.order_fulfill(order_id=order.pk, source="webhook").won is True
        with pytest.raises(RuntimeError):
            order_fulfillment_signal_send(order_id=order.pk, source="webhook", stripe_event_id=None)
        order.refresh_from_db()
        assert order.status == "fulfilled"
        assert order.fulfillment_signalled_at is None
        assert not Product.objects.filter(sku="gift-0").exists()

        assert signals_resend(older_than=timedelta(0)) == 1
        assert signals_resend(older_than=timedelta(0)) == 0
    finally:
        order_fulfilled.disconnect(dispatch_uid="test-failing-receiver")

    order.refresh_from_db()
    assert order.fulfillment_signalled_at is not None
    assert list(Product.objects.filter(name="gift").values_list("sku", flat=True)) == ["gift-1"]


@pytest.mark.django_db
def test_signal_is_never_sent_for_an_order_that_is_not_fulfilled(product, received):
    order = order_create(lines=[(product, 1)])

    assert order_fulfillment_signal_send(order_id=order.pk, source="system", stripe_event_id=None) is False
    assert received == []
