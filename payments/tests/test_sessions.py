"""One path from a Checkout Session to its order: the webhook, the success redirect, reconcile and replay
reach the same decision for the same session, and each answers it in its own terms."""

import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from conftest import run_worker_once
from orders.models import Order, OrderStatus, OrderTransition
from orders.services import order_create
from payments import audit, checkout, gateway, handlers, sessions
from payments.inbox import stripe_event_intake
from payments.models import StripeEvent
from payments.sessions import SessionDecision, checkout_session_apply
from payments.tests.events import checkout_session, deliver, emulator_order, event, open_order

# The webhook's event is processed inline, inside its request: these test the decision, not the queue.
pytestmark = [pytest.mark.django_db]

D = SessionDecision
# Each session as Stripe holds it, and what it means for the order that stores its id.
SESSIONS = {
    "this-orders-and-paid": D.PAID,
    "unpaid": D.PAYMENT_PENDING,
    "expired": D.EXPIRED,
    "open": D.OPEN,
    "another-orders": D.NOT_OURS,
    "amount-mismatch": D.AMOUNT_MISMATCH,
    "no-order-named": D.NOT_OURS,
}
# How each path answers a decision.
EVENT_STATUSES = {D.NOT_OURS: "ignored", D.AMOUNT_MISMATCH: "needs_review"}  # else processed
RETURNS = {
    D.PAID: (200, "paid"),
    D.PAYMENT_PENDING: (200, "processing"),
    D.EXPIRED: (200, "expired"),
    D.OPEN: (200, "open"),
    D.NOT_OURS: (409, "mismatch"),
    D.AMOUNT_MISMATCH: (409, "mismatch"),
}
# Reconcile is the audit of open orders, fixing: it answers with the disagreement it found.
RECONCILE_FINDINGS = {
    D.PAID: "paid, order not fulfilled",
    D.PAYMENT_PENDING: "delayed payment, order not told",
    D.EXPIRED: "session expired, order open",
    D.OPEN: None,
    D.NOT_OURS: "session names another order",
    D.AMOUNT_MISMATCH: "amounts differ",
}


@pytest.fixture
def decisions(monkeypatch) -> list[sessions.SessionApplied]:
    """Return every decision the one service makes while the test runs, whichever path asked."""
    made = []

    def recording(**kwargs):
        applied = checkout_session_apply(**kwargs)
        made.append(applied)
        return applied

    for caller in (handlers, checkout, audit):
        monkeypatch.setattr(caller, "checkout_session_apply", recording)
    return made


def _stray_session(product, **params) -> str:
    """Open a session on the emulator outside the checkout (no idempotency key), paid; return its id."""
    session = gateway.client().v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [{"price": product.stripe_price_id, "quantity": 1}],
            "success_url": "http://testserver/success?session_id={CHECKOUT_SESSION_ID}",
            "expires_at": int(time.time()) + 3600,
            **params,
        }
    )
    return session.id


def _prepare(kind: str, emulator, product) -> tuple[Order, str]:
    """Return an order and the id of the session it stores, left at the emulator as `kind` says."""
    order, session = emulator_order(product)
    if kind in ("this-orders-and-paid", "amount-mismatch"):
        emulator.pay(session.id, "card")
    if kind == "amount-mismatch":
        Order.objects.filter(pk=order.pk).update(amount_subtotal=1, amount_total=1)
    if kind == "unpaid":
        emulator.configure(async_delay=3600)  # the bank does not settle during the test
        emulator.pay(session.id, "delayed_success")
    if kind == "expired":
        emulator.expire(session.id)
    if kind in ("another-orders", "no-order-named"):
        if kind == "another-orders":
            other, _ = emulator_order(product)  # it holds a session of its own
            reference = str(other.pk)
            stray = _stray_session(product, client_reference_id=reference, metadata={"order_id": reference})
        else:
            stray = _stray_session(product)
        emulator.pay(stray, "card")
        Order.objects.filter(pk=order.pk).update(stripe_checkout_session_id=stray)
        return order, stray
    return order, session.id


def via_webhook(client, order: Order, session_id: str) -> str:
    session = gateway.client().v1.checkout.sessions.retrieve(session_id).to_dict()
    # Stripe sends no event with an open session; the state decides, whatever the event's type.
    kind = "checkout.session.expired" if session["status"] == "expired" else "checkout.session.completed"
    evt = event(kind, session)
    response = deliver(client, evt)
    assert response.status_code == 200
    run_worker_once()
    return StripeEvent.objects.get(stripe_id=evt["id"]).status


def via_replay(client, order: Order, session_id: str) -> str:
    session = gateway.client().v1.checkout.sessions.retrieve(session_id).to_dict()
    kind = "checkout.session.expired" if session["status"] == "expired" else "checkout.session.completed"
    evt = event(kind, session)
    stripe_event_intake(event=evt)  # stored, then the worker died before processing it
    call_command("replay_events", evt["id"], stdout=StringIO(), stderr=StringIO())
    return StripeEvent.objects.get(stripe_id=evt["id"]).status


def via_redirect(client, order: Order, session_id: str) -> tuple[int, str]:
    response = client.get(
        reverse("success"), {"session_id": session_id}, headers={"Accept": "application/json"}
    )
    return response.status_code, response.json()["outcome"]


def via_reconcile(client, order: Order, session_id: str) -> str:
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(hours=1))
    audited = audit.orders_audit(since=None, older_than=timedelta(minutes=15), fix=True, open_only=True)
    (result,) = (result for result in audited if result.order_id == order.pk)
    return result.findings[0].kind if result.findings else None


PATHS = {"webhook": via_webhook, "replay": via_replay, "redirect": via_redirect, "reconcile": via_reconcile}


def answer(path: str, decision: SessionDecision):
    """Return how the path answers the decision."""
    if path in ("webhook", "replay"):
        return EVENT_STATUSES.get(decision, "processed")
    return RETURNS[decision] if path == "redirect" else RECONCILE_FINDINGS[decision]


def effect(path: str, order: Order, decision: SessionDecision) -> tuple[list[tuple], bool]:
    """Return the transitions the decision makes (of every order) and the order's payment_pending flag."""
    moved = {D.PAID: "confirmed" if path == "redirect" else "fulfilled", D.EXPIRED: "expired"}.get(decision)
    return ([(order.pk, "pending", moved, path)] if moved else []), decision == D.PAYMENT_PENDING


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", SESSIONS)
def test_every_path_reaches_the_same_decision_for_the_same_session(
    client, emulator, synced_product, decisions, kind, path
):
    order, session_id = _prepare(kind, emulator, synced_product)
    decision = SESSIONS[kind]

    answered = PATHS[path](client, order, session_id)

    # Reconcile asks the service twice: what the session means (a dry run), then to apply it.
    assert {applied.decision for applied in decisions if applied.session_id == session_id} == {decision}
    assert answered == answer(path, decision)
    transitions = list(OrderTransition.objects.values_list("order_id", "from_status", "to_status", "source"))
    assert (transitions, Order.objects.get(pk=order.pk).payment_pending) == effect(path, order, decision)


# The ownership rule and the state mapping, one case at a time


def _session(order: Order | None, **fields) -> gateway.CheckoutSession:
    return gateway.CheckoutSession.from_payload(checkout_session(order, **fields))


def test_a_session_naming_its_order_only_by_client_reference_id_is_that_orders(product):
    order = open_order(product)
    payload = checkout_session(order)
    payload["metadata"] = {}

    applied = checkout_session_apply(session=gateway.CheckoutSession.from_payload(payload), source="webhook")

    assert (applied.decision, applied.order_id, applied.detail) == (D.PAID, order.pk, "fulfilled")


def test_a_session_whose_metadata_and_client_reference_id_disagree_is_nobodys(product):
    order, other = open_order(product), open_order(product)
    payload = checkout_session(order)
    payload["client_reference_id"] = str(other.pk)

    applied = checkout_session_apply(session=gateway.CheckoutSession.from_payload(payload), source="webhook")

    assert applied.decision == D.NOT_OURS
    assert applied.reason == (
        f"session not created by this project: its metadata names order '{order.pk}' "
        f"but its client_reference_id '{other.pk}'"
    )
    assert not OrderTransition.objects.exists()


def test_an_order_holding_no_session_yet_takes_the_session_that_names_it(product):
    order = order_create(lines=[(product, 1)])

    applied = checkout_session_apply(session=_session(order, session_id="cs_test_adopted"), source="webhook")

    order.refresh_from_db()
    assert (applied.decision, order.stripe_checkout_session_id, order.status) == (
        D.PAID,
        "cs_test_adopted",
        OrderStatus.FULFILLED,
    )


def test_a_session_stored_on_another_order_is_not_attached_to_the_order_it_names(product):
    holder = open_order(product)
    named = order_create(lines=[(product, 1)])  # holds no session yet
    session = _session(named, session_id=holder.stripe_checkout_session_id)

    applied = checkout_session_apply(session=session, source="webhook")

    named.refresh_from_db()
    assert applied.decision == D.NOT_OURS
    assert named.stripe_checkout_session_id is None
    assert not OrderTransition.objects.exists()


def test_a_delayed_payment_the_caller_knows_failed_fails_the_order(product):
    order = open_order(product)

    applied = checkout_session_apply(
        session=_session(order, payment_status="unpaid"), source="webhook", payment_failed=True
    )

    assert (applied.decision, applied.transition.won) == (D.PAYMENT_FAILED, True)
    assert Order.objects.get(pk=order.pk).status == OrderStatus.FAILED


def test_a_paid_session_is_paid_even_when_the_caller_says_the_payment_failed(product):
    order = open_order(product)

    applied = checkout_session_apply(session=_session(order), source="webhook", payment_failed=True)

    assert applied.decision == D.PAID
    assert Order.objects.get(pk=order.pk).status == OrderStatus.FULFILLED


def test_the_redirect_confirms_where_the_webhook_fulfils(product):
    order = open_order(product)

    applied = checkout_session_apply(
        session=_session(order), source="redirect", paid_transition=sessions.PaidTransition.CONFIRM
    )

    assert (applied.detail, applied.transition.from_status, applied.transition.status) == (
        "confirmed",
        "pending",
        "confirmed",
    )


def test_a_mismatch_says_which_transition_it_refused(product):
    order = open_order(product)

    applied = checkout_session_apply(
        session=_session(order, amount_total=1),
        source="redirect",
        paid_transition=sessions.PaidTransition.CONFIRM,
    )

    assert applied.decision == D.AMOUNT_MISMATCH
    assert applied.detail.endswith("; not confirmed, a person must look")
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING


@pytest.mark.parametrize(
    ("fields", "decision"),
    [
        ({}, D.PAID),
        ({"status": "expired", "payment_status": "unpaid"}, D.EXPIRED),
        ({"payment_status": "unpaid"}, D.PAYMENT_PENDING),
    ],
)
def test_a_dry_run_decides_and_changes_nothing(product, fields, decision):
    order = order_create(lines=[(product, 1)])  # no session stored: a dry run does not attach it

    applied = checkout_session_apply(session=_session(order, **fields), source="reconcile", dry_run=True)

    order.refresh_from_db()
    assert (applied.decision, applied.transition) == (decision, None)
    assert (order.status, order.payment_pending, order.stripe_checkout_session_id) == ("pending", False, None)
