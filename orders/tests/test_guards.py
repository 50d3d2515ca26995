"""The guards the state machine and the fulfillment signal rest on, each checked against a table written
here by hand: a test that derives its cases from `transitions.TRANSITIONS` cannot notice it changing."""

import pytest

from conftest import run_together
from orders import transitions
from orders.models import Order, OrderStatus, OrderTransition
from orders.services import order_create
from orders.signals import order_fulfilled, order_fulfillment_signal_send

# DESIGN.md's state machine: transition -> the states it may start from.
DOCUMENTED = {
    "confirm": {"pending"},
    "fulfill": {"pending", "confirmed"},
    "fail": {"pending", "confirmed"},
    "expire": {"pending"},
    "refund": {"fulfilled"},
}


def _order_in(product, status: str) -> Order:
    order = order_create(lines=[(product, 1)])
    Order.objects.filter(pk=order.pk).update(status=status)
    return order


def _call(name: str, order: Order) -> bool:
    kwargs = {"reason": "declined"} if name == "fail" else {}
    return getattr(transitions, f"order_{name}")(order_id=order.pk, source="admin", **kwargs).won


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "status"),
    [(name, status) for name in DOCUMENTED for status in OrderStatus.values],
)
def test_each_transition_takes_exactly_the_documented_states(product, name, status):
    order = _order_in(product, status)

    won = _call(name, order)

    assert won is (status in DOCUMENTED[name])
    if not won:
        assert Order.objects.get(pk=order.pk).status == status
        assert not OrderTransition.objects.filter(order=order).exists()


@pytest.mark.django_db
def test_expire_refuses_a_confirmed_order_whose_buyer_has_paid(product):
    order = _order_in(product, OrderStatus.CONFIRMED)

    assert transitions.order_expire(order_id=order.pk, source="admin").won is False

    assert Order.objects.get(pk=order.pk).status == OrderStatus.CONFIRMED


@pytest.fixture
def received():
    calls = []
    order_fulfilled.connect(lambda sender, **kw: calls.append(kw), weak=False, dispatch_uid="test-guards")
    yield calls
    order_fulfilled.disconnect(dispatch_uid="test-guards")


@pytest.mark.django_db(transaction=True)
def test_the_fulfillment_signal_is_sent_once_however_often_it_is_asked_for(product, received):
    order = order_create(lines=[(product, 1)])
    assert transitions.order_fulfill(order_id=order.pk, source="webhook", stripe_event_id="evt_once").won
    assert order_fulfillment_signal_send(order_id=order.pk, source="webhook", stripe_event_id="evt_once")
    assert len(received) == 1

    # A replay, the owed-signal sweep and a second worker all ask again: the claim refuses each.
    again = [
        order_fulfillment_signal_send(order_id=order.pk, source="replay", stripe_event_id="evt_once")
        for _ in range(3)
    ]

    assert again == [False, False, False]
    assert len(received) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_senders_of_an_owed_signal_send_it_once(product, received):
    orders = []
    for _ in range(10):
        order = order_create(lines=[(product, 1)])
        # No worker sends them: the signal is owed to every order.
        transitions.order_fulfill(order_id=order.pk, source="webhook")
        orders.append(order.pk)

    def sender(number: int) -> bool:
        return order_fulfillment_signal_send(
            order_id=orders[number], source="reconcile", stripe_event_id=None
        )

    sent = run_together([sender] * 4, rounds=len(orders))

    assert sum(map(sum, sent)) == len(orders)
    assert sorted(call["order_id"] for call in received) == sorted(orders)
