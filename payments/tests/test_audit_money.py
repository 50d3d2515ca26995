"""`manage.py audit_payments` and money going back: refunds and disputes made or moved at Stripe whose
webhooks never reached the shop (the emulator has no webhook receiver here) are found, `--fix` records
them through the webhooks' own upsert, and the next audit is clean. Every Stripe call is paced."""

from collections import Counter
from datetime import timedelta

import pytest
import stripe
from django.utils import timezone

from orders import transitions
from orders.models import Order, OrderDispute, OrderRefund, OrderStatus, RefundRequester, RefundStatus
from payments import audit, gateway
from payments.refunds import stripe_dispute_apply, stripe_refund_apply
from payments.sessions import checkout_session_apply
from payments.tests.events import emulator_order
from payments.tests.test_audit_payments import run

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid(emulator, synced_product):
    """Return a factory of orders paid on the emulator and fulfilled, as their webhook leaves them."""

    def make(quantity: int = 1) -> Order:
        order, session = emulator_order(synced_product, quantity=quantity)
        emulator.pay(session.id, "card")
        session = gateway.checkout_session_retrieve(session_id=session.id)
        checkout_session_apply(session=session, source="webhook")
        order = Order.objects.get(pk=order.pk)
        assert order.status == OrderStatus.FULFILLED and order.stripe_payment_intent_id
        return order

    return make


def heard(refund_or_dispute: dict, **changes) -> None:
    """Record a refund or dispute as its webhook would have, then let Stripe move on without telling."""
    data = {**refund_or_dispute, **changes}
    if data["object"] == "refund":
        stripe_refund_apply(refund=gateway.StripeRefund.from_payload(data), source="webhook")
    else:
        stripe_dispute_apply(dispute=gateway.StripeDispute.from_payload(data), source="webhook")


def found(out: str, order: Order) -> list[str]:
    """Return the disagreement names the table shows for the order."""
    kinds = [kind.value for kind in audit.Disagreement]
    rows = [line for line in out.splitlines() if str(order.pk) in line]
    return sorted(kind for row in rows for kind in kinds if f"  {kind}  " in row)


def money(order: Order) -> tuple[str, int]:
    order = Order.objects.get(pk=order.pk)
    return order.status, order.amount_refunded


@pytest.fixture
def drifted(emulator, paid):
    """Orders whose money went back at Stripe while the shop heard nothing (or not the end of it)."""
    orders = {"agrees": paid()}
    # Refunded in full in the Dashboard; the webhooks were lost.
    orders["dashboard_full"] = paid()
    emulator.refund(payment_intent=orders["dashboard_full"].stripe_payment_intent_id)
    # Refunded in part in the Dashboard; the webhooks were lost.
    orders["dashboard_part"] = paid(quantity=2)
    emulator.refund(payment_intent=orders["dashboard_part"].stripe_payment_intent_id, amount=1000)
    # A pending refund, heard of; it settled at Stripe and that webhook was lost.
    orders["pending_settled"] = paid()
    emulator.configure(pending_next_refunds=1)
    pending = emulator.refund(payment_intent=orders["pending_settled"].stripe_payment_intent_id, amount=500)
    heard(pending)
    emulator.settle_refund(pending["id"], "succeeded")
    # A dispute opened, heard of; it closed lost and that webhook was lost.
    orders["dispute_lost"] = paid()
    dispute = emulator.open_dispute(payment_intent=orders["dispute_lost"].stripe_payment_intent_id)
    heard(dispute)
    emulator.close_dispute(dispute["id"], "lost")
    # A dispute opened, never heard of.
    orders["dispute_unknown"] = paid()
    emulator.open_dispute(payment_intent=orders["dispute_unknown"].stripe_payment_intent_id)
    # Every row agrees, but the refunded amount drifted (a hand edit, a recompute that never ran).
    orders["amount_drift"] = paid(quantity=2)
    refund = emulator.refund(payment_intent=orders["amount_drift"].stripe_payment_intent_id, amount=700)
    heard(refund)
    Order.objects.filter(pk=orders["amount_drift"].pk).update(amount_refunded=0)
    return orders


FOUND = {
    "dashboard_full": ["money returned, order not refunded", "refund unknown here"],
    "dashboard_part": ["refund unknown here", "refunded amount differs"],
    "pending_settled": ["refund status differs", "refunded amount differs"],
    "dispute_lost": ["dispute status differs", "money returned, order not refunded"],
    "dispute_unknown": ["dispute unknown here"],
    "amount_drift": ["refunded amount differs"],
}
AFTER_FIX = {
    "agrees": (OrderStatus.FULFILLED, 0),
    "dashboard_full": (OrderStatus.REFUNDED, 4999),
    "dashboard_part": (OrderStatus.FULFILLED, 1000),
    "pending_settled": (OrderStatus.FULFILLED, 500),
    "dispute_lost": (OrderStatus.REFUNDED, 4999),
    "dispute_unknown": (OrderStatus.FULFILLED, 0),
    "amount_drift": (OrderStatus.FULFILLED, 700),
}


def test_each_money_disagreement_is_reported_with_exit_1_and_nothing_changes(drifted):
    before = {name: money(order) for name, order in drifted.items()}

    code, out, _ = run()

    assert code == 1
    for name, order in drifted.items():
        assert found(out, order) == sorted(FOUND.get(name, [])), (name, out)
    assert f"{sum(map(len, FOUND.values()))} disagreements." in out
    assert {name: money(order) for name, order in drifted.items()} == before


def test_fix_records_what_stripe_holds_and_the_next_audit_is_clean(emulator, drifted):
    code, out, _ = run("--fix")

    assert code == 1
    count = sum(map(len, FOUND.values()))
    assert f"{count} disagreements, {count} fixed." in out
    assert {name: money(order) for name, order in drifted.items()} == AFTER_FIX
    dashboard = OrderRefund.objects.get(order=drifted["dashboard_full"])
    assert (dashboard.status, dashboard.requested_by) == (RefundStatus.SUCCEEDED, RefundRequester.DASHBOARD)
    assert OrderRefund.objects.get(order=drifted["pending_settled"]).status == RefundStatus.SUCCEEDED
    assert OrderDispute.objects.get(order=drifted["dispute_lost"]).status == "lost"
    assert OrderDispute.objects.get(order=drifted["dispute_unknown"]).status == "needs_response"
    refunded = drifted["dashboard_full"].transitions.filter(to_status=OrderStatus.REFUNDED).get()
    assert refunded.source == "reconcile"
    # The fix asked Stripe for no refund: each payment has the refunds the seeding made, no more.
    assert len(emulator.store.newest_first("refunds")) == 4

    code, out, _ = run()

    assert (code, out.splitlines()[-1][-len("0 disagreements.") :]) == (0, "0 disagreements.")


def test_an_order_refunded_while_stripe_returned_nothing_is_left_to_a_person(emulator, paid):
    order = paid()
    emulator.configure(pending_next_refunds=1)
    refund = emulator.refund(payment_intent=order.stripe_payment_intent_id)
    heard(refund, status="succeeded")  # told it succeeded (an event made by hand, a bug): refunded here
    emulator.settle_refund(refund["id"], "failed")
    assert money(order) == (OrderStatus.REFUNDED, 4999)

    code, out, _ = run()

    assert code == 1
    assert found(out, order) == ["refund status differs", "refunded, money not returned"]

    code, out, _ = run("--fix")

    assert code == 1
    assert OrderRefund.objects.get(order=order).status == RefundStatus.FAILED
    assert money(order) == (OrderStatus.REFUNDED, 0)  # the money is counted right; the state never moves back
    assert "not fixed: an order never moves back from refunded" in out

    code, out, _ = run("--fix")

    assert code == 1
    assert found(out, order) == ["refunded, money not returned"]


def test_a_refund_row_stripe_does_not_list_is_reported_and_left(paid):
    order = paid()
    fake = {
        "id": "re_not_at_stripe",
        "object": "refund",
        "amount": 100,
        "currency": "usd",
        "status": "succeeded",
    }
    heard({**fake, "payment_intent": order.stripe_payment_intent_id})

    code, out, _ = run("--fix")

    assert code == 1
    assert found(out, order) == ["refund or dispute unknown to Stripe", "refunded amount differs"]
    assert "re_not_at_stripe (succeeded here) is not among" in out
    assert OrderRefund.objects.get(order=order).status == RefundStatus.SUCCEEDED


def test_a_late_payment_refunded_in_the_dashboard_is_recorded_not_refunded_again(emulator, synced_product):
    order, session = emulator_order(synced_product)
    transitions.order_expire(order_id=order.pk, source="admin")
    emulator.pay(session.id, "card")
    payment_intent = gateway.checkout_session_retrieve(session_id=session.id).payment_intent_id
    emulator.refund(payment_intent=payment_intent)  # an operator refunded it at Stripe; no webhook

    code, out, _ = run()

    assert code == 1
    assert found(out, order) == ["paid, order closed", "refund unknown here", "refunded amount differs"]

    code, out, _ = run("--fix")

    assert code == 1
    assert money(order) == (OrderStatus.EXPIRED, 4999)
    assert len(gateway.refunds_list(payment_intent_id=payment_intent)) == 1
    assert run()[0] == 0


def _route(path: str) -> str:
    """Return a request's path without the session id: /v1/checkout/sessions[/expire]."""
    head, _, rest = path.partition("/cs_")
    return head + ("/expire" if rest.endswith("/expire") else "")


class CountingLimiter:
    """A rate limiter that never sleeps and counts the calls it let through."""

    def __init__(self):
        self.waits = 0

    def wait(self) -> None:
        self.waits += 1


def test_every_stripe_call_of_the_audit_and_its_repairs_is_paced(emulator, paid, synced_product, monkeypatch):
    requests = []
    send = stripe.RequestsClient.request

    def counted(self, method, url, headers, post_data=None):
        requests.append((method.upper(), url.split("?")[0].removeprefix(emulator.base_url)))
        return send(self, method, url, headers, post_data)

    monkeypatch.setattr(stripe.RequestsClient, "request", counted)
    emulator_order(synced_product)  # open and unpaid: its session is all the audit asks for
    refunded = paid()
    emulator.refund(payment_intent=refunded.stripe_payment_intent_id)
    closed_open, _ = emulator_order(synced_product)  # fix: expire its session at Stripe
    transitions.order_fail(order_id=closed_open.pk, source="admin", reason="by hand")
    late, session = emulator_order(synced_product)  # fix: refund the late payment at Stripe
    transitions.order_expire(order_id=late.pk, source="admin")
    emulator.pay(session.id, "card")
    requests.clear()
    limiter = CountingLimiter()

    results = list(audit.orders_audit(since=timezone.now() - timedelta(days=1), fix=True, limiter=limiter))

    # Fixed: the late payment, the open session, the unknown refund and the order's refunded state.
    assert sum(f.fixed for r in results for f in r.findings) == 4
    calls = Counter(f"{method} {_route(path)}" for method, path in requests)
    assert calls["POST /v1/refunds"] == 1  # the late payment's refund, made by its repair
    assert calls["POST /v1/checkout/sessions/expire"] == 1  # the closed order's open session
    assert calls["GET /v1/checkout/sessions"] == 4  # one per order
    # Refunds and disputes are asked of paid payments only: the fulfilled one and the late payment.
    assert calls["GET /v1/refunds"] == calls["GET /v1/disputes"] == 2
    assert limiter.waits == len(requests)
