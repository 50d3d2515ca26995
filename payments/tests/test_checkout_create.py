"""Opening a Checkout Session from the form and from the JSON API, checked on the emulator's side."""

import logging
import socket
import uuid
from datetime import timedelta

import pytest
import requests
from django.test import Client
from django.urls import reverse

from conftest import run_together
from orders.models import Order, OrderStatus, OrderTransition, Product
from payments import gateway

pytestmark = pytest.mark.django_db

API_URL = "/api/checkout/create-session"


def form_post(client: Client, sku: str, quantity: int | str = 1, token: str | None = None):
    data = {"item_id": sku, "quantity": quantity, "checkout_token": token or str(uuid.uuid4())}
    return client.post(reverse("checkout-create"), data)


def api_post(client: Client, body: dict, **headers):
    return client.post(API_URL, body, content_type="application/json", headers=headers)


def emulator_session(session_id: str, *expand: str) -> dict:
    """Read a session back from the emulator through stripe-python, as Stripe would answer."""
    params = {"expand": list(expand)} if expand else None
    return gateway.client().v1.checkout.sessions.retrieve(session_id, params=params).to_dict()


def emulator_sessions() -> list[dict]:
    return [s.to_dict() for s in gateway.client().v1.checkout.sessions.list(params={"limit": 100}).data]


def pay(emulator, session_id: str, method: str = "card") -> dict:
    response = requests.post(
        f"{emulator.base_url}/_emulator/checkout/sessions/{session_id}/pay",
        json={"method": method},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# Creation


def test_form_post_writes_a_pending_order_and_answers_303_to_the_session(client, synced_product):
    token = str(uuid.uuid4())

    response = form_post(client, synced_product.sku, quantity=3, token=token)

    order = Order.objects.get()
    assert response.status_code == 303
    line = order.lines.get()
    assert (order.status, line.quantity, line.unit_amount, order.amount_total, order.currency) == (
        OrderStatus.PENDING,
        3,
        4999,
        14997,
        "usd",
    )
    # Stored as a digest of the client's scope and the token, never as the token a client sent.
    assert order.checkout_token and token not in order.checkout_token
    session = emulator_session(order.stripe_checkout_session_id)
    assert response["Location"] == session["url"]


def test_session_is_created_with_every_parameter_the_issue_asks_for(client, synced_product, settings):
    form_post(client, synced_product.sku, quantity=2)
    order = Order.objects.get()

    session = emulator_session(order.stripe_checkout_session_id, "line_items")

    assert session["mode"] == "payment"
    assert session["client_reference_id"] == str(order.id)
    assert session["metadata"] == {"order_id": str(order.id)}
    [line] = session["line_items"]["data"]
    assert (line["price"]["id"], line["quantity"]) == (synced_product.stripe_price_id, 2)
    assert (session["amount_total"], session["currency"]) == (9998, "usd")
    assert session["expires_at"] == int(order.created_at.timestamp()) + settings.CHECKOUT_SESSION_TTL_SECONDS
    assert session["success_url"] == "http://testserver/success?session_id={CHECKOUT_SESSION_ID}"
    assert session["cancel_url"] == f"http://testserver/cancel?order_id={order.id}"


def test_payment_intent_carries_the_order_id_once_paid(client, synced_product, emulator):
    form_post(client, synced_product.sku)
    order = Order.objects.get()
    pay(emulator, order.stripe_checkout_session_id)

    session = emulator_session(order.stripe_checkout_session_id, "payment_intent")

    assert session["payment_intent"]["metadata"] == {"order_id": str(order.id)}
    assert session["payment_intent"]["amount"] == 4999


def test_return_urls_use_site_url_when_it_is_set(client, synced_product, settings):
    settings.SITE_URL = "https://shop.example.com"

    form_post(client, synced_product.sku)

    order = Order.objects.get()
    session = emulator_session(order.stripe_checkout_session_id)
    assert session["success_url"] == "https://shop.example.com/success?session_id={CHECKOUT_SESSION_ID}"
    assert session["cancel_url"] == f"https://shop.example.com/cancel?order_id={order.id}"


def test_session_lifetime_comes_from_the_setting(client, synced_product, settings):
    settings.CHECKOUT_SESSION_TTL_SECONDS = 45 * 60

    form_post(client, synced_product.sku)

    order = Order.objects.get()
    assert (
        emulator_session(order.stripe_checkout_session_id)["expires_at"]
        == int(order.created_at.timestamp()) + 45 * 60
    )


def test_price_is_the_catalogs_whatever_the_form_says(client, synced_product):
    client.post(
        reverse("checkout-create"),
        {
            "item_id": synced_product.sku,
            "quantity": 1,
            "unit_amount": 1,
            "amount_total": 1,
            "price": "price_x",
        },
    )

    order = Order.objects.get()
    assert order.amount_total == 4999
    assert emulator_session(order.stripe_checkout_session_id)["amount_total"] == 4999


# Double submit


def test_same_form_token_posted_twice_gives_one_order_and_one_session(client, synced_product):
    token = str(uuid.uuid4())

    first = form_post(client, synced_product.sku, quantity=2, token=token)
    second = form_post(client, synced_product.sku, quantity=2, token=token)

    assert first.status_code == second.status_code == 303
    assert first["Location"] == second["Location"]
    assert Order.objects.count() == 1
    assert len(emulator_sessions()) == 1


def test_each_form_render_gets_its_own_order(client, synced_product):
    form_post(client, synced_product.sku)
    form_post(client, synced_product.sku)

    assert Order.objects.count() == 2
    assert len(emulator_sessions()) == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_double_click_gives_one_order_and_one_session(synced_product):
    token = str(uuid.uuid4())

    def click():
        return form_post(Client(), synced_product.sku, quantity=1, token=token)

    responses = run_together([click] * 4)

    assert [response.status_code for response in responses] == [303] * 4
    assert len({response["Location"] for response in responses}) == 1
    assert Order.objects.count() == 1
    assert len(emulator_sessions()) == 1


def test_same_token_for_another_quantity_is_refused_with_409(client, synced_product):
    token = str(uuid.uuid4())
    form_post(client, synced_product.sku, quantity=1, token=token)

    response = form_post(client, synced_product.sku, quantity=5, token=token)

    assert response.status_code == 409
    assert "already used" in response.content.decode()
    assert Order.objects.count() == 1
    assert len(emulator_sessions()) == 1


def test_same_token_after_its_order_was_paid_is_refused_with_409(client, synced_product):
    token = str(uuid.uuid4())
    form_post(client, synced_product.sku, token=token)
    Order.objects.update(status=OrderStatus.CONFIRMED)

    response = form_post(client, synced_product.sku, token=token)

    assert response.status_code == 409
    assert "already submitted" in response.content.decode()
    assert 'class="form-error"' in response.content.decode()


def test_same_token_once_its_session_has_run_out_of_time_is_refused(client, synced_product):
    token = str(uuid.uuid4())
    form_post(client, synced_product.sku, token=token)
    order = Order.objects.get()
    Order.objects.filter(pk=order.pk).update(created_at=order.created_at - timedelta(hours=1))

    response = form_post(client, synced_product.sku, token=token)

    assert response.status_code == 409
    assert "has expired" in response.content.decode()
    assert len(emulator_sessions()) == 1


# JSON API


def test_api_answers_201_with_order_session_and_url(client, synced_product):
    response = api_post(client, {"item_id": synced_product.sku, "quantity": 4})

    order = Order.objects.get()
    assert response.status_code == 201
    assert response.json() == {
        "order_id": str(order.id),
        "session_id": order.stripe_checkout_session_id,
        "url": emulator_session(order.stripe_checkout_session_id)["url"],
    }
    assert order.amount_total == 4 * 4999


def test_api_needs_no_csrf_token_but_the_form_does(synced_product):
    client = Client(enforce_csrf_checks=True)

    api = api_post(client, {"item_id": synced_product.sku, "quantity": 1})
    form = form_post(client, synced_product.sku)

    assert api.status_code == 201
    assert form.status_code == 403
    assert Order.objects.count() == 1


def test_api_idempotency_key_gives_the_same_order_and_session(client, synced_product):
    key = str(uuid.uuid4())
    first = api_post(client, {"item_id": synced_product.sku, "quantity": 2}, idempotency_key=key)
    second = api_post(client, {"item_id": synced_product.sku, "quantity": 2}, idempotency_key=key)

    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == second.json()
    assert Order.objects.count() == 1
    assert len(emulator_sessions()) == 1


def test_api_idempotency_key_reused_for_another_body_is_refused_with_409(client, synced_product):
    key = str(uuid.uuid4())
    api_post(client, {"item_id": synced_product.sku, "quantity": 2}, idempotency_key=key)

    response = api_post(client, {"item_id": synced_product.sku, "quantity": 3}, idempotency_key=key)

    assert response.status_code == 409
    assert response.json()["error"]["field"] == "Idempotency-Key"
    assert "already used" in response.json()["error"]["message"]
    assert Order.objects.count() == 1


def test_api_without_idempotency_key_makes_a_new_order_each_time(client, synced_product):
    api_post(client, {"item_id": synced_product.sku, "quantity": 1})
    api_post(client, {"item_id": synced_product.sku, "quantity": 1})

    assert Order.objects.count() == 2


# Stripe unreachable, refusing, not configured, or priced differently


def test_stripe_unreachable_fails_the_order_and_shows_a_polite_503(client, synced_product, settings, caplog):
    settings.STRIPE_API_BASE = closed_port_url()

    # The project's "payments" logger does not propagate to the root logger, where caplog listens.
    payments_logger = logging.getLogger("payments")
    payments_logger.addHandler(caplog.handler)
    try:
        response = form_post(client, synced_product.sku)
    finally:
        payments_logger.removeHandler(caplog.handler)

    order = Order.objects.get()
    assert response.status_code == 503
    assert "payment provider is unavailable" in response.content.decode()
    assert "Nothing was charged" in response.content.decode()
    assert order.status == OrderStatus.FAILED
    assert "unavailable" in order.failure_reason
    transition = OrderTransition.objects.get(order=order)
    assert (transition.from_status, transition.to_status, transition.source) == (
        "pending",
        "failed",
        "system",
    )
    assert any(
        record.levelno == logging.ERROR and str(order.id) in record.getMessage() for record in caplog.records
    )


def test_stripe_unreachable_gives_the_api_a_503(client, synced_product, settings):
    settings.STRIPE_API_BASE = closed_port_url()

    response = api_post(client, {"item_id": synced_product.sku, "quantity": 1})

    assert response.status_code == 503
    assert "unavailable" in response.json()["error"]["message"]
    assert response["Retry-After"]
    assert Order.objects.get().status == OrderStatus.FAILED


def test_stripe_refusing_our_key_fails_the_order_with_the_reason(client, synced_product, settings):
    settings.STRIPE_SECRET_KEY = "sk_live_not_for_the_emulator"

    response = form_post(client, synced_product.sku)

    order = Order.objects.get()
    assert response.status_code == 503
    assert order.status == OrderStatus.FAILED
    assert "credentials" in order.failure_reason


def test_retried_token_after_a_failure_is_told_the_order_failed(client, synced_product, settings, emulator):
    token = str(uuid.uuid4())
    settings.STRIPE_API_BASE = closed_port_url()
    form_post(client, synced_product.sku, token=token)
    settings.STRIPE_API_BASE = emulator.base_url

    response = form_post(client, synced_product.sku, token=token)

    assert response.status_code == 409
    assert "is failed" in response.content.decode()
    assert Order.objects.count() == 1


def test_without_stripe_configuration_no_order_is_made_and_the_page_says_how(
    client, synced_product, settings
):
    settings.STRIPE_SECRET_KEY = ""

    response = form_post(client, synced_product.sku)

    assert response.status_code == 503
    assert "Payments are not set up" in response.content.decode()
    assert "STRIPE_SECRET_KEY" in response.content.decode()
    assert not Order.objects.exists()


def test_without_stripe_configuration_the_api_answers_503_json(client, synced_product, settings):
    settings.STRIPE_SECRET_KEY = ""

    response = api_post(client, {"item_id": synced_product.sku, "quantity": 1})

    assert response.status_code == 503
    assert "STRIPE_SECRET_KEY" in response.json()["error"]["message"]
    assert not Order.objects.exists()


def test_stripe_price_that_drifted_from_the_catalog_fails_the_order_and_expires_the_session(client, emulator):
    product = Product.objects.create(sku="drifted", name="Drifted", unit_amount=4999, currency="usd")
    product.stripe_product_id = gateway.product_create(name="Drifted", description="", sku="drifted")
    product.stripe_price_id = gateway.price_create(
        product_id=product.stripe_product_id, unit_amount=5999, currency="usd", sku="drifted"
    ).id
    product.save()

    response = form_post(client, "drifted")

    order = Order.objects.get()
    assert response.status_code == 503
    assert "cannot be paid for right now" in response.content.decode()
    assert order.status == OrderStatus.FAILED
    assert "sync_catalog" in order.failure_reason
    [session] = emulator_sessions()
    assert session["status"] == "expired"
