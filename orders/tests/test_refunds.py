"""The refund and dispute rows, the recomputed amount, the refund transition and their signals."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from orders import transitions
from orders.exceptions import RefundRefused
from orders.models import Order, OrderRefund, OrderStatus, OrderTransition, RefundRequester
from orders.refunds import (
    order_dispute_apply,
    order_refund_apply,
    order_refund_request,
)
from orders.services import order_create
from orders.signals import (
    order_disputed,
    order_disputed_signal_send,
    order_refunded,
    order_refunded_signal_send,
    signals_resend,
)
from orders.tasks import order_disputed_signal_task, order_refunded_signal_task

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fulfilled(product, worker_run) -> Order:
    order = order_create(product=product, quantity=2)  # 99.98 USD
    transitions.order_fulfill(order_id=order.pk, source="webhook", payment_intent_id="pi_test_refunds")
    assert worker_run() == 1  # its fulfilment signal: the queue is empty when the test starts
    return Order.objects.get(pk=order.pk)


@pytest.fixture
def sent():
    """Collect the refund and dispute signals (sent by their tasks: run them with `worker_run`)."""
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


def test_partial_refunds_that_add_up_to_the_total_refund_the_order_once(fulfilled, sent, worker_run):
    apply(fulfilled, "re_1", 4000, "succeeded")
    assert state(fulfilled) == (OrderStatus.FULFILLED, 4000)
    worker_run()

    applied = apply(fulfilled, "re_2", 5998, "succeeded")
    worker_run()

    assert applied.totals.refunded_now and applied.totals.amount_refunded == applied.totals.amount_total
    assert state(fulfilled) == (OrderStatus.REFUNDED, 9998)
    assert OrderTransition.objects.filter(order=fulfilled, to_status=OrderStatus.REFUNDED).count() == 1
    assert [(s["amount"], s["full"]) for s in sent["refunded"]] == [(4000, False), (5998, True)]


def test_a_refund_applied_many_times_counts_once(fulfilled, sent, worker_run):
    for _ in range(3):
        apply(fulfilled, "re_1", 3000, "succeeded")
    worker_run()

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
    order = order_create(product=product, quantity=1)
    transitions.order_confirm(order_id=order.pk)

    apply(order, "re_1", order.amount_total, "succeeded")

    assert state(order) == (OrderStatus.CONFIRMED, order.amount_total)


def test_a_lost_dispute_counts_as_returned_and_a_full_loss_refunds_the_order(fulfilled, sent, worker_run):
    dispute(fulfilled, "needs_response")
    assert state(fulfilled) == (OrderStatus.FULFILLED, 0)
    worker_run()

    dispute(fulfilled, "lost")
    worker_run()

    assert state(fulfilled) == (OrderStatus.REFUNDED, 9998)
    assert [s["status"] for s in sent["disputed"]] == ["needs_response", "lost"]


def test_a_won_dispute_returns_nothing(fulfilled):
    dispute(fulfilled, "needs_response")
    dispute(fulfilled, "under_review")

    dispute(fulfilled, "won")

    assert state(fulfilled) == (OrderStatus.FULFILLED, 0)


def test_reordered_and_duplicated_dispute_events_keep_the_final_status(fulfilled, sent, worker_run):
    dispute(fulfilled, "lost", amount=5000)  # charge.dispute.closed first
    worker_run()
    dispute(fulfilled, "needs_response", amount=5000)  # charge.dispute.created, late
    dispute(fulfilled, "under_review", amount=5000)  # charge.dispute.updated, late
    dispute(fulfilled, "lost", amount=5000)  # closed again, duplicated
    worker_run()

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
    order = order_create(product=product, quantity=1)

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
    order = order_create(product=product, quantity=1)
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


def test_the_refund_signal_is_sent_once_however_often_it_is_asked_for(fulfilled, sent, worker_run):
    applied = apply(fulfilled, "re_1", 3000, "succeeded")
    assert worker_run() == 1

    again = [order_refunded_signal_send(refund_pk=applied.row.pk) for _ in range(2)]
    resent = signals_resend(older_than=timedelta(0))

    assert (again, resent) == ([False, False], 0)
    assert len(sent["refunded"]) == 1


def test_an_owed_refund_signal_is_sent_by_the_resend(fulfilled, sent):
    applied = apply(fulfilled, "re_1", 3000, "succeeded")  # no worker runs its task
    assert sent["refunded"] == []

    assert signals_resend(older_than=timedelta(0)) == 1
    assert signals_resend(older_than=timedelta(0)) == 0
    assert [s["refund_id"] for s in sent["refunded"]] == ["re_1"]
    assert OrderRefund.objects.get(pk=applied.row.pk).signalled_at is not None


def test_a_pending_refund_is_never_signalled(fulfilled, sent):
    applied = apply(fulfilled, "re_1", 3000, "pending")

    assert order_refunded_signal_send(refund_pk=applied.row.pk) is False
    assert sent["refunded"] == []


def test_the_dispute_signal_is_sent_once_per_status(fulfilled, sent, worker_run):
    applied = dispute(fulfilled, "needs_response")
    assert worker_run() == 1

    assert order_disputed_signal_send(dispute_pk=applied.row.pk) is False
    assert signals_resend(older_than=timedelta(0)) == 0
    assert [s["status"] for s in sent["disputed"]] == ["needs_response"]


def queued(task) -> list[dict]:
    """Return the kwargs of the task's queued runs, oldest first."""
    rows = DBTaskResult.objects.filter(task_path=task.module_path).order_by("enqueued_at")
    return [row.args_kwargs["kwargs"] for row in rows]


def test_the_refund_signal_task_commits_with_the_refund_or_not_at_all(fulfilled):
    with pytest.raises(RuntimeError), transaction.atomic():
        applied = apply(fulfilled, "re_1", 3000, "succeeded")
        assert queued(order_refunded_signal_task) == [{"refund_id": str(applied.row.pk)}]
        raise RuntimeError("the event's transaction fails after the refund")

    assert not OrderRefund.objects.exists()
    assert queued(order_refunded_signal_task) == []

    applied = apply(fulfilled, "re_1", 3000, "succeeded")
    assert queued(order_refunded_signal_task) == [{"refund_id": str(applied.row.pk)}]


def test_the_dispute_signal_task_commits_with_the_status_reached_or_not_at_all(fulfilled):
    with pytest.raises(RuntimeError), transaction.atomic():
        applied = dispute(fulfilled, "needs_response")
        assert queued(order_disputed_signal_task) == [
            {"dispute_id": applied.row.pk, "status": "needs_response"}
        ]
        raise RuntimeError("the event's transaction fails after the dispute")

    assert queued(order_disputed_signal_task) == []

    applied = dispute(fulfilled, "needs_response")
    assert queued(order_disputed_signal_task) == [{"dispute_id": applied.row.pk, "status": "needs_response"}]


def test_only_a_change_that_makes_a_signal_due_queues_its_task(fulfilled, sent, worker_run):
    apply(fulfilled, "re_1", 3000, "pending")
    assert queued(order_refunded_signal_task) == []

    apply(fulfilled, "re_1", 3000, "succeeded")
    dispute(fulfilled, "needs_response")
    assert worker_run() == 2

    apply(fulfilled, "re_1", 3000, "succeeded")  # a duplicate, after the signal was sent
    dispute(fulfilled, "needs_response")
    assert worker_run() == 0
    assert (len(sent["refunded"]), len(sent["disputed"])) == (1, 1)


SIGNALS = {
    "refund": (order_refunded, lambda order: apply(order, "re_1", 3000, "succeeded")),
    "dispute": (order_disputed, lambda order: dispute(order, "needs_response")),
}


@pytest.mark.parametrize("kind", SIGNALS)
def test_a_failing_receiver_is_retried_with_backoff_until_it_succeeds_once(
    kind, fulfilled, worker_run, settings
):
    settings.TASK_RETRY_BASE_SECONDS = 0  # every retry due at once, so one batch of the worker runs them
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
        assert worker_run() == 3
    finally:
        signal.disconnect(dispatch_uid="test-flaky-receiver")

    assert calls == [fulfilled.pk] * 3
    # The failed attempts' writes rolled back with their claims; the third committed once.
    assert Order.objects.get(pk=fulfilled.pk).customer_email == "try-3@example.com"
    runs = DBTaskResult.objects.exclude(task_path="orders.tasks.order_fulfillment_signal_task")
    assert sorted((row.args_kwargs["kwargs"].get("attempt", 1), row.status) for row in runs) == [
        (1, TaskResultStatus.FAILED),
        (2, TaskResultStatus.FAILED),
        (3, TaskResultStatus.SUCCESSFUL),
    ]


@pytest.mark.parametrize("kind", SIGNALS)
def test_a_signal_whose_attempts_ran_out_stays_owed_for_the_resend(
    kind, fulfilled, sent, worker_run, settings
):
    settings.TASK_RETRY_BASE_SECONDS = 0
    settings.SIGNAL_MAX_ATTEMPTS = 2
    signal, make_due = SIGNALS[kind]

    def receiver(sender, **kwargs):
        raise RuntimeError("warehouse is down")

    signal.connect(receiver, dispatch_uid="test-down-receiver")
    try:
        make_due(fulfilled)
        assert worker_run() == 2
    finally:
        signal.disconnect(dispatch_uid="test-down-receiver")

    sent["refunded"].clear()  # the attempts' calls, rolled back with their claims
    sent["disputed"].clear()
    assert signals_resend(older_than=timedelta(0)) == 1
    assert len(sent["refunded"] + sent["disputed"]) == 1
    assert signals_resend(older_than=timedelta(0)) == 0


def test_a_dispute_that_moved_on_before_its_task_ran_is_told_its_newest_status_once(
    fulfilled, sent, worker_run
):
    dispute(fulfilled, "needs_response")
    dispute(fulfilled, "lost")  # no worker ran in between

    assert [kwargs["status"] for kwargs in queued(order_disputed_signal_task)] == ["needs_response", "lost"]
    assert worker_run() == 2
    assert [s["status"] for s in sent["disputed"]] == ["lost"]


def test_a_refund_signal_retry_that_finds_it_sent_sends_nothing(fulfilled, sent, worker_run):
    applied = apply(fulfilled, "re_1", 3000, "succeeded")
    assert signals_resend(older_than=timedelta(0)) == 1  # reconcile got there first

    DBTaskResult.objects.filter(status=TaskResultStatus.READY).update(run_after=timezone.now())
    assert worker_run() == 1
    assert [s["refund_id"] for s in sent["refunded"]] == ["re_1"]
    assert OrderRefund.objects.get(pk=applied.row.pk).signalled_at is not None
