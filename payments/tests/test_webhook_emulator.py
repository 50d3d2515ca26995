"""End to end: the emulator pays a session, delivers its signed webhooks, and a real worker processes them."""

import pytest

from orders.models import Order, OrderStatus, OrderTransition
from payments.models import StripeEvent
from payments.tests.events import emulator_order

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def deliver_to_project(emulator, live_server, worker):
    """Return the emulator, delivering its webhooks to the live test server, whose worker is running.

    Delayed payments settle only when a test says so, never on the emulator's own timer.
    """
    worker()
    emulator.configure(webhook_url=f"{live_server.url}/stripe-webhook", async_delay=3600)
    return emulator


def order_reaches(order: Order, wait_until, **fields) -> Order:
    """Wait for the worker to bring the order to the given field values; return it."""

    def reached():
        order.refresh_from_db()
        return all(getattr(order, name) == value for name, value in fields.items())

    wait_until(reached)
    return order


def events_processed(wait_until, count: int) -> None:
    wait_until(lambda: StripeEvent.objects.filter(status__in=["processed", "ignored"]).count() == count)


def delivered(emulator, event_type: str) -> list[dict]:
    return [d for d in emulator.deliveries() if d["type"] == event_type]


def test_card_payment_is_fulfilled_by_the_delivered_webhook(deliver_to_project, synced_product, wait_until):
    order, session = emulator_order(synced_product, quantity=2)

    deliver_to_project.pay(session.id, "card")
    assert deliver_to_project.wait_for_idle(timeout=10)

    order_reaches(order, wait_until, status=OrderStatus.FULFILLED)
    wait_until(lambda: Order.objects.get(pk=order.pk).fulfillment_signalled_at)
    assert order.stripe_payment_intent_id
    (delivery,) = delivered(deliver_to_project, "checkout.session.completed")
    assert delivery["status"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [200]
    events_processed(wait_until, 1)
    stored = StripeEvent.objects.get(stripe_id=delivery["event_id"])
    assert (stored.status, stored.order_id, stored.source) == ("processed", order.pk, "webhook")


def test_duplicated_deliveries_of_a_delayed_payment_fulfill_once(
    deliver_to_project, synced_product, wait_until
):
    deliver_to_project.configure(duplicates=3)
    order, session = emulator_order(synced_product)

    deliver_to_project.pay(session.id, "delayed_success")
    assert deliver_to_project.wait_for_idle(timeout=10)
    order_reaches(order, wait_until, payment_pending=True)
    assert order.status == OrderStatus.PENDING

    deliver_to_project.settle(session.id)
    assert deliver_to_project.wait_for_idle(timeout=10)

    order_reaches(order, wait_until, status=OrderStatus.FULFILLED)
    events_processed(wait_until, 2)
    assert OrderTransition.objects.filter(order=order).count() == 1
    deliveries = deliver_to_project.deliveries()
    assert len(deliveries) == 6  # two events, three copies each
    assert {d["status"] for d in deliveries} == {"delivered"}
    assert StripeEvent.objects.filter(order=order).count() == 2


def test_failed_delayed_payment_fails_the_order(deliver_to_project, synced_product, wait_until):
    order, session = emulator_order(synced_product)

    deliver_to_project.pay(session.id, "delayed_failure")
    assert deliver_to_project.wait_for_idle(timeout=10)
    deliver_to_project.settle(session.id)
    assert deliver_to_project.wait_for_idle(timeout=10)

    order_reaches(order, wait_until, status=OrderStatus.FAILED)


def test_expired_session_expires_the_order(deliver_to_project, synced_product, wait_until):
    order, session = emulator_order(synced_product)

    deliver_to_project.expire(session.id)
    assert deliver_to_project.wait_for_idle(timeout=10)

    order_reaches(order, wait_until, status=OrderStatus.EXPIRED)
    (delivery,) = delivered(deliver_to_project, "checkout.session.expired")
    assert delivery["status"] == "delivered"


def test_held_events_released_together_leave_the_order_fulfilled(
    deliver_to_project, synced_product, wait_until
):
    deliver_to_project.configure(webhook_timing="hold")
    order, session = emulator_order(synced_product)
    deliver_to_project.pay(session.id, "delayed_success")
    deliver_to_project.settle(session.id)

    assert deliver_to_project.release_webhooks() == 2
    assert deliver_to_project.wait_for_idle(timeout=10)

    events_processed(wait_until, 2)
    order.refresh_from_db()
    assert (order.status, order.payment_pending) == (OrderStatus.FULFILLED, False)
