"""The refund and dispute rows, the recomputed amount, the refund transition and their signals."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from orders import transitions
from orders.exceptions import RefundRefused
from orders.models import Order, OrderRefund, OrderStatus, OrderTransition, RefundRequester
from orders.refunds import (
    order_dispute_apply,
    order_refund_apply,
    order_refund_record,
    order_refund_refused,
    order_refund_request,
)
from orders.services import order_create
from orders.signals import (
    order_disputed,
    order_disputed_signal_send,
    order_refunded,
    order_refunded_signal_send,
    signals_owed,
    signals_resend,
)

pytestmark = pytest.mark.django_db(transaction=True)


def send_owed() -> int:
    """Send every signal owed, as a worker's sweep would; return how many."""
    return signals_resend(older_than=timedelta(0))


@pytest.fixture
def fulfilled(product) -> Order:
    order = order_create(lines=[(product, 2)])  # 99.98 USD
    transitions.order_fulfill(order_id=order.pk, source="webhook", payment_intent_id="pi_test_refunds")
    assert send_owed() == 1  # its fulfilment signal: nothing is owed when the test starts
    return Order.objects.get(pk=order.pk)


@pytest.fixture
def sent():
    """Collect the refund and dispute signals (sent when owed: send them with `send_owed`)."""
    calls: dict[str, list[dict]] = {"refunded": [], "disputed": []}

    def on_refunded(sender, **kwargs):
        calls["refunded"].append(kwargs)

    def on_disputed(sender, **kwargs):
        calls["disputed"].append(kwargs)

    order_refunded.connect(on_refunded, dispatch_uid="orders-test-refunded")
    order_disputed.connect(on_disputed, dispatch_uid="orders-test-disputed")
    yield calls
    order_refunded.disconnect(dispatch_uid="orders-test-refunded")
    order_disputed.disconnect(dispatch_uid="orders-test-disputed")


def apply(order: Order, refund_id: str, amount: int, status: str, **kwargs):
    return order_refund_apply(
        order_id=order.pk, stripe_refund_id=refund_id, amount=amount, currency="usd", status=status, **kwargs
    )


def dispute(order: Order, status: str, *, amount: int | None = None, dispute_id: str = "dp_1"):
    return order_dispute_apply(
        order_id=order.pk,
        stripe_dispute_id=dispute_id,
        amount=order.amount_total if amount is None else amount,
        currency="usd",
        status=status,
        reason="fraudulent",
    )


def state(order: Order) -> tuple[str, int]:
    fresh = Order.objects.get(pk=order.pk)
    return fresh.status, fresh.amount_refunded


def test_partial_refunds_that_add_up_to_the_total_refund_the_order_once(fulfilled, sent):
    apply(fulfilled, "re_1", 4000, "succeeded")
    assert state(fulfilled) == (OrderStatus.FULFILLED, 4000)
    send_owed()

    applied = apply(fulfilled, "re_2", 5998, "succeeded")
    send_owed()

    assert applied.totals.refunded_now and applied.totals.amount_refunded == applied.totals.amount_total
    assert state(fulfilled) == (OrderStatus.REFUNDED, 9998)
    assert OrderTransition.objects.filter(order=fulfilled, to_status=OrderStatus.REFUNDED).count() == 1
    assert [(s["amount"], s["full"]) for s in sent["refunded"]] == [(4000, False), (5998, True)]


def test_a_refund_applied_many_times_counts_once(fulfilled, sent):
    for _ in range(3):
        apply(fulfilled, "re_1", 3000, "succeeded")
    send_owed()

    assert state(fulfilled) == (OrderStatus.FULFILLED, 3000)
    assert OrderRefund.objects.filter(order=fulfilled).count() == 1
    assert len(sent["refunded"]) == 1


def test_a_late_pending_snapshot_never_moves_a_succeeded_refund_back(fulfilled):
    apply(fulfilled, "re_1", 3000, "succeeded")  # refund.updated delivered first

    late = apply(fulfilled, "re_1", 3000, "pending")  # refund.created, delivered late

    assert not late.changed and late.row.status == "succeeded"
    assert state(fulfilled) == (OrderStatus.FULFILLED, 3000)


def test_a_late_succeeded_snapshot_never_undoes_a_failure(fulfilled):
    apply(fulfilled, "re_1", 3000, "failed", failure_reason="lost_or_stolen_card")

    apply(fulfilled, "re_1", 3000, "succeeded")

    assert OrderRefund.objects.get(stripe_refund_id="re_1").status == "failed"
    assert state(fulfilled) == (OrderStatus.FULFILLED, 0)


def test_a_refund_that_fails_after_succeeding_gives_its_amount_back(fulfilled):
    apply(fulfilled, "re_1", 3000, "succeeded")

    apply(fulfilled, "re_1", 3000, "failed", failure_reason="expired_or_canceled_card")

    assert state(fulfilled) == (OrderStatus.FULFILLED, 0)


def test_refunds_of_an_order_that_is_not_fulfilled_never_refund_it(product):
    order = order_create(lines=[(product, 1)])
    transitions.order_confirm(order_id=order.pk)

    apply(order, "re_1", order.amount_total, "succeeded")

    assert state(order) == (OrderStatus.CONFIRMED, order.amount_total)


def test_a_lost_dispute_counts_as_returned_and_a_full_loss_refunds_the_order(fulfilled, sent):
    dispute(fulfilled, "needs_response")
    assert state(fulfilled) == (OrderStatus.FULFILLED, 0)
    send_owed()

    dispute(fulfilled, "lost")
    send_owed()

    assert state(fulfilled) == (OrderStatus.REFUNDED, 9998)
    assert [s["status"] for s in sent["disputed"]] == ["needs_response", "lost"]


def test_a_won_dispute_returns_nothing(fulfilled):
    dispute(fulfilled, "needs_response")
    dispute(fulfilled, "under_review")

    dispute(fulfilled, "won")

    assert state(fulfilled) == (OrderStatus.FULFILLED, 0)


def test_reordered_and_duplicated_dispute_events_keep_the_final_status(fulfilled, sent):
    dispute(fulfilled, "lost", amount=5000)  # charge.dispute.closed first
    send_owed()
    dispute(fulfilled, "needs_response", amount=5000)  # charge.dispute.created, late
    dispute(fulfilled, "under_review", amount=5000)  # charge.dispute.updated, late
    dispute(fulfilled, "lost", amount=5000)  # closed again, duplicated
    send_owed()

    assert state(fulfilled) == (OrderStatus.FULFILLED, 5000)
    assert [s["status"] for s in sent["disputed"]] == ["lost"]


def test_refunds_and_lost_disputes_together_are_capped_at_the_total(fulfilled):
    apply(fulfilled, "re_1", 9998, "succeeded")

    dispute(fulfilled, "lost")

    assert state(fulfilled) == (OrderStatus.REFUNDED, 9998)


def test_the_database_refuses_amount_refunded_above_the_total(fulfilled):
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.filter(pk=fulfilled.pk).update(amount_refunded=fulfilled.amount_total + 1)


def test_the_refund_transition_takes_only_a_fulfilled_order(product):
    order = order_create(lines=[(product, 1)])

    assert transitions.order_refund(order_id=order.pk, source="system").won is False
    assert state(order) == (OrderStatus.PENDING, 0)


def test_a_request_above_what_remains_is_refused(fulfilled):
    order_refund_request(order_id=fulfilled.pk, amount=9000, requested_by=RefundRequester.COMMAND)

    with pytest.raises(
        RefundRefused, match=r"only 9\.98 USD of its 99\.98 USD is left.*1 refund still under way counts"
    ):
        order_refund_request(order_id=fulfilled.pk, amount=999, requested_by=RefundRequester.COMMAND)
    assert OrderRefund.objects.filter(order=fulfilled).count() == 1


def test_a_request_for_an_unpaid_order_is_refused_unless_it_refunds_a_late_payment(product):
    order = order_create(lines=[(product, 1)])
    transitions.order_expire(order_id=order.pk, source="system")

    with pytest.raises(RefundRefused, match="is expired: only a fulfilled order can be refunded"):
        order_refund_request(order_id=order.pk, amount=None, requested_by=RefundRequester.ADMIN)
    refund, created = order_refund_request(
        order_id=order.pk, amount=None, requested_by=RefundRequester.AUTOMATIC
    )

    assert created and refund.amount == order.amount_total


def test_a_request_with_a_reason_stripe_does_not_know_is_refused(fulfilled):
    with pytest.raises(RefundRefused, match="not a refund reason Stripe knows"):
        order_refund_request(order_id=fulfilled.pk, amount=100, reason="changed_mind", requested_by="admin")


def test_a_repeated_request_id_finds_its_row_and_refuses_another_amount(fulfilled):
    first, created = order_refund_request(order_id=fulfilled.pk, amount=100, requested_by="admin")

    again, created_again = order_refund_request(
        order_id=fulfilled.pk, amount=100, requested_by="admin", request_id=first.pk
    )
    with pytest.raises(RefundRefused, match=r"already made for 1\.00 USD"):
        order_refund_request(order_id=fulfilled.pk, amount=200, requested_by="admin", request_id=first.pk)

    assert (created, created_again, again.pk) == (True, False, first.pk)
    assert OrderRefund.objects.count() == 1


def test_the_refund_signal_is_sent_once_however_often_it_is_asked_for(fulfilled, sent):
    applied = apply(fulfilled, "re_1", 3000, "succeeded")
    assert send_owed() == 1

    again = [order_refunded_signal_send(refund_pk=applied.row.pk) for _ in range(2)]
    resent = signals_resend(older_than=timedelta(0))

    assert (again, resent) == ([False, False], 0)
    assert len(sent["refunded"]) == 1


def test_an_owed_refund_signal_is_sent_by_the_resend(fulfilled, sent):
    applied = apply(fulfilled, "re_1", 3000, "succeeded")  # no worker sends it
    assert sent["refunded"] == []

    assert signals_resend(older_than=timedelta(0)) == 1
    assert signals_resend(older_than=timedelta(0)) == 0
    assert [s["refund_id"] for s in sent["refunded"]] == ["re_1"]
    assert OrderRefund.objects.get(pk=applied.row.pk).signalled_at is not None


def test_a_pending_refund_is_never_signalled(fulfilled, sent):
    applied = apply(fulfilled, "re_1", 3000, "pending")

    assert order_refunded_signal_send(refund_pk=applied.row.pk) is False
    assert sent["refunded"] == []


def test_the_dispute_signal_is_sent_once_per_status(fulfilled, sent):
    applied = dispute(fulfilled, "needs_response")
    assert send_owed() == 1

    assert order_disputed_signal_send(dispute_pk=applied.row.pk) is False
    assert signals_resend(older_than=timedelta(0)) == 0
    assert [s["status"] for s in sent["disputed"]] == ["needs_response"]


def owed(kind: str) -> list:
    return [pk for owed_kind, pk in signals_owed(changed_before=timezone.now()) if owed_kind == kind]


def test_the_refund_owes_its_signal_with_its_own_commit_or_not_at_all(fulfilled):
    with pytest.raises(RuntimeError), transaction.atomic():
        applied = apply(fulfilled, "re_1", 3000, "succeeded")
        assert owed("refund") == [applied.row.pk]
        raise RuntimeError("the event's transaction fails after the refund")

    assert not OrderRefund.objects.exists()
    assert owed("refund") == []

    applied = apply(fulfilled, "re_1", 3000, "succeeded")
    assert owed("refund") == [applied.row.pk]


def test_the_dispute_owes_its_signal_with_the_status_reached_or_not_at_all(fulfilled):
    with pytest.raises(RuntimeError), transaction.atomic():
        applied = dispute(fulfilled, "needs_response")
        assert owed("dispute") == [applied.row.pk]
        raise RuntimeError("the event's transaction fails after the dispute")

    assert owed("dispute") == []
    applied = dispute(fulfilled, "needs_response")
    assert owed("dispute") == [applied.row.pk]


def test_only_a_change_that_makes_a_signal_due_owes_it(fulfilled, sent):
    apply(fulfilled, "re_1", 3000, "pending")
    assert owed("refund") == []

    apply(fulfilled, "re_1", 3000, "succeeded")
    dispute(fulfilled, "needs_response")
    assert send_owed() == 2

    apply(fulfilled, "re_1", 3000, "succeeded")  # a duplicate, after the signal was sent
    dispute(fulfilled, "needs_response")
    assert send_owed() == 0
    assert (len(sent["refunded"]), len(sent["disputed"])) == (1, 1)


SIGNALS = {
    "refund": (order_refunded, lambda order: apply(order, "re_1", 3000, "succeeded")),
    "dispute": (order_disputed, lambda order: dispute(order, "needs_response")),
}


@pytest.mark.parametrize("kind", SIGNALS)
def test_a_failing_receiver_rolls_back_with_its_claim_and_the_signal_stays_owed_until_sent_once(
    kind, fulfilled
):
    signal, make_due = SIGNALS[kind]
    calls = []

    def receiver(sender, **kwargs):
        calls.append(kwargs["order_id"])
        Order.objects.filter(pk=kwargs["order_id"]).update(customer_email=f"try-{len(calls)}@example.com")
        if len(calls) < 3:
            raise RuntimeError("warehouse is down")

    signal.connect(receiver, dispatch_uid="test-flaky-receiver")
    try:
        make_due(fulfilled)
        assert [send_owed() for _ in range(4)] == [0, 0, 1, 0]
    finally:
        signal.disconnect(dispatch_uid="test-flaky-receiver")

    assert calls == [fulfilled.pk] * 3
    # The failed attempts' writes rolled back with their claims; the third committed once.
    assert Order.objects.get(pk=fulfilled.pk).customer_email == "try-3@example.com"


def test_a_dispute_that_moved_on_before_its_signal_was_sent_is_told_its_newest_status_once(fulfilled, sent):
    dispute(fulfilled, "needs_response")
    dispute(fulfilled, "lost")  # nothing sent in between

    assert send_owed() == 1
    assert [s["status"] for s in sent["disputed"]] == ["lost"]


def test_stripes_failure_reasons_are_stored_without_what_no_text_column_holds(fulfilled):
    recorded, _ = order_refund_request(
        order_id=fulfilled.pk, amount=100, requested_by=RefundRequester.COMMAND
    )
    refused, _ = order_refund_request(order_id=fulfilled.pk, amount=200, requested_by=RefundRequester.COMMAND)

    order_refund_record(
        refund_id=recorded.pk, stripe_refund_id="re_1", status="failed", failure_reason="declined\x00"
    )
    order_refund_refused(refund_id=refused.pk, message="No such charge: 'ch_\x00'")

    recorded.refresh_from_db()
    refused.refresh_from_db()
    assert (recorded.status, recorded.failure_reason) == ("failed", "declined")
    assert (refused.status, refused.failure_reason) == ("failed", "No such charge: 'ch_'")
