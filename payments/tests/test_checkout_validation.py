"""Every bad checkout request gets a clear 4xx naming the problem, and writes no order."""

import uuid

import pytest
from django.urls import reverse

from orders.models import Order, Product

pytestmark = pytest.mark.django_db

API_URL = "/api/checkout/create-session"


@pytest.fixture
def unpriced_product(db) -> Product:
    return Product.objects.create(sku="unpriced", name="Unpriced", unit_amount=500, currency="usd")


@pytest.fixture
def inactive_product(synced_product) -> Product:
    synced_product.active = False
    synced_product.save()
    return synced_product


# The HTML form: the page comes back with the message, status 400, and nothing written.

FORM_CASES = [
    ({"item_id": "no_such_item", "quantity": "1"}, "Unknown or unavailable item: &#x27;no_such_item&#x27;"),
    ({"quantity": "1"}, "Missing item_id"),
    ({"item_id": "synced_product"}, "Missing quantity"),
    ({"item_id": "synced_product", "quantity": ""}, "Missing quantity"),
    ({"item_id": "synced_product", "quantity": "two"}, "Quantity must be a whole number from 1 to 100."),
    ({"item_id": "synced_product", "quantity": "2.5"}, "Quantity must be a whole number from 1 to 100."),
    ({"item_id": "synced_product", "quantity": "0"}, "Quantity must be at least 1."),
    ({"item_id": "synced_product", "quantity": "-3"}, "Quantity must be at least 1."),
    ({"item_id": "synced_product", "quantity": "101"}, "Quantity must be at most 100."),
    (
        {"item_id": "synced_product", "quantity": "1", "checkout_token": "not-a-uuid"},
        "This form is out of date: reload the page and try again.",
    ),
]


@pytest.mark.parametrize(("data", "message"), FORM_CASES)
def test_form_errors_rerender_the_page_with_400_and_the_message(client, synced_product, data, message):
    response = client.post(reverse("checkout-create"), data)

    html = response.content.decode()
    assert response.status_code == 400
    assert message in html
    assert 'class="form-error" role="alert"' in html
    assert 'id="buy-synced_product"' in html  # the page, with its forms, is there to try again
    assert not Order.objects.exists()


def test_form_error_sits_next_to_its_product_and_keeps_what_was_typed(client, synced_product):
    response = client.post(reverse("checkout-create"), {"item_id": synced_product.sku, "quantity": "101"})

    html = response.content.decode()
    assert 'id="error-synced_product"' in html
    assert 'aria-invalid="true"' in html
    assert 'value="101"' in html


def test_form_for_an_inactive_item_is_refused(client, inactive_product):
    response = client.post(reverse("checkout-create"), {"item_id": inactive_product.sku, "quantity": "1"})

    assert response.status_code == 400
    assert "Unknown or unavailable item" in response.content.decode()
    assert not Order.objects.exists()


def test_form_for_an_item_without_a_stripe_price_is_refused(client, emulator, unpriced_product):
    response = client.post(
        reverse("checkout-create"),
        {"item_id": "unpriced", "quantity": "1", "checkout_token": str(uuid.uuid4())},
    )

    assert response.status_code == 400
    assert "has no Stripe price" in response.content.decode()
    assert not Order.objects.exists()


def test_form_accepts_only_post(client, synced_product):
    assert client.put(reverse("checkout-create")).status_code == 405


# The JSON API: {"error": {"message", "field"}} and nothing written.

API_CASES = [
    ({"item_id": "no_such_item", "quantity": 1}, "item_id", "Unknown or unavailable item: 'no_such_item'."),
    ({"quantity": 1}, "item_id", "Missing item_id"),
    ({"item_id": "", "quantity": 1}, "item_id", "Missing item_id"),
    ({"item_id": 42, "quantity": 1}, "item_id", "item_id must be a string"),
    ({"item_id": "synced_product"}, "quantity", "Missing quantity"),
    ({"item_id": "synced_product", "quantity": None}, "quantity", "Missing quantity"),
    ({"item_id": None, "quantity": 1}, "item_id", "Missing item_id"),
    ({"item_id": "synced_product", "quantity": "3"}, "quantity", 'whole number from 1 to 100, not "3"'),
    ({"item_id": "synced_product", "quantity": 2.5}, "quantity", "whole number from 1 to 100, not 2.5"),
    ({"item_id": "synced_product", "quantity": True}, "quantity", "whole number from 1 to 100, not true"),
    ({"item_id": "synced_product", "quantity": 0}, "quantity", "Quantity must be at least 1."),
    ({"item_id": "synced_product", "quantity": 101}, "quantity", "Quantity must be at most 100."),
    (
        {"item_id": "synced_product", "quantity": 1, "unit_amount": 1},
        "unit_amount",
        "Unknown field 'unit_amount': only items, or item_id and quantity, are accepted. The price always",
    ),
]


@pytest.mark.parametrize(("body", "field", "message"), API_CASES)
def test_api_errors_name_the_field_and_the_problem(client, synced_product, body, field, message):
    response = client.post(API_URL, body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert message in response.json()["error"]["message"]
    assert not Order.objects.exists()


def test_api_refuses_an_inactive_item(client, inactive_product):
    response = client.post(
        API_URL, {"item_id": inactive_product.sku, "quantity": 1}, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "item_id"
    assert not Order.objects.exists()


def test_api_refuses_an_item_without_a_stripe_price(client, emulator, unpriced_product):
    response = client.post(API_URL, {"item_id": "unpriced", "quantity": 1}, content_type="application/json")

    assert response.status_code == 400
    assert "has no Stripe price" in response.json()["error"]["message"]
    assert not Order.objects.exists()


BODY_CASES = [
    ("application/json", b'{"item_id": "synced_product", "quantity": 1', "not valid JSON"),
    ("application/json", b"  \n", "The request body is empty"),
    ("application/json", b'{"item_id": "caf\xe9", "quantity": 1}', "not UTF-8"),
    ("application/json", b'["synced_product", 1]', "must be a JSON object like"),
    ("application/json", b'"synced_product"', "not a string"),
    ("application/json", b"null", "not null"),
    (
        "text/plain",
        b'{"item_id": "synced_product", "quantity": 1}',
        "Content-Type must be application/json, not",
    ),
    (
        "application/x-www-form-urlencoded",
        b"item_id=synced_product&quantity=1",
        "Content-Type must be application/json, not 'application/x-www-form-urlencoded'",
    ),
    ("", b'{"item_id": "synced_product", "quantity": 1}', "Content-Type must be application/json"),
]


@pytest.mark.parametrize(("content_type", "body", "message"), BODY_CASES)
def test_api_refuses_bodies_that_are_not_a_json_object(client, synced_product, content_type, body, message):
    response = client.generic("POST", API_URL, body, content_type=content_type)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert message in response.json()["error"]["message"]
    assert not Order.objects.exists()


def test_api_accepts_json_with_a_charset(client, synced_product):
    response = client.generic(
        "POST",
        API_URL,
        b'{"item_id": "synced_product", "quantity": 1}',
        content_type="application/json; charset=utf-8",
    )

    assert response.status_code == 201


def test_api_refuses_an_idempotency_key_longer_than_255(client, synced_product):
    response = client.post(
        API_URL,
        {"item_id": "synced_product", "quantity": 1},
        content_type="application/json",
        headers={"Idempotency-Key": "k" * 256},
    )

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "Idempotency-Key"
    assert not Order.objects.exists()


def test_api_refuses_a_body_too_large_with_413(client, synced_product, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = client.post(API_URL, {"item_id": "x" * 2000, "quantity": 1}, content_type="application/json")

    assert response.status_code == 413
    assert not Order.objects.exists()


def test_api_accepts_only_post(client, synced_product):
    assert client.get(API_URL).status_code == 405
