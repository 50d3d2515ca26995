"""Each event type's handler, through the inbox, and every order in which Stripe's events can arrive."""

import logging

import pytest

from orders import transitions
from orders.models import OrderStatus, OrderTransition, TransitionSource
from orders.signals import order_fulfilled
from payments.handlers import HANDLERS
from payments.models import StripeEvent
from payments.tests.events import deliver, event, new_id, open_order, receive, session_event

# Handlers run inline here, their fulfillment signal too: these are unit tests of what a handler does.
pytestmark = [pytest.mark.django_db]

COMPLETED = "checkout.session.completed"
SUCCEEDED = "checkout.session.async_payment_succeeded"
FAILED = "checkout.session.async_payment_failed"
EXPIRED = "checkout.session.expired"


@pytest.fixture
def payments_log(caplog, monkeypatch):
    """Return caplog, seeing the payments loggers (which the project's LOGGING keeps from propagating)."""
    monkeypatch.setattr(logging.getLogger("payments"), "propagate", True)
    caplog.set_level(logging.INFO, logger="payments")
    return caplog


def stored(evt) -> StripeEvent:
    return StripeEvent.objects.get(stripe_id=evt["id"])


def test_registry_has_one_handler_per_checkout_refund_and_dispute_event_type():
    refunds = {"charge.refunded", "refund.created", "refund.updated", "refund.failed"}
    disputes = {"charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed"}
    assert set(HANDLERS) == {COMPLETED, SUCCEEDED, FAILED, EXPIRED} | refunds | disputes


def test_paid_completed_session_fulfills_the_order(product, django_capture_on_commit_callbacks, payments_log):
    order = open_order(product, quantity=2)
    evt = session_event(COMPLETED, order, email="paid@example.com")
    fired = []
    order_fulfilled.connect(lambda **kwargs: fired.append(kwargs), weak=False, dispatch_uid="test-fired")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            result = receive(evt)
    finally:
        order_fulfilled.disconnect(dispatch_uid="test-fired")

    assert (result.status, result.reason, result.duplicate) == ("processed", "fulfilled", False)
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED
    assert order.stripe_payment_intent_id == evt["data"]["object"]["payment_intent"]
    assert order.customer_email == "paid@example.com"
    transition = order.transitions.get()
    assert (transition.from_status, transition.to_status) == ("pending", "fulfilled")
    assert (transition.source, transition.stripe_event_id) == (TransitionSource.WEBHOOK, evt["id"])
    event_row = stored(evt)
    assert (event_row.status, event_row.order_id, event_row.attempts) == ("processed", order.pk, 1)
    assert event_row.processed_at is not None
    assert fired == [
        {
            "signal": order_fulfilled,
            "sender": type(order),
            "order_id": order.pk,
            "source": "webhook",
            "stripe_event_id": evt["id"],
        }
    ]
    assert (
        f"order {order.pk} fulfilled: shop fulfillment hook fired (source=webhook event={evt['id']})"
        in payments_log.text
    )


def test_no_payment_required_session_fulfills_the_order(product):
    order = open_order(product)

    receive(session_event(COMPLETED, order, payment_status="no_payment_required"))

    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED


def test_completed_session_of_a_confirmed_order_fulfills_it(product):
    order = open_order(product)
    transitions.order_confirm(order_id=order.pk)

    receive(session_event(COMPLETED, order))

    steps = list(order.transitions.values_list("from_status", "to_status"))
    assert steps == [("pending", "confirmed"), ("confirmed", "fulfilled")]


def test_unpaid_completed_session_marks_payment_pending_without_transition(product):
    order = open_order(product)

    result = receive(session_event(COMPLETED, order, payment_status="unpaid"))

    assert result.status == "processed"
    assert "marked as pending, no transition" in result.reason
    order.refresh_from_db()
    assert (order.status, order.payment_pending) == (OrderStatus.PENDING, True)
    assert not order.transitions.exists()


def test_async_payment_succeeded_fulfills_a_pending_payment(product):
    order = open_order(product)
    receive(session_event(COMPLETED, order, payment_status="unpaid"))

    result = receive(session_event(SUCCEEDED, order))

    assert result.reason == "fulfilled"
    order.refresh_from_db()
    assert (order.status, order.payment_pending) == (OrderStatus.FULFILLED, False)


def test_async_payment_failed_fails_the_order_with_a_reason(product):
    order = open_order(product)
    receive(session_event(COMPLETED, order, payment_status="unpaid"))

    result = receive(session_event(FAILED, order, payment_status="unpaid"))

    assert result.reason == "failed: the delayed payment failed"
    order.refresh_from_db()
    assert order.status == OrderStatus.FAILED
    assert "delayed payment failed" in order.failure_reason
    assert order.transitions.get().source == TransitionSource.WEBHOOK


def test_expired_session_expires_the_order(product):
    order = open_order(product)

    result = receive(session_event(EXPIRED, order, status="expired", payment_status="unpaid"))

    assert result.reason == "expired"
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED


@pytest.mark.parametrize(
    ("first", "second", "final"),
    [
        # Stripe gives no ordering guarantee; states only move forward, so the second finds nothing to do.
        ((SUCCEEDED, "paid", "complete"), (COMPLETED, "unpaid", "complete"), OrderStatus.FULFILLED),
        ((COMPLETED, "paid", "complete"), (EXPIRED, "unpaid", "expired"), OrderStatus.FULFILLED),
        ((SUCCEEDED, "paid", "complete"), (FAILED, "unpaid", "complete"), OrderStatus.FULFILLED),
        ((COMPLETED, "paid", "complete"), (SUCCEEDED, "paid", "complete"), OrderStatus.FULFILLED),
        ((FAILED, "unpaid", "complete"), (EXPIRED, "unpaid", "expired"), OrderStatus.FAILED),
    ],
    ids=[
        "succeeded-before-completed",
        "expired-after-completed",
        "failed-after-succeeded",
        "succeeded-after-completed",
        "expired-after-failed",
    ],
)
def test_second_event_of_an_out_of_order_pair_is_a_recorded_no_op(product, first, second, final):
    order = open_order(product)
    first_event = session_event(first[0], order, payment_status=first[1], status=first[2])
    second_event = session_event(second[0], order, payment_status=second[1], status=second[2])

    receive(first_event)
    result = receive(second_event)

    order.refresh_from_db()
    assert order.status == final
    assert order.transitions.count() == 1
    assert order.transitions.get().stripe_event_id == first_event["id"]
    assert result.status == "processed"
    assert result.reason == f"no-op: order already {final}"
    assert (stored(second_event).status, stored(second_event).order_id) == ("processed", order.pk)


# A paid event for an order already closed is money the order cannot take: never a no-op (issue 11).
@pytest.mark.parametrize(
    ("first", "second", "closed"),
    [
        ((EXPIRED, "unpaid", "expired"), (COMPLETED, "paid", "complete"), OrderStatus.EXPIRED),
        ((FAILED, "unpaid", "complete"), (SUCCEEDED, "paid", "complete"), OrderStatus.FAILED),
    ],
    ids=["completed-after-expired", "succeeded-after-failed"],
)
def test_a_payment_after_the_order_closed_needs_review_and_flags_the_order(
    product, settings, first, second, closed
):
    settings.REFUND_LATE_PAYMENTS = False  # no Stripe here; the refund is tested against the emulator
    order = open_order(product)
    first_event = session_event(first[0], order, payment_status=first[1], status=first[2])
    second_event = session_event(second[0], order, payment_status=second[1], status=second[2])

    receive(first_event)
    result = receive(second_event)

    order.refresh_from_db()
    assert (order.status, order.needs_attention) == (closed, True)
    assert order.transitions.count() == 1
    assert result.status == "needs_review"
    assert result.reason.startswith(
        f"late payment: paid 49.99 USD on session {order.stripe_checkout_session_id}"
    )
    assert "automatic refunds are off" in order.attention_reason
    assert (stored(second_event).status, stored(second_event).order_id) == ("needs_review", order.pk)


def test_unpaid_completed_after_fulfillment_leaves_payment_pending_off(product):
    order = open_order(product)
    receive(session_event(SUCCEEDED, order))

    receive(session_event(COMPLETED, order, payment_status="unpaid"))

    order.refresh_from_db()
    assert (order.status, order.payment_pending) == (OrderStatus.FULFILLED, False)


@pytest.mark.parametrize(
    "changes",
    [{"amount_total": 100}, {"currency": "eur"}],
    ids=["amount", "currency"],
)
def test_mismatched_payment_puts_the_event_in_front_of_a_person_and_moves_nothing(
    client, product, settings, payments_log, changes, worker_run
):
    settings.STRIPE_WEBHOOK_SECRETS = ["whsec_test_payments_suite"]
    order = open_order(product)
    evt = session_event(COMPLETED, order, **changes)

    response = deliver(client, evt)

    assert response.status_code == 200
    # Final: a retry cannot change what was charged, so it is processed once and not queued again.
    assert worker_run() == 1
    assert worker_run() == 0
    assert stored(evt).next_attempt_at is None
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    assert not OrderTransition.objects.exists()
    event_row = stored(evt)
    assert event_row.status == "needs_review"
    assert event_row.order_id == order.pk
    assert "amount mismatch" in event_row.outcome and "a person must look" in event_row.outcome
    assert any(
        r.levelno == logging.ERROR and "amount mismatch" in r.getMessage() for r in payments_log.records
    )


@pytest.mark.parametrize(
    ("session", "reason"),
    [
        ({"order_ref": ""}, "it names no order"),
        ({"order_ref": "order-42"}, "order reference 'order-42' is not an order id"),
        (
            {"order_ref": "6b0d6a5e-4c8e-4a38-9d7e-3f4f8f1f2a11"},
            "no order 6b0d6a5e-4c8e-4a38-9d7e-3f4f8f1f2a11",
        ),
    ],
    ids=["stripe-trigger-no-metadata", "not-a-uuid", "unknown-order"],
)
def test_session_the_project_did_not_create_is_ignored(product, session, reason):
    evt = session_event(COMPLETED, None, **session)

    result = receive(evt)

    assert result.status == "ignored"
    assert result.reason == f"session not created by this project: {reason}"
    assert stored(evt).status == "ignored"
    assert not OrderTransition.objects.exists()


def test_session_naming_an_order_that_has_another_session_is_ignored(product):
    order = open_order(product)
    evt = session_event(COMPLETED, order, session_id=new_id("cs_test_"))

    result = receive(evt)

    assert result.status == "ignored"
    assert f"order {order.pk} belongs to session {order.stripe_checkout_session_id}" in result.reason
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING


def test_session_of_an_order_whose_session_id_was_never_saved_is_adopted(product):
    # Stripe opened the session but saving its id on the order failed: the signed event proves it is ours.
    order = open_order(product)
    type(order).objects.filter(pk=order.pk).update(stripe_checkout_session_id=None)
    evt = session_event(COMPLETED, order, session_id=new_id("cs_test_"))

    result = receive(evt)

    assert result.reason == "fulfilled"
    order.refresh_from_db()
    assert order.stripe_checkout_session_id == evt["data"]["object"]["id"]
    assert order.status == OrderStatus.FULFILLED


@pytest.mark.parametrize("event_type", ["payment_intent.succeeded", "customer.created", "invoice.paid"])
def test_unhandled_event_type_is_stored_as_ignored(event_type):
    evt = event(event_type, {"id": new_id("obj_"), "object": event_type.split(".")[0]})

    result = receive(evt)

    assert (result.status, result.reason) == ("ignored", "unhandled event type")
    assert stored(evt).status == "ignored"


def test_checkout_event_whose_object_is_not_a_session_is_ignored():
    evt = event(COMPLETED, {"id": "pi_123", "object": "payment_intent"})

    result = receive(evt)

    assert (result.status, result.reason) == ("ignored", "event data is not a Checkout Session")
