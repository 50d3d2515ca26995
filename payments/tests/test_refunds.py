"""Refunds and disputes end to end: the emulator refunds, disputes and delivers its signed webhooks."""

from collections import Counter
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from conftest import run_together
from orders.exceptions import RefundRefused
from orders.models import (
    Order,
    OrderDispute,
    OrderRefund,
    OrderStatus,
    OrderTransition,
    RefundRequester,
    RefundStatus,
)
from payments import gateway
from payments.models import CustomerEmail, EventStatus, StripeEvent
from payments.refunds import order_refund
from payments.tests.conftest import emulator_worker_env
from payments.tests.events import emulator_order

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def webhooks(emulator, live_server):
    """Return the emulator, delivering its webhooks to the live test server."""
    emulator.configure(webhook_url=f"{live_server.url}/stripe-webhook", async_delay=3600)
    return emulator


@pytest.fixture
def stripe(webhooks, worker):
    """Return the emulator delivering to the live server, and a real worker processing the events."""
    worker(**emulator_worker_env(webhooks))
    return webhooks


@pytest.fixture
def paid(webhooks, settled, synced_product):
    """Return a factory of fulfilled orders paid by card on the emulator."""

    def make(quantity: int = 2) -> Order:
        order, session = emulator_order(synced_product, quantity=quantity)
        webhooks.pay(session.id, "card")
        settled()
        order.refresh_from_db()
        assert order.status == OrderStatus.FULFILLED and order.stripe_payment_intent_id
        return order

    return make


def signalled(order: Order) -> list[tuple[int, bool]]:
    """Return the (amount, signalled) of the order's succeeded refunds."""
    rows = OrderRefund.objects.filter(order=order, status=RefundStatus.SUCCEEDED).order_by("created_at")
    return [(row.amount, row.signalled_at is not None) for row in rows]


def stripe_refunds(emulator, order: Order) -> list[dict]:
    return [
        r
        for r in emulator.store.newest_first("refunds")
        if r["payment_intent"] == order.stripe_payment_intent_id
    ]


def refund(order: Order, amount: int | None = None, **kwargs):
    return order_refund(order_id=order.pk, amount=amount, requested_by=RefundRequester.ADMIN, **kwargs)


def test_partial_refunds_that_add_up_to_the_total_end_refunded(stripe, paid, settled, wait_until):
    order = paid(quantity=2)  # 99.98 USD

    first = refund(order, 3000, reason="requested_by_customer")
    settled()
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (OrderStatus.FULFILLED, 3000)

    second = refund(order)  # everything left
    settled()

    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (OrderStatus.REFUNDED, 9998)
    assert (first.ok, second.ok, second.refund.amount) == (True, True, 6998)
    assert sorted(r["amount"] for r in stripe_refunds(stripe, order)) == [3000, 6998]
    assert OrderRefund.objects.filter(order=order, status=RefundStatus.SUCCEEDED).count() == 2
    assert list(OrderTransition.objects.filter(order=order).values_list("to_status", flat=True)) == [
        "fulfilled",
        "refunded",
    ]
    wait_until(lambda: signalled(order) == [(3000, True), (6998, True)])
    with pytest.raises(RefundRefused, match="already refunded in full"):
        refund(order, 1)


def test_a_refund_above_what_is_left_is_refused_before_stripe_is_asked(stripe, paid):
    order = paid(quantity=1)  # 49.99 USD
    refund(order, 4000)

    with pytest.raises(RefundRefused, match=r"only 9\.99 USD of its 49\.99 USD is left to refund"):
        refund(order, 1000)

    assert len(stripe_refunds(stripe, order)) == 1
    assert OrderRefund.objects.filter(order=order).count() == 1


def test_the_refunds_webhook_arriving_before_the_api_answer_is_one_refund(
    webhooks, worker, paid, settled, worker_run, monkeypatch
):
    # The emulator answers the refund call only after the first delivery of each of its events, and
    # here a worker processes them before the answer comes back (a worker quicker than Stripe's
    # answer): the row is recorded from the webhook before the API call returns.
    started = worker(**emulator_worker_env(webhooks))
    order = paid()
    started.terminate()  # from here, only this test's own worker runs, when the wrapper below says
    started.wait(timeout=10)
    webhooks.configure(webhook_timing="before_redirect")
    create = gateway.refund_create

    def answered_after_the_worker(**kwargs):
        answer = create(**kwargs)
        assert worker_run() == 2  # refund.created and charge.refunded
        return answer

    monkeypatch.setattr(gateway, "refund_create", answered_after_the_worker)

    outcome = refund(order)

    assert outcome.ok and outcome.refund.status == RefundStatus.SUCCEEDED
    (row,) = OrderRefund.objects.filter(order=order)
    (at_stripe,) = stripe_refunds(webhooks, order)
    assert (row.stripe_refund_id, row.requested_by, row.amount) == (at_stripe["id"], "admin", 9998)
    assert StripeEvent.objects.filter(type="refund.created", status=EventStatus.PROCESSED).count() == 1
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (OrderStatus.REFUNDED, 9998)
    assert signalled(order) == [(9998, True)]


def test_a_double_submit_of_one_request_makes_one_refund(stripe, paid):
    order = paid()
    first = refund(order, 1000, request_id=None)
    token = first.refund.pk

    again = refund(order, 1000, request_id=token)

    assert (again.created, again.refund.pk, again.ok) == (False, token, True)
    assert "already asked for" in again.message
    assert len(stripe_refunds(stripe, order)) == 1


def test_a_dashboard_refund_is_known_by_its_webhook_only(stripe, paid, settled, wait_until):
    order = paid()

    stripe.refund(payment_intent=order.stripe_payment_intent_id, amount=2500)
    settled()

    (row,) = OrderRefund.objects.filter(order=order)
    assert (row.requested_by, row.status, row.amount) == ("dashboard", "succeeded", 2500)
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (OrderStatus.FULFILLED, 2500)
    wait_until(lambda: signalled(order) == [(2500, True)])


def test_a_dashboard_refund_of_an_order_that_never_stored_its_payment_finds_it_through_stripe(
    stripe, paid, settled
):
    order = paid()
    Order.objects.filter(pk=order.pk).update(stripe_payment_intent_id="")

    stripe.refund(payment_intent=order.stripe_payment_intent_id)
    settled()

    fresh = Order.objects.get(pk=order.pk)
    assert (fresh.status, fresh.amount_refunded) == (OrderStatus.REFUNDED, 9998)
    assert fresh.stripe_payment_intent_id == order.stripe_payment_intent_id


def test_a_failed_refund_leaves_amount_refunded_unchanged(stripe, paid, settled):
    order = paid()
    stripe.configure(fail_next_refunds=1)

    refund(order, 5000)
    settled()

    (row,) = OrderRefund.objects.filter(order=order)
    assert (row.status, row.failure_reason) == (RefundStatus.FAILED, "expired_or_canceled_card")
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (OrderStatus.FULFILLED, 0)
    assert signalled(order) == []
    # The failed refund holds no money: the whole amount can be refunded again.
    assert refund(order).refund.amount == 9998


def test_an_asynchronous_refund_is_pending_until_stripe_settles_it(stripe, paid, settled):
    order = paid()
    stripe.configure(refund_mode="pending")

    outcome = refund(order)
    settled()
    assert outcome.refund.status == RefundStatus.PENDING and "pending" in outcome.message
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (OrderStatus.FULFILLED, 0)
    with pytest.raises(RefundRefused, match="under way"):
        refund(order, 1)

    stripe.settle_refund(outcome.refund.stripe_refund_id, "succeeded")
    settled()

    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (OrderStatus.REFUNDED, 9998)


def test_an_asynchronous_refund_that_fails_returns_nothing(stripe, paid, settled):
    order = paid()
    stripe.configure(refund_mode="pending")
    outcome = refund(order)

    stripe.settle_refund(outcome.refund.stripe_refund_id, "failed", "lost_or_stolen_card")
    settled()

    row = OrderRefund.objects.get(pk=outcome.refund.pk)
    assert (row.status, row.failure_reason) == (RefundStatus.FAILED, "lost_or_stolen_card")
    assert Order.objects.get(pk=order.pk).amount_refunded == 0


def test_duplicated_refund_webhooks_count_once(stripe, paid, settled, wait_until):
    order = paid()
    stripe.configure(duplicates=3)

    stripe.refund(payment_intent=order.stripe_payment_intent_id, amount=1234)
    settled()

    order.refresh_from_db()
    assert order.amount_refunded == 1234
    assert OrderRefund.objects.filter(order=order).count() == 1
    wait_until(lambda: signalled(order) == [(1234, True)])


def test_a_lost_dispute_counts_as_money_returned_and_refunds_the_order(stripe, paid, settled, wait_until):
    order = paid()

    dispute = stripe.open_dispute(payment_intent=order.stripe_payment_intent_id, reason="fraudulent")
    settled()
    row = OrderDispute.objects.get(stripe_dispute_id=dispute["id"])
    assert (row.status, row.amount, row.reason) == ("needs_response", 9998, "fraudulent")
    assert row.evidence_due_by is not None

    stripe.update_dispute(dispute["id"], "under_review")
    settled()
    stripe.close_dispute(dispute["id"], "lost")
    settled()

    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (OrderStatus.REFUNDED, 9998)
    wait_until(lambda: OrderDispute.objects.get(pk=row.pk).signalled_status == "lost")


def test_a_won_dispute_returns_nothing(stripe, paid, settled, wait_until):
    order = paid()

    dispute = stripe.open_dispute(payment_intent=order.stripe_payment_intent_id)
    stripe.close_dispute(dispute["id"], "won")
    settled()

    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (OrderStatus.FULFILLED, 0)
    assert OrderDispute.objects.get(stripe_dispute_id=dispute["id"]).status == "won"
    wait_until(lambda: OrderDispute.objects.get(stripe_dispute_id=dispute["id"]).signalled_status == "won")


def test_stripe_unreachable_keeps_the_request_and_a_retry_refunds_once(stripe, paid, settings, settled):
    order = paid()
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens on the discard port

    outcome = refund(order, 1500)

    assert not outcome.ok and outcome.refund.status == RefundStatus.REQUESTED
    assert "kept as requested" in outcome.message and "--retry" in outcome.message
    settings.STRIPE_API_BASE = stripe.base_url
    out = StringIO()
    call_command("refund_order", str(order.pk), "--retry", str(outcome.refund.pk), stdout=out)
    call_command("refund_order", str(order.pk), "--retry", str(outcome.refund.pk), stdout=out)
    settled()

    assert len(stripe_refunds(stripe, order)) == 1
    assert OrderRefund.objects.get(pk=outcome.refund.pk).status == RefundStatus.SUCCEEDED
    assert Order.objects.get(pk=order.pk).amount_refunded == 1500


def test_refund_order_command_reads_amounts_as_a_person_writes_them_and_takes_the_reference(
    stripe, paid, settled
):
    order = paid()
    out = StringIO()

    call_command("refund_order", order.reference, "--amount", "12", stdout=out)
    call_command("refund_order", str(order.pk), "--amount", "12.50", "--reason", "duplicate", stdout=out)
    settled()

    assert "Refunded 12.50 USD" in out.getvalue()
    assert sorted(r["amount"] for r in stripe_refunds(stripe, order)) == [1200, 1250]
    assert Order.objects.get(pk=order.pk).amount_refunded == 2450


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--amount", "12,50"], "is not an amount"),
        (["--amount", "1000"], "is left to refund"),
        (["--amount", "0"], "above zero"),
        (["--amount", "12.345"], "write it as 12.55 or 12"),
    ],
)
def test_refund_order_command_refuses_bad_amounts(stripe, paid, args, message):
    order = paid()

    with pytest.raises(CommandError, match=message):
        call_command("refund_order", str(order.pk), *args, stdout=StringIO())

    assert stripe_refunds(stripe, order) == []


def test_refund_order_command_refuses_an_unknown_or_unpaid_order(stripe, synced_product):
    order, _ = emulator_order(synced_product)

    with pytest.raises(CommandError, match="No order"):
        call_command("refund_order", "00000000-0000-0000-0000-000000000000", stdout=StringIO())
    with pytest.raises(CommandError, match="is pending: only a fulfilled order can be refunded"):
        call_command("refund_order", str(order.pk), stdout=StringIO())


def test_replay_events_filters_refund_types(stripe, paid, settled):
    order = paid()
    stripe.configure(refund_mode="pending")
    pending = stripe.refund(payment_intent=order.stripe_payment_intent_id, amount=1000)
    stripe.settle_refund(pending["id"], "succeeded")
    settled()
    # As if the database had lost what the events did: replaying refund.updated alone must restore it.
    CustomerEmail.objects.filter(order=order).delete()
    OrderRefund.objects.filter(order=order).delete()
    Order.objects.filter(pk=order.pk).update(amount_refunded=0)

    out = StringIO()
    call_command("replay_events", "--type", "refund.updated", stdout=out)

    assert out.getvalue().strip() == "1 stored event handled: 1 processed."
    row = OrderRefund.objects.get(order=order)
    assert (row.stripe_refund_id, row.status, row.requested_by) == (pending["id"], "succeeded", "dashboard")
    assert Order.objects.get(pk=order.pk).amount_refunded == 1000


@pytest.mark.postgres_only
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL's row locks")
def test_two_operators_refunding_the_remainder_at_once_make_one_refund(stripe, paid, settled):
    orders = [paid() for _ in range(3)]
    for order in orders:
        refund(order, 2000)

    def operator(number: int) -> str:
        try:
            refund(orders[number])  # everything left
        except RefundRefused:
            return "refused"
        return "refunded"

    results = Counter(
        answer for answers in run_together([operator] * 2, rounds=len(orders)) for answer in answers
    )
    settled()

    assert results == {"refunded": 3, "refused": 3}
    for order in orders:
        assert sorted(r["amount"] for r in stripe_refunds(stripe, order)) == [2000, 7998]
        assert OrderRefund.objects.filter(order=order).count() == 2
        assert Order.objects.get(pk=order.pk).status == OrderStatus.REFUNDED
