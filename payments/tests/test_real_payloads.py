"""Payloads shaped like the ones Stripe sends, signed and posted as Stripe posts them, on both databases.

Each is stored (the body exactly as signed) and ends where the money says: a NUL where JSON allows one,
an e-mail longer than its column, an old API version's charge.refunded, a live event on a test key, a
zero-decimal currency, a 300 KB event.
"""

import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from orders import transitions
from orders.models import Order, OrderStatus, Product
from orders.services import order_create
from payments.models import EventStatus, StripeEvent
from payments.tests import events
from payments.tests.conftest import WEBHOOK_SECRET
from payments.tests.events import event, new_id, open_order, receive, session_event

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _signed(settings):
    settings.STRIPE_WEBHOOK_SECRETS = [WEBHOOK_SECRET]


@pytest.fixture
def deliver(client, worker_run):
    """Return a deliverer of a signed body (an event, or bytes as Stripe wrote them), then run the worker."""

    def deliver(evt: dict | bytes):
        response = events.deliver(client, evt)
        worker_run()
        return response

    return deliver


def stored(event_id: str) -> StripeEvent:
    return StripeEvent.objects.get(stripe_id=event_id)


def completed_with(order: Order, **session_fields) -> dict:
    evt = session_event("checkout.session.completed", order)
    evt["data"]["object"].update(session_fields)
    return evt


def test_a_nul_in_the_buyers_name_is_stored_exactly_as_signed_and_fulfils_the_order(deliver, product):
    order = open_order(product)
    evt = completed_with(order, customer_details={"email": "buyer@example.com", "name": "Ada\u0000Lovelace"})
    body = events.body(evt)
    assert b"\\u0000" in body

    response = deliver(body)

    assert response.status_code == 200
    row = stored(evt["id"])
    assert row.payload_text == body.decode()
    # jsonb cannot hold a NUL, so PostgreSQL keeps no queryable copy; SQLite's JSON is text and can.
    assert (row.payload is None) == (connection.vendor == "postgresql")
    assert row.status == EventStatus.PROCESSED
    order.refresh_from_db()
    assert (order.status, order.customer_email) == (OrderStatus.FULFILLED, "buyer@example.com")


def test_nuls_in_the_email_metadata_and_keys_still_fulfil_the_order(deliver, product):
    order = open_order(product)
    evt = completed_with(
        order,
        customer_details={"email": "bu\u0000yer@example.com", "name": None},
        custom_fields=[{"key": "gift\u0000note", "text": {"value": "\u0000"}}],
    )
    evt["data"]["object"]["metadata"]["note\u0000"] = "\u0000\u0000"

    assert deliver(evt).status_code == 200

    order.refresh_from_db()
    assert stored(evt["id"]).status == EventStatus.PROCESSED
    # An address with a NUL is not one anybody can write to: it is left out, the order still fulfilled.
    assert (order.status, order.customer_email) == (OrderStatus.FULFILLED, "")


def test_an_email_longer_than_its_column_is_left_out_and_the_order_fulfilled(deliver, product):
    order = open_order(product)
    long_email = "a" * 250 + "@example.com"
    evt = completed_with(order, customer_details={"email": long_email, "name": "A"})

    assert deliver(evt).status_code == 200

    order.refresh_from_db()
    assert stored(evt["id"]).status == EventStatus.PROCESSED
    assert (order.status, order.customer_email) == (OrderStatus.FULFILLED, "")


def _fulfilled(product: Product, *, quantity: int = 1) -> Order:
    order = order_create(lines=[(product, quantity)])
    transitions.order_fulfill(order_id=order.pk, source="webhook", payment_intent_id=new_id("pi_"))
    return Order.objects.get(pk=order.pk)


def _charge_refunded_2020(order: Order, *refunds: dict) -> dict:
    """Return charge.refunded as API version 2020-08-27 sends it: refunds embedded, with no payment_intent."""
    charge_id = new_id("ch_")
    evt = event(
        "charge.refunded",
        {
            "id": charge_id,
            "object": "charge",
            "amount": order.amount_total,
            "amount_refunded": sum(refund["amount"] for refund in refunds),
            "currency": order.currency,
            "payment_intent": order.stripe_payment_intent_id,
            "refunded": True,
            "refunds": {
                "object": "list",
                "data": [{"object": "refund", "charge": charge_id, **refund} for refund in refunds],
                "has_more": False,
                "total_count": len(refunds),
                "url": f"/v1/charges/{charge_id}/refunds",
            },
        },
    )
    evt["api_version"] = "2020-08-27"
    return evt


def test_old_api_charge_refunded_finds_embedded_refunds_through_the_charge(deliver, product):
    order = _fulfilled(product)
    refund = {"id": new_id("re_"), "amount": order.amount_total, "currency": "usd", "status": "succeeded"}
    evt = _charge_refunded_2020(order, refund)

    assert deliver(evt).status_code == 200

    order.refresh_from_db()
    assert stored(evt["id"]).status == EventStatus.PROCESSED
    assert (order.status, order.amount_refunded) == (OrderStatus.REFUNDED, order.amount_total)
    assert order.refunds.get().stripe_refund_id == refund["id"]


def test_charge_refunded_none_of_whose_refunds_apply_is_not_reported_processed(deliver, product, emulator):
    order = _fulfilled(product)
    # A refund naming another payment intent than its charge's: not this order's money.
    stray = {
        "id": new_id("re_"),
        "amount": 100,
        "currency": "usd",
        "status": "succeeded",
        "payment_intent": "pi_x",
    }
    evt = _charge_refunded_2020(order, stray)

    assert deliver(evt).status_code == 200

    row = stored(evt["id"])
    assert row.status == EventStatus.NEEDS_REVIEW
    assert "pi_x" in row.outcome
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (OrderStatus.FULFILLED, 0)


@pytest.mark.parametrize(
    ("key", "livemode"), [("sk_test_abc", True), ("sk_live_abc", False), ("rk_live_x", False)]
)
def test_an_event_of_the_other_mode_is_stored_and_ignored_touching_no_order(
    deliver, product, settings, key, livemode
):
    settings.STRIPE_SECRET_KEY = key
    order = open_order(product)
    evt = session_event("checkout.session.completed", order)
    evt["livemode"] = livemode

    assert deliver(evt).status_code == 200

    row = stored(evt["id"])
    assert (row.status, row.order_id) == (EventStatus.IGNORED, None)
    assert "mode" in row.outcome
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING


def test_an_event_of_the_keys_own_mode_is_processed(deliver, product, settings):
    settings.STRIPE_SECRET_KEY = "sk_live_abc"
    order = open_order(product)
    evt = session_event("checkout.session.completed", order)
    evt["livemode"] = True

    deliver(evt)

    assert stored(evt["id"]).status == EventStatus.PROCESSED


def test_a_zero_decimal_currency_is_fulfilled_and_refunded_in_whole_yen(deliver, db):
    yen = Product.objects.create(sku="yen", name="Yen item", unit_amount=5000, currency="jpy")
    order = open_order(yen, quantity=2)
    completed = session_event("checkout.session.completed", order)
    assert completed["data"]["object"]["amount_total"] == 10000

    deliver(completed)
    order.refresh_from_db()
    refund = {"id": new_id("re_"), "amount": 10000, "currency": "jpy", "status": "succeeded"}
    deliver(_charge_refunded_2020(order, refund))

    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (OrderStatus.REFUNDED, 10000)


def test_an_event_of_300_kb_with_expanded_line_items_is_stored_and_processed(deliver, product):
    order = open_order(product)
    items = [
        {
            "id": f"li_{n}",
            "object": "item",
            "description": "x" * 200,
            "price": {"id": "price_x", "nickname": "y" * 100},
        }
        for n in range(900)
    ]
    evt = completed_with(order, line_items={"object": "list", "data": items, "has_more": False})
    body = events.body(evt)
    assert len(body) > 300_000

    assert deliver(body).status_code == 200

    assert stored(evt["id"]).status == EventStatus.PROCESSED
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED


def test_a_payload_the_code_cannot_read_needs_review_at_once_without_retries(deliver, product):
    order = open_order(product)
    evt = completed_with(order, metadata="order-1")  # metadata is an object in every API version

    assert deliver(evt).status_code == 200

    row = stored(evt["id"])
    assert (row.status, row.attempts) == (EventStatus.NEEDS_REVIEW, 1)
    assert row.outcome.startswith("cannot be processed as sent: ValueError")
    assert "Traceback" in row.last_error


@pytest.mark.postgres_only
def test_a_database_refusal_while_processing_needs_review_at_once(deliver, product):
    order = _fulfilled(product)
    dispute = events.dispute_object(order, dispute_id=new_id("dp_"), status="needs_response")
    dispute["currency"] = "usdx"  # PostgreSQL's varchar(3) refuses it with a DataError, on every retry

    evt = event("charge.dispute.created", dispute)
    assert deliver(evt).status_code == 200

    row = stored(evt["id"])
    assert (row.status, row.attempts) == (EventStatus.NEEDS_REVIEW, 1)
    assert "DataError" in row.outcome
    assert not order.disputes.exists()


def test_an_event_id_holding_a_nul_is_refused_with_400_and_not_stored(client, product):
    evt = session_event("checkout.session.completed", open_order(product))
    evt["id"] = "evt_\u0000x"

    response = events.deliver(client, evt)

    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


@pytest.mark.parametrize("path", ["/success?session_id=cs_%00abc", "/cancel?session_id=cs_%00", "/?x=%00"])
def test_a_nul_in_a_query_string_is_refused_with_400(client, path):
    response = client.get(path)

    assert response.status_code == 400
    assert "cannot be stored" in response.content.decode()


def test_a_nul_in_an_admin_filter_is_refused_with_400(admin_client):
    response = admin_client.get("/admin/orders/order/?status__exact=%00")

    assert response.status_code == 400


def test_a_lone_surrogate_in_the_api_item_id_is_refused_with_400(client):
    body = json.dumps({"item_id": "\ud800", "quantity": 1})

    response = client.post("/api/checkout/create-session", data=body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "item_id"


def test_a_backfilled_event_holding_a_nul_is_stored_and_processed(product, worker_run):
    order = open_order(product)
    evt = completed_with(order, customer_details={"email": "b@example.com", "name": "\u0000"})

    outcome = receive(evt, source="backfill")

    assert outcome.status == EventStatus.PROCESSED
    assert json.loads(stored(evt["id"]).payload_text) == evt
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED


def test_the_success_page_of_a_session_nobody_has_is_404_not_500(client):
    assert client.get("/success", {"session_id": "cs_" + "x" * 300}).status_code == 404


@pytest.mark.parametrize(
    ("command", "argument"), [("replay_events", "evt_\udcff"), ("refund_order", "\udcffabc")]
)
def test_a_command_argument_that_is_not_utf8_is_refused_with_a_message(command, argument):
    # argv bytes that are not UTF-8 reach Python as lone surrogates (os.fsdecode's surrogateescape).
    with pytest.raises(CommandError, match="cannot be stored"):
        call_command(command, argument)
