from datetime import timedelta

import pytest
from django.db import transaction

from orders import transitions
from orders.models import Order, OrderStatus, OrderTransition, TransitionSource
from orders.services import order_create
from orders.signals import order_fulfilled, orders_owed_fulfillment_signal, signals_resend
from orders.transitions import TransitionResult

pytestmark = pytest.mark.django_db

ALL_STATUSES = list(OrderStatus)


def _order_in(product, status: str) -> Order:
    order = order_create(lines=[(product, 2)])
    Order.objects.filter(pk=order.pk).update(status=status)
    return order


def _call(name: str, order: Order) -> TransitionResult:
    kwargs = {"reason": "card declined"} if name == "fail" else {}
    return getattr(transitions, f"order_{name}")(
        order_id=order.pk, source=TransitionSource.WEBHOOK, stripe_event_id="evt_1", **kwargs
    )


@pytest.mark.parametrize(
    ("name", "from_status", "to_status"),
    [
        (t.name, from_status, t.to_status)
        for t in transitions.TRANSITIONS.values()
        for from_status in sorted(t.from_statuses)
    ],
)
def test_allowed_transition_moves_order_and_writes_one_audit_row(product, name, from_status, to_status):
    order = _order_in(product, from_status)

    assert _call(name, order) == TransitionResult(won=True, from_status=from_status, status=to_status)

    order.refresh_from_db()
    assert order.status == to_status
    assert getattr(order, transitions.TRANSITIONS[name].stamp_field) is not None
    (row,) = OrderTransition.objects.filter(order=order)
    assert (row.from_status, row.to_status, row.source, row.stripe_event_id) == (
        from_status,
        to_status,
        "webhook",
        "evt_1",
    )


@pytest.mark.parametrize(
    ("name", "from_status"),
    [
        (t.name, status)
        for t in transitions.TRANSITIONS.values()
        for status in ALL_STATUSES
        if status not in t.from_statuses
    ],
)
def test_refused_transition_is_a_noop_without_audit_row(product, name, from_status):
    order = _order_in(product, from_status)

    # The loser learns what the order already is, without reading it again.
    assert _call(name, order) == TransitionResult(won=False, from_status=from_status, status=from_status)

    order.refresh_from_db()
    assert order.status == from_status
    assert not OrderTransition.objects.filter(order=order).exists()


def test_transition_of_missing_order_loses_with_no_status(db):
    assert transitions.order_fulfill(
        order_id="00000000-0000-0000-0000-000000000000", source=TransitionSource.REPLAY
    ) == TransitionResult(won=False, from_status=None, status=None)


def test_second_fulfill_loses_and_leaves_first_audit_row_alone(product):
    order = order_create(lines=[(product, 1)])

    assert transitions.order_fulfill(order_id=order.pk, source="webhook", stripe_event_id="evt_a").won
    assert not transitions.order_fulfill(order_id=order.pk, source="replay", stripe_event_id="evt_b").won

    assert list(OrderTransition.objects.filter(order=order).values_list("stripe_event_id", flat=True)) == [
        "evt_a"
    ]


def test_confirm_then_fulfill_logs_both_steps_in_order(product):
    order = order_create(lines=[(product, 1)])

    assert transitions.order_confirm(order_id=order.pk, payment_intent_id="pi_1", customer_email="a@b.co").won
    assert transitions.order_fulfill(order_id=order.pk, source="webhook", stripe_event_id="evt_1").won

    order.refresh_from_db()
    assert (order.stripe_payment_intent_id, order.customer_email) == ("pi_1", "a@b.co")
    steps = list(order.transitions.values_list("from_status", "to_status", "source"))
    assert steps == [("pending", "confirmed", "redirect"), ("confirmed", "fulfilled", "webhook")]


def test_confirm_after_fulfill_is_a_noop(product):
    order = order_create(lines=[(product, 1)])
    transitions.order_fulfill(order_id=order.pk, source="webhook")

    assert transitions.order_confirm(order_id=order.pk).won is False
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED


def test_fail_records_the_reason(product):
    order = order_create(lines=[(product, 1)])

    transitions.order_fail(order_id=order.pk, source="system", reason="Stripe refused the session")

    order.refresh_from_db()
    assert order.failure_reason == "Stripe refused the session"
    assert order.transitions.get().note == "Stripe refused the session"


def test_unknown_source_is_rejected_before_touching_the_order(product):
    order = order_create(lines=[(product, 1)])

    with pytest.raises(ValueError):
        transitions.order_fulfill(order_id=order.pk, source="browser")

    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING


@pytest.mark.django_db(transaction=True)
def test_fulfilled_signal_is_sent_once_for_the_winner_only(product):
    received = []

    def receiver(sender, **kwargs):
        received.append(kwargs)

    order_fulfilled.connect(receiver)
    try:
        order = order_create(lines=[(product, 1)])
        transitions.order_fulfill(order_id=order.pk, source="webhook", stripe_event_id="evt_1")
        transitions.order_fulfill(order_id=order.pk, source="webhook", stripe_event_id="evt_2")
        assert received == []  # owed, not sent: receivers run in a worker, outside the transition
        assert signals_resend(older_than=timedelta(0)) == 1
    finally:
        order_fulfilled.disconnect(receiver)

    assert len(received) == 1
    assert received[0]["order_id"] == order.pk
    assert received[0]["stripe_event_id"] == "evt_1"
    assert received[0]["source"] == "webhook"


def test_fulfilled_signal_is_owed_by_the_fulfilling_transaction(product):
    order = order_create(lines=[(product, 1)])

    with transaction.atomic():
        transitions.order_fulfill(order_id=order.pk, source="webhook", stripe_event_id="evt_1")
        # Owed by the order's own outbox column: it commits, or rolls back, with the fulfilment.
        assert list(orders_owed_fulfillment_signal()) == [order]
        transaction.set_rollback(True)

    assert not orders_owed_fulfillment_signal().exists()
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING
