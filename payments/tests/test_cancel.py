"""Leaving Stripe's page: the buyer learns what was (or, if unpaid, was not) charged; no order changes."""

import uuid

import pytest
from django.urls import reverse

from orders.models import Order, OrderStatus, OrderTransition
from payments import gateway

pytestmark = pytest.mark.django_db


def checkout(client, sku: str) -> Order:
    client.post(
        reverse("checkout-create"), {"item_id": sku, "quantity": 2, "checkout_token": str(uuid.uuid4())}
    )
    return Order.objects.get()


def test_cancel_says_nothing_was_charged_if_unpaid_and_offers_to_start_again(client, db):
    response = client.get(reverse("cancel"))

    html = response.content.decode()
    assert response.status_code == 200
    assert "If you did not finish paying, nothing was charged." in html
    assert 'href="/" id="start-again"' in html


def test_cancel_link_of_the_hosted_page_names_the_order_and_changes_nothing(client, synced_product, emulator):
    order = checkout(client, synced_product.sku)
    cancel_url = gateway.client().v1.checkout.sessions.retrieve(order.stripe_checkout_session_id).cancel_url

    response = client.get(cancel_url.removeprefix("http://testserver"))

    html = response.content.decode()
    order.refresh_from_db()
    assert response.status_code == 200
    assert "If you did not finish paying, nothing was charged." in html
    assert str(order.id) in html
    assert "Synced product" in html
    assert "$99.98" in html
    assert order.status == OrderStatus.PENDING
    assert not OrderTransition.objects.exists()


def test_cancel_with_a_session_id_shows_its_order(client, synced_product, emulator):
    order = checkout(client, synced_product.sku)

    response = client.get(reverse("cancel"), {"session_id": order.stripe_checkout_session_id})

    assert str(order.id) in response.content.decode()


@pytest.mark.parametrize(
    "query", [{"order_id": "not-a-uuid"}, {"order_id": str(uuid.uuid4())}, {"session_id": "x"}]
)
def test_cancel_with_an_unknown_order_still_shows_the_plain_page(client, db, query):
    response = client.get(reverse("cancel"), query)

    assert response.status_code == 200
    assert "If you did not finish paying, nothing was charged." in response.content.decode()


def test_cancel_of_an_order_that_was_paid_after_all_does_not_claim_nothing_was_charged(
    client, synced_product, emulator
):
    order = checkout(client, synced_product.sku)
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.FULFILLED)

    response = client.get(reverse("cancel"), {"order_id": str(order.id)})

    html = response.content.decode()
    assert "This order is already paid" in html
    assert "Nothing was charged" not in html
    assert f"/success?session_id={order.stripe_checkout_session_id}" in html
