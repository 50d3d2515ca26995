"""An idempotency key finds only an order its own client created: another client gets its own order."""

import hashlib
import re
import uuid

import pytest
from django.test import Client
from django.urls import reverse

from orders.models import Order
from payments import gateway
from payments.idempotency import SESSION_MARK

pytestmark = pytest.mark.django_db

API_URL = "/api/checkout/create-session"


def api_post(client: Client, body: dict, key: str | None = None):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(API_URL, body, content_type="application/json", headers=headers)


def page_token(client: Client, sku: str) -> str:
    """Open the checkout page as a browser does and return the token in the item's form."""
    html = client.get("/").content.decode()
    form = html[html.index(f'id="buy-{sku}"') :]
    return re.search(r'name="checkout_token" value="([0-9a-f-]{36})"', form)[1]


def sessions_at_stripe() -> int:
    return len(gateway.client().v1.checkout.sessions.list(params={"limit": 100}).data)


def test_the_checkout_page_starts_the_session_the_form_is_scoped_to(client, synced_product):
    response = client.get("/")

    assert response.cookies["sessionid"].value
    assert client.session[SESSION_MARK] is True


def test_same_key_from_an_api_client_gets_a_new_order_and_nothing_of_the_browsers(synced_product):
    key = str(uuid.uuid4())
    buyer, attacker = Client(), Client()
    buyer.get("/")

    first = api_post(buyer, {"item_id": synced_product.sku, "quantity": 2}, key)
    other = api_post(attacker, {"item_id": synced_product.sku, "quantity": 2}, key)

    assert (first.status_code, other.status_code) == (201, 201)
    assert other.json()["order_id"] != first.json()["order_id"]
    assert other.json()["url"] != first.json()["url"]
    assert Order.objects.count() == 2


def test_same_key_with_another_item_from_another_client_is_not_a_conflict(synced_product):
    key = str(uuid.uuid4())
    buyer = Client()
    buyer.get("/")
    first = api_post(buyer, {"item_id": synced_product.sku, "quantity": 2}, key)

    other = api_post(Client(), {"item_id": synced_product.sku, "quantity": 5}, key)

    # A 409 here would tell the second client that the key is taken, and name the first order.
    assert other.status_code == 201
    assert first.json()["order_id"] not in other.content.decode()


def test_api_clients_without_a_session_share_one_scope_so_a_retry_needs_no_cookie(synced_product):
    key = str(uuid.uuid4())

    first = api_post(Client(), {"item_id": synced_product.sku, "quantity": 2}, key)
    retry = api_post(Client(), {"item_id": synced_product.sku, "quantity": 2}, key)

    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json() == first.json()


def test_a_browsers_weak_key_is_its_own_and_another_browser_reusing_it_gets_a_new_order(synced_product):
    buyer, other = Client(), Client()
    buyer.get("/")
    other.get("/")

    first = api_post(buyer, {"item_id": synced_product.sku, "quantity": 1}, "1")
    again = api_post(buyer, {"item_id": synced_product.sku, "quantity": 1}, "1")
    elsewhere = api_post(other, {"item_id": synced_product.sku, "quantity": 1}, "1")

    assert (first.status_code, again.status_code, elsewhere.status_code) == (201, 200, 201)
    assert again.json() == first.json()
    assert elsewhere.json()["order_id"] != first.json()["order_id"]
    assert sessions_at_stripe() == 2


def test_same_client_reusing_its_key_for_another_item_gets_409_naming_its_own_order(client, synced_product):
    key = str(uuid.uuid4())
    first = api_post(client, {"item_id": synced_product.sku, "quantity": 1}, key)

    response = api_post(client, {"item_id": synced_product.sku, "quantity": 3}, key)

    assert response.status_code == 409
    assert response.json()["error"]["order_id"] == first.json()["order_id"]


@pytest.mark.parametrize(
    "key",
    [
        "1",
        "abc",
        "retry-me-1",
        "a" * 31,
        "0123456789abcdef0123456789abcde!",  # 32 characters, one outside the alphabet
        "{6ba7b810-9dad-11d1-80b4-00c04fd430c8}",  # a UUID, but version 1: a timestamp and a MAC address
    ],
)
def test_api_client_without_a_session_is_refused_a_guessable_key_with_what_to_send(
    client, synced_product, key
):
    response = api_post(client, {"item_id": synced_product.sku, "quantity": 1}, key)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "Idempotency-Key"
    assert "128 bits of randomness" in error["message"]
    assert "UUID version 4" in error["message"]
    assert not Order.objects.exists()
    assert sessions_at_stripe() == 0


@pytest.mark.parametrize("key", [str(uuid.uuid4()), uuid.uuid4().hex, "K" * 32, "a-b_c" * 8])
def test_api_client_without_a_session_may_use_a_random_key(client, synced_product, key):
    assert api_post(client, {"item_id": synced_product.sku, "quantity": 1}, key).status_code == 201


def test_form_token_from_the_page_gives_one_order_for_a_double_submit_in_that_browser(client, synced_product):
    token = page_token(client, synced_product.sku)
    data = {"item_id": synced_product.sku, "quantity": 1, "checkout_token": token}

    first = client.post(reverse("checkout-create"), data)
    second = client.post(reverse("checkout-create"), data)

    assert first.status_code == second.status_code == 303
    assert first["Location"] == second["Location"]
    assert Order.objects.count() == 1


def test_form_token_posted_from_another_browser_opens_a_new_order(client, synced_product):
    token = page_token(client, synced_product.sku)
    data = {"item_id": synced_product.sku, "quantity": 1, "checkout_token": token}
    client.post(reverse("checkout-create"), data)

    other = Client()
    response = other.post(reverse("checkout-create"), data)

    assert response.status_code == 303
    assert Order.objects.count() == 2


def test_stored_token_is_a_digest_of_the_session_and_the_key(client, synced_product):
    token = page_token(client, synced_product.sku)
    client.post(
        reverse("checkout-create"), {"item_id": synced_product.sku, "quantity": 1, "checkout_token": token}
    )

    expected = hashlib.sha256(f"session:{client.session.session_key}\n{token}".encode()).hexdigest()
    assert Order.objects.get().checkout_token == expected


def test_a_made_up_session_cookie_gives_no_scope_of_its_own(client, synced_product):
    client.cookies["sessionid"] = "x" * 32

    response = api_post(client, {"item_id": synced_product.sku, "quantity": 1}, "1")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "Idempotency-Key"


def test_form_posted_without_a_session_still_opens_one_order_for_its_token(client, synced_product):
    # A browser without the session cookie (it was cleared) still sends the page's random UUID.
    data = {"item_id": synced_product.sku, "quantity": 1, "checkout_token": str(uuid.uuid4())}

    first = client.post(reverse("checkout-create"), data)
    second = Client().post(reverse("checkout-create"), data)

    assert first.status_code == second.status_code == 303
    assert Order.objects.count() == 1
