"""The buyer's return: the session is asked of Stripe, never taken from the query string."""

import socket
import time
import uuid

import pytest
import requests
from django.test import Client
from django.urls import reverse

from orders.models import Order, OrderStatus, OrderTransition
from orders.transitions import order_fulfill
from payments import gateway

pytestmark = pytest.mark.django_db


def checkout(client: Client, sku: str, quantity: int = 2) -> Order:
    """Open a session through the form, as a buyer does, and return its order."""
    response = client.post(
        reverse("checkout-create"),
        {"item_id": sku, "quantity": quantity, "checkout_token": str(uuid.uuid4())},
    )
    assert response.status_code == 303, response.content
    return Order.objects.get(checkout_token__isnull=False, stripe_checkout_session_id__isnull=False)


def control(emulator, session_id: str, action: str, **body) -> dict:
    url = f"{emulator.base_url}/_emulator/checkout/sessions/{session_id}/{action}"
    response = requests.post(url, json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def success(client: Client, session_id: str, **headers):
    return client.get(reverse("success"), {"session_id": session_id}, headers=headers)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def transitions(order: Order) -> list[tuple[str, str, str]]:
    return list(OrderTransition.objects.filter(order=order).values_list("from_status", "to_status", "source"))


# Refusals before Stripe is asked


def test_missing_session_id_is_400(client, db):
    response = client.get(reverse("success"))

    assert response.status_code == 400
    assert "Missing session_id" in response.content.decode()


def test_missing_session_id_is_400_json_for_json_clients(client, db):
    response = client.get(reverse("success"), {"session_id": ""}, headers={"Accept": "application/json"})

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "session_id"


def test_unknown_session_id_is_404(client, db):
    response = success(client, "cs_test_made_up")

    assert response.status_code == 404
    assert "No order of ours has the checkout session" in response.content.decode()


def test_session_created_on_stripe_by_someone_else_is_404(client, synced_product):
    foreign = gateway.checkout_session_create(
        order_id=str(uuid.uuid4()),
        line_items=[(synced_product.stripe_price_id, 1)],
        success_url="http://elsewhere.test/ok?session_id={CHECKOUT_SESSION_ID}",
        cancel_url="http://elsewhere.test/cancel",
        expires_at=int(time.time()) + 3600,
    )

    response = success(client, foreign.id, Accept="application/json")

    assert response.status_code == 404
    assert response.json()["error"]["field"] == "session_id"


def test_session_id_we_did_not_create_never_reaches_stripe(client, db, settings):
    # Stripe is unreachable: were it asked, this would not be a plain 404.
    settings.STRIPE_SECRET_KEY = "sk_test_unused"
    settings.STRIPE_API_BASE = closed_port_url()

    assert success(client, "cs_test_probe").status_code == 404


# Paid


def test_paid_session_confirms_the_order_and_shows_it(client, synced_product, emulator):
    order = checkout(client, synced_product.sku, quantity=2)
    control(emulator, order.stripe_checkout_session_id, "pay", method="card")

    response = success(client, order.stripe_checkout_session_id)

    html = response.content.decode()
    order.refresh_from_db()
    assert response.status_code == 200
    assert order.status == OrderStatus.CONFIRMED
    assert order.stripe_payment_intent_id.startswith("pi_")
    assert order.customer_email
    assert transitions(order) == [("pending", "confirmed", "redirect")]
    assert "Payment received" in html
    assert str(order.id) in html
    assert "<dt>Synced product × 2</dt>" in html
    assert "$99.98" in html
    assert 'id="order-status" data-status="confirmed">confirmed<' in html
    assert f'"url": "/orders/{order.id}/status"' in html  # the page polls until the webhook arrives
    assert '<meta http-equiv="refresh"' in html


def test_returning_twice_confirms_once(client, synced_product, emulator):
    order = checkout(client, synced_product.sku)
    control(emulator, order.stripe_checkout_session_id, "pay", method="card")

    success(client, order.stripe_checkout_session_id)
    second = success(client, order.stripe_checkout_session_id)

    assert second.status_code == 200
    assert transitions(order) == [("pending", "confirmed", "redirect")]


def test_return_after_the_webhook_fulfilled_shows_fulfilled_and_changes_nothing(
    client, synced_product, emulator
):
    order = checkout(client, synced_product.sku)
    control(emulator, order.stripe_checkout_session_id, "pay", method="card")
    order_fulfill(order_id=order.id, source="webhook", stripe_event_id="evt_test_1")

    response = success(client, order.stripe_checkout_session_id)

    html = response.content.decode()
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED
    assert transitions(order) == [("pending", "fulfilled", "webhook")]
    assert "Thank you, your order is complete" in html
    assert 'data-status="fulfilled"' in html
    assert '<meta http-equiv="refresh"' not in html  # final: nothing more to wait for
    assert "Start a new order" in html


def test_redirect_first_then_webhook_ends_fulfilled(client, synced_product, emulator):
    order = checkout(client, synced_product.sku)
    control(emulator, order.stripe_checkout_session_id, "pay", method="card")

    success(client, order.stripe_checkout_session_id)
    order_fulfill(order_id=order.id, source="webhook", stripe_event_id="evt_test_1")
    status = client.get(reverse("order-status", kwargs={"order_id": order.id})).json()

    assert transitions(order) == [("pending", "confirmed", "redirect"), ("confirmed", "fulfilled", "webhook")]
    assert (status["status"], status["final"]) == ("fulfilled", True)


# Not paid (yet)


def test_delayed_payment_shows_processing_and_marks_the_order(client, synced_product, emulator):
    emulator.configure(async_delay=600)  # keep the bank from settling during the test
    order = checkout(client, synced_product.sku)
    control(emulator, order.stripe_checkout_session_id, "pay", method="delayed_success")

    response = success(client, order.stripe_checkout_session_id)

    html = response.content.decode()
    order.refresh_from_db()
    assert response.status_code == 200
    assert (order.status, order.payment_pending) == (OrderStatus.PENDING, True)
    assert "Payment processing" in html
    assert "Your payment is processing" in html
    assert 'data-status="pending"' in html
    assert '<meta http-equiv="refresh"' in html


def test_delayed_payment_once_settled_confirms_on_the_next_return(client, synced_product, emulator):
    emulator.configure(async_delay=600)
    order = checkout(client, synced_product.sku)
    control(emulator, order.stripe_checkout_session_id, "pay", method="delayed_success")
    success(client, order.stripe_checkout_session_id)
    control(emulator, order.stripe_checkout_session_id, "settle")

    response = success(client, order.stripe_checkout_session_id)

    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED
    assert "Payment received" in response.content.decode()


def test_open_session_says_not_paid_and_links_back_to_the_payment_page(client, synced_product, emulator):
    order = checkout(client, synced_product.sku)
    session_url = gateway.checkout_session_retrieve(session_id=order.stripe_checkout_session_id).url

    response = success(client, order.stripe_checkout_session_id)

    html = response.content.decode()
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    assert transitions(order) == []
    assert "Not paid yet" in html
    assert f'id="resume-payment" href="{session_url}"' in html
    assert '<meta http-equiv="refresh"' not in html


def test_expired_session_says_so_and_expires_the_order(client, synced_product, emulator):
    # Stripe says the session is expired, so nobody can pay it: the redirect applies it as the webhook would.
    order = checkout(client, synced_product.sku)
    control(emulator, order.stripe_checkout_session_id, "expire")

    response = success(client, order.stripe_checkout_session_id)

    html = response.content.decode()
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED
    assert transitions(order) == [("pending", "expired", "redirect")]
    assert "Checkout expired" in html
    assert "expired before it was paid. Nothing was charged." in html


# Sessions that are not what we created, and Stripe out of reach


def test_session_whose_amount_differs_from_the_order_is_not_confirmed(client, synced_product, emulator):
    order = checkout(client, synced_product.sku, quantity=2)
    control(emulator, order.stripe_checkout_session_id, "pay", method="card")
    Order.objects.filter(pk=order.pk).update(amount_subtotal=1, amount_total=1)

    response = success(client, order.stripe_checkout_session_id)

    order.refresh_from_db()
    assert response.status_code == 409
    assert order.status == OrderStatus.PENDING
    assert "We could not verify this payment" in response.content.decode()


def test_paid_session_made_for_another_order_does_not_confirm_ours(client, synced_product, emulator):
    order = checkout(client, synced_product.sku, quantity=1)
    other = gateway.checkout_session_create(
        order_id=str(uuid.uuid4()),
        line_items=[(synced_product.stripe_price_id, 1)],
        success_url="http://testserver/success?session_id={CHECKOUT_SESSION_ID}",
        cancel_url="http://testserver/cancel",
        expires_at=int(order.created_at.timestamp()) + 3600,
    )
    control(emulator, other.id, "pay", method="card")
    Order.objects.filter(pk=order.pk).update(stripe_checkout_session_id=other.id)

    response = success(client, other.id, Accept="application/json")

    order.refresh_from_db()
    assert response.status_code == 409
    assert response.json()["outcome"] == "mismatch"
    assert order.status == OrderStatus.PENDING


def test_stripe_unreachable_shows_the_stored_state_with_a_note(client, synced_product, emulator, settings):
    order = checkout(client, synced_product.sku)
    settings.STRIPE_API_BASE = closed_port_url()

    response = success(client, order.stripe_checkout_session_id)

    html = response.content.decode()
    assert response.status_code == 200
    assert "We could not reach the payment provider" in html
    assert 'data-status="pending"' in html
    assert str(order.id) in html
    assert '<meta http-equiv="refresh"' in html


def test_session_stripe_no_longer_knows_is_reported_as_unknown_not_unreachable(
    client, synced_product, emulator
):
    # Stripe answered, so this is verified: the session is stranded, not the provider unreachable.
    order = checkout(client, synced_product.sku)
    emulator.reset()

    response = success(client, order.stripe_checkout_session_id, Accept="application/json")

    body = response.json()
    assert response.status_code == 200
    assert (body["outcome"], body["verified"], body["session"]) == ("unknown", True, None)
    assert "has no record of this checkout" in body["note"]


def test_page_of_a_stranded_session_says_so_and_stops_polling(client, synced_product, emulator):
    order = checkout(client, synced_product.sku)
    emulator.reset()

    response = success(client, order.stripe_checkout_session_id)

    html = response.content.decode()
    assert response.status_code == 200
    assert "This checkout is unknown to the payment provider" in html
    assert "has no record of this checkout" in html
    assert "could not reach" not in html
    assert response.context["poll"] is False
    assert 'id="poll-note"' not in html


# JSON clients and the status endpoint


def test_json_client_gets_the_order_as_json(client, synced_product, emulator):
    order = checkout(client, synced_product.sku, quantity=3)
    control(emulator, order.stripe_checkout_session_id, "pay", method="card")

    response = success(client, order.stripe_checkout_session_id, Accept="application/json")

    body = response.json()
    assert response.status_code == 200
    assert body["outcome"] == "paid"
    assert body["session"] == {
        "id": order.stripe_checkout_session_id,
        "status": "complete",
        "payment_status": "paid",
    }
    assert body["order"]["order_id"] == str(order.id)
    assert body["order"]["status"] == "confirmed"
    assert body["order"]["lines"] == [
        {
            "item_id": "synced_product",
            "item_name": "Synced product",
            "quantity": 3,
            "unit_amount": 4999,
            "amount": 14997,
        }
    ]
    assert (body["order"]["amount_total"], body["order"]["currency"]) == (14997, "usd")


def test_browser_accept_header_gets_html(client, synced_product, emulator):
    order = checkout(client, synced_product.sku)

    response = success(
        client,
        order.stripe_checkout_session_id,
        Accept="text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    )

    assert response["Content-Type"].startswith("text/html")


def test_status_endpoint_reports_the_order(client, synced_product, emulator):
    order = checkout(client, synced_product.sku, quantity=2)

    response = client.get(reverse("order-status", kwargs={"order_id": order.id}))

    body = response.json()
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert body["order_id"] == str(order.id)
    assert (body["status"], body["payment_pending"], body["final"]) == ("pending", False, False)
    assert [(line["item_id"], line["quantity"]) for line in body["lines"]] == [("synced_product", 2)]
    assert (body["amount_subtotal"], body["amount_total"]) == (9998, 9998)
    assert body["message"]


def test_status_endpoint_says_final_for_failed_and_expired_orders(client, synced_product, emulator):
    order = checkout(client, synced_product.sku)
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.EXPIRED)

    body = client.get(reverse("order-status", kwargs={"order_id": order.id})).json()

    assert (body["status"], body["final"]) == ("expired", True)
    assert "Nothing was charged" in body["message"]


def test_status_endpoint_is_404_for_an_unknown_order(client, db):
    response = client.get(reverse("order-status", kwargs={"order_id": uuid.uuid4()}))

    assert response.status_code == 404
    assert "No order" in response.json()["error"]["message"]
