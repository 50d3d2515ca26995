"""Refund and dispute events through the signed webhook, in any order, and for payments not ours."""

import pytest

from orders import transitions
from orders.models import Order, OrderDispute, OrderRefund, OrderStatus
from orders.services import order_create
from payments.handlers import HANDLERS
from payments.models import StripeEvent
from payments.tests import events
from payments.tests.events import dispute_object, event, new_id, refund_object

pytestmark = pytest.mark.django_db

REFUND_TYPES = {
    "charge.refunded",
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
}


@pytest.fixture
def order(product, emulator) -> Order:
    """Return a fulfilled 99.98 USD order whose payment intent is stored (Stripe is the emulator)."""
    order = order_create(lines=[(product, 2)])
    transitions.order_fulfill(order_id=order.pk, source="webhook", payment_intent_id=new_id("pi_"))
    return Order.objects.get(pk=order.pk)


@pytest.fixture
def deliver(client, worker_run):
    """Return a deliverer of signed events whose worker then processes them, one delivery at a time."""

    def deliver(evt: dict):
        response = events.deliver(client, evt)
        worker_run()
        return response

    return deliver


def stored(evt: dict) -> StripeEvent:
    return StripeEvent.objects.get(stripe_id=evt["id"])


def test_every_refund_and_dispute_event_has_a_handler():
    assert set(HANDLERS) >= REFUND_TYPES


def test_refund_updated_before_refund_created_counts_once_and_stays_succeeded(deliver, order):
    updated = event("refund.updated", refund_object(order, refund_id="re_a", amount=5000, status="succeeded"))
    created = event("refund.created", refund_object(order, refund_id="re_a", amount=5000, status="pending"))

    assert deliver(updated).status_code == 200
    assert deliver(created).status_code == 200
    assert deliver(updated).status_code == 200  # a duplicate

    row = OrderRefund.objects.get(stripe_refund_id="re_a")
    assert (row.status, row.requested_by) == ("succeeded", "dashboard")
    assert Order.objects.get(pk=order.pk).amount_refunded == 5000
    assert "no-op" in stored(created).outcome
    assert stored(created).order_id == order.pk


def test_refund_failed_after_its_success_gives_the_amount_back(deliver, order):
    deliver(
        event("refund.created", refund_object(order, refund_id="re_f", amount=9998, status="succeeded")),
    )
    assert Order.objects.get(pk=order.pk).status == OrderStatus.REFUNDED

    failed = refund_object(
        order, refund_id="re_f", amount=9998, status="failed", failure_reason="expired_or_canceled_card"
    )
    deliver(event("refund.failed", failed))

    fresh = Order.objects.get(pk=order.pk)
    # States only move forward; the refunded order that got its money back is logged for a person.
    assert (fresh.status, fresh.amount_refunded) == (OrderStatus.REFUNDED, 0)
    assert OrderRefund.objects.get(stripe_refund_id="re_f").failure_reason == "expired_or_canceled_card"


def test_dispute_closed_before_it_was_created_keeps_the_loss(deliver, order):
    closed = event("charge.dispute.closed", dispute_object(order, dispute_id="dp_a", status="lost"))
    created = event(
        "charge.dispute.created", dispute_object(order, dispute_id="dp_a", status="needs_response")
    )

    deliver(closed)
    deliver(created)
    deliver(closed)

    row = OrderDispute.objects.get(stripe_dispute_id="dp_a")
    assert (row.status, row.reason, row.evidence_due_by.year) == ("lost", "product_not_received", 2030)
    fresh = Order.objects.get(pk=order.pk)
    assert (fresh.status, fresh.amount_refunded) == (OrderStatus.REFUNDED, 9998)


def test_a_refund_of_a_payment_stripe_does_not_know_is_ignored(deliver, order):
    foreign = refund_object(order, refund_id="re_x", amount=100, status="succeeded")
    foreign["payment_intent"] = "pi_someone_elses"
    evt = event("refund.created", foreign)

    assert deliver(evt).status_code == 200

    assert stored(evt).status == "ignored"
    assert "not made by this project" in stored(evt).outcome
    assert not OrderRefund.objects.exists()


def test_a_dispute_naming_no_payment_is_ignored(deliver, order):
    data = dispute_object(order, dispute_id="dp_x", status="needs_response")
    data["payment_intent"] = None
    evt = event("charge.dispute.created", data)

    deliver(evt)

    assert stored(evt).status == "ignored"
    assert not OrderDispute.objects.exists()


def test_an_event_whose_object_is_not_a_refund_is_ignored(deliver, order):
    evt = event("refund.updated", {"id": "cus_1", "object": "customer"})

    deliver(evt)

    assert (stored(evt).status, stored(evt).outcome) == ("ignored", "event data is not a Refund")
