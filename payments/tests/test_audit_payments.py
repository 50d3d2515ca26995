"""`manage.py audit_payments`: every kind of disagreement seeded into the database and the emulator is
found, `--fix` repairs what is safe, and the exit status follows (0 clean, 1 findings)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from orders import transitions
from orders.models import Order, OrderStatus
from payments import audit, gateway
from payments.tests.events import emulator_order, open_order

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[int, str, str]:
    """Run the command; return the exit status manage.py would give (a CommandError's), stdout, stderr."""
    out, err = StringIO(), StringIO()
    try:
        call_command(
            "audit_payments", "--older-than", "0s", "--max-rate", "1000", *args, stdout=out, stderr=err
        )
    except CommandError as exc:
        err.write(str(exc))
        return exc.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def aged(order: Order, **delta: float) -> Order:
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(**delta))
    return order


def status(order: Order) -> str:
    return Order.objects.get(pk=order.pk).status


def refunds_at_stripe(order: Order) -> int:
    session = gateway.checkout_session_retrieve(session_id=order.stripe_checkout_session_id)
    return len(gateway.refunds_list(payment_intent_id=session.payment_intent_id))


@pytest.fixture
def seeded(emulator, synced_product):
    """Orders that agree with Stripe, and one of each disagreement; no webhook reaches the project."""
    orders = {}
    # Agreeing: paid and fulfilled; open and pending; expired on both sides.
    orders["paid_ok"], session = emulator_order(synced_product)
    emulator.pay(session.id, "card")
    transitions.order_fulfill(order_id=orders["paid_ok"].pk, source="webhook")
    orders["open_ok"], _ = emulator_order(synced_product)
    orders["expired_ok"], session = emulator_order(synced_product)
    emulator.expire(session.id)
    transitions.order_expire(order_id=orders["expired_ok"].pk, source="webhook")

    # The webhook of a payment was lost.
    orders["paid_pending"], session = emulator_order(synced_product)
    emulator.pay(session.id, "card")
    # Closed here without closing the session (as the admin used to), then paid by the buyer.
    orders["late"], session = emulator_order(synced_product)
    transitions.order_expire(order_id=orders["late"].pk, source="admin")
    emulator.pay(session.id, "card")
    # Closed here, session still open: the buyer can still pay.
    orders["closed_open"], _ = emulator_order(synced_product)
    transitions.order_fail(order_id=orders["closed_open"].pk, source="admin", reason="by hand")
    # Fulfilled by hand while unpaid (as the admin's old "Fulfill" did).
    orders["fulfilled_unpaid"], _ = emulator_order(synced_product)
    transitions.order_fulfill(order_id=orders["fulfilled_unpaid"].pk, source="admin")
    # The expired webhook was lost.
    orders["open_expired"], session = emulator_order(synced_product)
    emulator.expire(session.id)
    # The order's total was changed after the session was made.
    orders["amount"], _ = emulator_order(synced_product)
    Order.objects.filter(pk=orders["amount"].pk).update(amount_subtotal=1, amount_total=1)
    # Stripe no longer knows these sessions: one could still be payable elsewhere, one cannot.
    orders["stranded_young"] = aged(open_order(synced_product, session_id="cs_test_gone_young"), hours=2)
    orders["stranded_old"] = aged(open_order(synced_product, session_id="cs_test_gone_old"), hours=25)
    return orders


FOUND = {
    "paid_pending": "paid, order not fulfilled",
    "late": "paid, order closed",
    "closed_open": "closed, session still open",
    "fulfilled_unpaid": "fulfilled, session not paid",
    "open_expired": "session expired, order open",
    "amount": "amounts differ",
    "stranded_young": "session unknown to Stripe",
    "stranded_old": "session unknown to Stripe",
}


def test_each_disagreement_is_found_and_nothing_changes_without_fix(seeded):
    before = {name: status(order) for name, order in seeded.items()}

    code, out, _ = run()

    assert code == 1
    lines = out.splitlines()
    assert lines[0].split() == ["order", "status", "Stripe", "disagreement", "detail"]
    for name, order in seeded.items():
        line = next((line for line in lines if str(order.pk) in line), None)
        if name in FOUND:
            assert line is not None and FOUND[name] in line, (name, out)
        else:
            assert line is None, (name, line)
    assert f"Audited {len(seeded)} orders created since" in out
    assert f"{len(FOUND)} disagreements." in out
    assert {name: status(order) for name, order in seeded.items()} == before
    assert refunds_at_stripe(seeded["late"]) == 0


def test_fix_repairs_what_is_safe_and_the_next_run_reports_only_what_needs_a_person(emulator, seeded):
    code, out, _ = run("--fix")

    assert code == 1
    assert f"{len(FOUND)} disagreements, 5 fixed." in out
    assert status(seeded["paid_pending"]) == OrderStatus.FULFILLED
    assert status(seeded["open_expired"]) == OrderStatus.EXPIRED
    assert status(seeded["stranded_old"]) == OrderStatus.EXPIRED
    assert status(seeded["stranded_young"]) == OrderStatus.PENDING
    closed_session = seeded["closed_open"].stripe_checkout_session_id
    assert gateway.checkout_session_retrieve(session_id=closed_session).status == "expired"
    late = Order.objects.get(pk=seeded["late"].pk)
    assert (late.status, late.needs_attention) == (OrderStatus.EXPIRED, True)
    assert refunds_at_stripe(late) == 1
    # Left for a person: the order was fulfilled unpaid, and the amounts differ.
    assert status(seeded["fulfilled_unpaid"]) == OrderStatus.FULFILLED

    code, out, _ = run("--fix")

    assert code == 1
    assert "3 disagreements, 0 fixed." in out
    assert refunds_at_stripe(late) == 1
    for name in ("fulfilled_unpaid", "amount", "stranded_young"):
        assert str(seeded[name].pk) in out


def test_a_clean_book_exits_0(emulator, synced_product):
    order, session = emulator_order(synced_product)
    emulator.pay(session.id, "card")
    transitions.order_fulfill(order_id=order.pk, source="webhook")
    emulator_order(synced_product)

    code, out, _ = run()

    assert code == 0
    assert out.startswith("Audited 2 orders created since ")
    assert out.endswith("Z: 0 disagreements.\n")
    assert "disagreement  " not in out  # no table


def test_orders_outside_the_window_are_not_audited(emulator, synced_product):
    order, session = emulator_order(synced_product)
    emulator.pay(session.id, "card")
    aged(order, days=4)

    code, out, _ = run("--since", "3d")

    assert code == 0
    assert "Audited 0 orders" in out


def test_the_walk_pages_on_the_primary_key_and_sees_every_order_once(emulator, synced_product, monkeypatch):
    monkeypatch.setattr(audit, "PAGE_SIZE", 2)
    made = {emulator_order(synced_product)[0].pk for _ in range(5)}

    seen = [result.order_id for result in audit.orders_audit(since=timezone.now() - timedelta(days=1))]

    assert sorted(seen) == sorted(made)


def test_progress_is_plain_lines_when_not_on_a_terminal(emulator, synced_product):
    emulator_order(synced_product)

    code, _, err = run()

    assert code == 0
    assert "... 1 of 1 orders audited" in err


def test_a_bad_option_is_refused_with_a_message():
    code, _, err = run("--max-rate", "0")

    assert code == 1
    assert "--max-rate must be a positive number" in err


def test_the_rate_limiter_spaces_calls():
    clock = [100.0]
    slept = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        clock[0] += seconds

    limiter = audit.RateLimiter(4, clock=lambda: clock[0], sleep=sleep)
    for _ in range(3):
        limiter.wait()
    clock[0] += 1.0  # idle for a second: the next call goes at once
    limiter.wait()

    assert slept == [0.25, 0.25]
