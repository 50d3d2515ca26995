"""`manage.py reconcile_orders`: open orders brought in line with what their sessions say at Stripe."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from orders import transitions
from orders.models import Order, OrderStatus, OrderTransition, TransitionSource
from orders.services import order_create
from payments.audit import PAGE_SIZE
from payments.tests.events import emulator_order, new_id, open_order

pytestmark = pytest.mark.django_db


def reconcile(*args: str, verbosity: int = 1) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("reconcile_orders", *args, stdout=out, stderr=err, verbosity=verbosity)
    return out.getvalue(), err.getvalue()


def age(order: Order, minutes: int = 30) -> Order:
    """Make the order look created `minutes` ago."""
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(minutes=minutes))
    return order


def row(out: str, order: Order) -> str:
    """Return the order's row of the table of disagreements ('' when it has none)."""
    return next((line for line in out.splitlines() if line.startswith(str(order.pk))), "")


def status(order: Order) -> str:
    return Order.objects.get(pk=order.pk).status


def test_paid_expired_and_open_sessions_are_applied(emulator, synced_product):
    # Every webhook was lost: the emulator has no endpoint to deliver to.
    paid_order, paid = emulator_order(synced_product)
    expired_order, expired = emulator_order(synced_product)
    open_session_order, _ = emulator_order(synced_product)
    emulator.pay(paid.id, "card", email="late@example.com")
    emulator.expire(expired.id)
    for order in (paid_order, expired_order, open_session_order):
        age(order)

    out, err = reconcile()

    assert (status(paid_order), status(expired_order), status(open_session_order)) == (
        OrderStatus.FULFILLED,
        OrderStatus.EXPIRED,
        OrderStatus.PENDING,
    )
    fulfilled = Order.objects.get(pk=paid_order.pk)
    assert fulfilled.customer_email == "late@example.com"
    assert fulfilled.stripe_payment_intent_id
    assert set(OrderTransition.objects.values_list("source", flat=True)) == {TransitionSource.RECONCILE}
    assert "paid, order not fulfilled" in row(out, paid_order)
    assert "fixed: applied it, now fulfilled" in row(out, paid_order)
    assert "fixed: applied it, now expired" in row(out, expired_order)
    assert row(out, open_session_order) == ""
    assert "Checked 3 open orders older than 15m: 2 disagreements, 2 fixed; 0 owed signals sent." in out
    assert err == "... 3 of 3 orders checked\n"  # progress only


def test_a_confirmed_order_whose_session_is_paid_is_fulfilled(emulator, synced_product):
    order, session = emulator_order(synced_product)
    emulator.pay(session.id, "card")
    transitions.order_confirm(order_id=order.pk)
    age(order)

    reconcile()

    steps = list(OrderTransition.objects.filter(order=order).values_list("to_status", "source"))
    assert steps == [("confirmed", "redirect"), ("fulfilled", "reconcile")]


def test_orders_younger_than_the_age_are_left_alone(emulator, synced_product):
    order, session = emulator_order(synced_product)
    emulator.pay(session.id, "card")
    age(order, minutes=10)

    out, _ = reconcile("--older-than", "15m")

    assert status(order) == OrderStatus.PENDING
    assert "Checked 0 open orders older than 15m" in out

    reconcile("--older-than", "5m")

    assert status(order) == OrderStatus.FULFILLED


def test_delayed_payment_still_processing_is_marked_pending_and_left_open(emulator, synced_product):
    emulator.configure(async_delay=3600)
    order, session = emulator_order(synced_product)
    emulator.pay(session.id, "delayed_success")
    age(order)

    out, _ = reconcile()

    order.refresh_from_db()
    assert (order.status, order.payment_pending) == (OrderStatus.PENDING, True)
    assert "fixed: payment unpaid: marked as pending" in row(out, order)


def test_orders_that_never_got_a_session_are_reported_and_left(emulator, product):
    order = age(order_create(lines=[(product, 1)]))

    out, _ = reconcile(verbosity=2)

    assert status(order) == OrderStatus.PENDING
    assert "no session" in row(out, order)
    assert "not fixed: left open: it may be payable elsewhere until" in row(out, order)


def test_session_stripe_does_not_know_is_reported(emulator, product):
    order = age(open_order(product, session_id=new_id("cs_test_")))

    out, _ = reconcile()

    assert status(order) == OrderStatus.PENDING
    assert "session unknown to Stripe" in row(out, order)


def test_paid_session_whose_amount_differs_is_not_fulfilled(emulator, synced_product):
    order, session = emulator_order(synced_product)
    emulator.pay(session.id, "card")
    Order.objects.filter(pk=order.pk).update(amount_subtotal=1, amount_total=1)
    age(order)

    out, _ = reconcile()

    assert status(order) == OrderStatus.PENDING
    assert (
        f"amounts differ  session {session.id}'s items come to 49.99 USD, order {order.pk}'s to 0.01 USD"
        in row(out, order)
    )
    assert "1 disagreement, 0 fixed" in out


def test_dry_run_says_what_would_change_and_changes_nothing(emulator, synced_product):
    paid_order, paid = emulator_order(synced_product)
    expired_order, expired = emulator_order(synced_product)
    emulator.pay(paid.id, "card")
    emulator.expire(expired.id)
    age(paid_order)
    age(expired_order)

    out, _ = reconcile("--dry-run")

    assert "the paid session was never applied" in row(out, paid_order)
    assert "the order still waits for a payment" in row(out, expired_order)
    assert "2 disagreements, none fixed; 0 owed signals would be sent (dry run)." in out
    assert (status(paid_order), status(expired_order)) == (OrderStatus.PENDING, OrderStatus.PENDING)
    assert not OrderTransition.objects.exists()


def test_an_order_a_webhook_moves_meanwhile_is_a_no_op(emulator, synced_product):
    order, session = emulator_order(synced_product)
    emulator.pay(session.id, "card")
    age(order)
    transitions.order_fulfill(order_id=order.pk, source=TransitionSource.WEBHOOK)

    out, _ = reconcile()

    # Fulfilled orders are not open, so reconcile does not even look at them.
    assert "Checked 0 open orders" in out
    assert OrderTransition.objects.filter(order=order).count() == 1


def test_long_runs_show_progress_and_walk_every_page(emulator, product):
    count = PAGE_SIZE + 5
    Order.objects.bulk_create(
        Order(amount_subtotal=4999, amount_total=4999, currency="usd") for _ in range(count)
    )
    # One timestamp for all: pages must still advance past ties.
    Order.objects.update(created_at=timezone.now() - timedelta(hours=1))

    out, err = reconcile()

    assert f"... 100 of {count} orders checked" in err
    assert f"... 200 of {count} orders checked" in err
    assert f"Checked {count} open orders older than 15m: {count} disagreements, 0 fixed" in out


@pytest.mark.parametrize("value", ["15", "fifteen minutes", "-5m", "1y"])
def test_unreadable_age_is_refused(value):
    with pytest.raises(CommandError, match=r"--older-than: .* is not an age"):
        reconcile(f"--older-than={value}")


def test_stripe_not_configured_is_refused_with_the_fix_and_no_advice_to_run_it_again(settings, product):
    order_create(lines=[(product, 1)])
    settings.STRIPE_SECRET_KEY = ""

    with pytest.raises(CommandError, match="Stripe is not configured") as refused:
        reconcile()

    assert "run it again" not in str(refused.value)
    assert "before that" not in str(refused.value)


def test_stripe_unreachable_stops_with_an_error(settings, product):
    settings.STRIPE_SECRET_KEY = "sk_test_unreachable"
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    age(open_order(product))

    with pytest.raises(CommandError, match=r"(?s)Stripe is unavailable.*0 orders checked before that"):
        reconcile()


def test_owed_fulfillment_signals_are_sent_once(emulator, product, django_capture_on_commit_callbacks):
    from orders.signals import order_fulfilled

    order = order_create(lines=[(product, 1)])
    with django_capture_on_commit_callbacks(execute=False):  # the process dies after its commit
        transitions.order_fulfill(order_id=order.pk, source=TransitionSource.WEBHOOK, stripe_event_id="evt_x")
    Order.objects.filter(pk=order.pk).update(fulfilled_at=timezone.now() - timedelta(minutes=30))
    received = []
    order_fulfilled.connect(
        lambda sender, **kw: received.append(kw["order_id"]), weak=False, dispatch_uid="t-owed"
    )
    try:
        dry_out, _ = reconcile("--dry-run")
        out, _ = reconcile()
        again, _ = reconcile()
    finally:
        order_fulfilled.disconnect(dispatch_uid="t-owed")

    assert "1 owed signal would be sent (dry run)" in dry_out
    assert "1 owed signal sent" in out
    assert "0 owed signals sent" in again
    assert received == [order.pk]
