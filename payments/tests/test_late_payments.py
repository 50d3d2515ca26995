"""Money for an order that was already closed: flagged, stored as needs_review, refunded once at Stripe.

The emulator pays a session whose order was closed here without closing the session (what the admin's
actions did before they expired sessions first) and delivers the signed webhooks to the live server.
"""

import pytest
from django.core.management import call_command
from django.test import Client

from orders import transitions
from orders.models import Order, OrderRefund, OrderStatus, RefundRequester
from payments import gateway
from payments.models import EventStatus, StripeEvent
from payments.sessions import late_payment_settle
from payments.tests.conftest import EMULATOR_API_KEY
from payments.tests.events import emulator_order

pytestmark = pytest.mark.django_db(transaction=True)

COMPLETED = "checkout.session.completed"


@pytest.fixture
def worker(emulator, worker):
    """Return a starter of a real worker process that can call the emulator (it refunds late payments)."""

    def start(**env: str):
        # The worker is another process: it learns Stripe's address, and the settings, from its environment.
        stripe = {"STRIPE_SECRET_KEY": EMULATOR_API_KEY, "STRIPE_API_BASE": emulator.base_url}
        return worker(DJANGO_DEBUG="true", STRIPE_MAX_NETWORK_RETRIES="0", **stripe, **env)

    return start


@pytest.fixture
def deliver_to_project(emulator, live_server, worker):
    """Return the emulator, delivering its webhooks to the live server, whose worker processes them."""
    worker()
    emulator.configure(webhook_url=f"{live_server.url}/stripe-webhook", async_delay=3600)
    return emulator


def processed(wait_until, order: Order, event_type: str) -> StripeEvent:
    """Wait until the worker has processed the order's event of this type; return it."""
    return wait_until(
        lambda: (
            StripeEvent.objects.filter(order=order, type=event_type)
            .exclude(status=EventStatus.RECEIVED)
            .first()
        )
    )


def closed_then_paid(emulator, product, *, close: str = "expire", method: str = "card") -> Order:
    order, session = emulator_order(product)
    if close == "expire":
        transitions.order_expire(order_id=order.pk, source="admin")
    else:
        transitions.order_fail(order_id=order.pk, source="admin", reason="by hand")
    emulator.pay(session.id, method)
    return order


def refunds_at_stripe(order: Order) -> list[gateway.StripeRefund]:
    session = gateway.checkout_session_retrieve(session_id=order.stripe_checkout_session_id)
    return gateway.refunds_list(payment_intent_id=session.payment_intent_id)


def late_events(order: Order) -> list[StripeEvent]:
    return list(StripeEvent.objects.filter(order=order, type__startswith="checkout.session."))


def test_a_late_payment_delivered_three_times_and_replayed_is_refunded_exactly_once(
    deliver_to_project, synced_product, wait_until
):
    deliver_to_project.configure(duplicates=3)
    order = closed_then_paid(deliver_to_project, synced_product)
    processed(wait_until, order, COMPLETED)
    wait_until(lambda: len([d for d in deliver_to_project.deliveries() if d["type"] == COMPLETED]) == 3)
    assert deliver_to_project.wait_for_idle(timeout=20)
    [event] = late_events(order)
    call_command("replay_events", event.stripe_id, verbosity=0)
    call_command("replay_events", event.stripe_id, verbosity=0)
    call_command("audit_payments", "--since", "1d", "--older-than", "0s", "--fix", verbosity=0)

    [refund] = refunds_at_stripe(order)
    assert (refund.amount, refund.status) == (4999, "succeeded")
    [row] = OrderRefund.objects.filter(order=order)
    assert (row.stripe_refund_id, row.requested_by, row.amount) == (
        refund.id,
        RefundRequester.AUTOMATIC,
        4999,
    )
    order.refresh_from_db()
    assert (order.status, order.needs_attention, order.amount_refunded) == (OrderStatus.EXPIRED, True, 4999)
    assert "Late payment: paid 49.99 USD" in order.attention_reason
    event.refresh_from_db()
    assert event.status == EventStatus.NEEDS_REVIEW
    assert event.outcome.startswith("late payment: paid 49.99 USD on session")
    deliveries = [d for d in deliver_to_project.deliveries() if d["type"] == COMPLETED]
    assert len(deliveries) == 3 and all(d["status"] == "delivered" for d in deliveries)


def test_a_delayed_payment_that_settles_after_the_order_failed_is_refunded(
    deliver_to_project, synced_product, wait_until
):
    order = closed_then_paid(deliver_to_project, synced_product, close="fail", method="delayed_success")
    processed(wait_until, order, COMPLETED)
    deliver_to_project.settle(order.stripe_checkout_session_id)
    processed(wait_until, order, "checkout.session.async_payment_succeeded")

    assert len(refunds_at_stripe(order)) == 1
    order.refresh_from_db()
    assert (order.status, order.needs_attention) == (OrderStatus.FAILED, True)
    succeeded = StripeEvent.objects.get(order=order, type="checkout.session.async_payment_succeeded")
    assert succeeded.status == EventStatus.NEEDS_REVIEW


def test_with_automatic_refunds_off_the_order_waits_for_a_person(
    emulator, live_server, worker, synced_product, settings, wait_until
):
    settings.REFUND_LATE_PAYMENTS = False  # for the success page, served in this process
    worker(REFUND_LATE_PAYMENTS="false")
    emulator.configure(webhook_url=f"{live_server.url}/stripe-webhook")
    order = closed_then_paid(emulator, synced_product)
    processed(wait_until, order, COMPLETED)

    assert refunds_at_stripe(order) == []
    order.refresh_from_db()
    assert (order.status, order.needs_attention) == (OrderStatus.EXPIRED, True)
    assert "automatic refunds are off" in order.attention_reason
    [event] = late_events(order)
    assert event.status == EventStatus.NEEDS_REVIEW

    page = Client().get("/success", {"session_id": order.stripe_checkout_session_id}).content.decode()
    assert "You were charged after this checkout had closed; our team will contact you." in page
    assert "Nothing was charged" not in page


def test_the_buyer_returning_from_a_late_payment_is_told_it_is_refunded(emulator, synced_product):
    # No webhook reaches the project: the success redirect is the first to see the payment.
    order = closed_then_paid(emulator, synced_product)

    response = Client().get("/success", {"session_id": order.stripe_checkout_session_id})

    page = response.content.decode()
    assert response.status_code == 200
    assert "Paid after the checkout had closed" in page
    assert "You were charged after this checkout had closed, and the payment has been refunded." in page
    assert "Nothing was charged" not in page
    assert len(refunds_at_stripe(order)) == 1
    status = Client().get(f"/orders/{order.pk}/status", HTTP_ACCEPT="application/json").json()
    assert (
        status["message"]
        == "You were charged after this checkout had closed, and the payment has been refunded."
    )
    cancel = Client().get("/cancel", {"order_id": str(order.pk)}).content.decode()
    assert "You were charged after this checkout had closed" in cancel
    assert "nothing was charged" not in cancel.lower()


def test_the_refund_key_is_the_orders_so_a_rolled_back_row_finds_the_same_refund(emulator, synced_product):
    # A worker asks Stripe for the refund, then its transaction rolls back (a concurrent copy of the event
    # finished first): Stripe refunded, the row is gone. Asking again must find that refund, not make one.
    order = closed_then_paid(emulator, synced_product)
    session = gateway.checkout_session_retrieve(session_id=order.stripe_checkout_session_id)
    first = late_payment_settle(order_id=order.pk, order_status="expired", session=session)
    OrderRefund.objects.filter(order=order).delete()
    Order.objects.filter(pk=order.pk).update(amount_refunded=0, needs_attention=False)

    again = late_payment_settle(order_id=order.pk, order_status="expired", session=session)

    assert [r.id for r in refunds_at_stripe(order)] == [first.refund.stripe_refund_id]
    assert (again.refund.stripe_refund_id, again.refund.status) == (
        first.refund.stripe_refund_id,
        "succeeded",
    )
