"""Error answers: branded pages with a way back to the shop for people, JSON for the API."""

import json
import uuid
from unittest import mock

import pytest
from django.template import loader
from django.test import Client
from django.urls import reverse

from orders.models import Order

pytestmark = pytest.mark.django_db

API_URL = "/api/checkout/create-session"


def assert_branded(response, status: int, text: str) -> None:
    html = response.content.decode()
    assert response.status_code == status
    assert text in html
    assert "Demo shop" in html  # base.html's header
    assert "Back to the shop" in html and 'href="/"' in html


def test_unknown_page_is_the_branded_404(client):
    assert_branded(client.get("/no-such-page"), 404, "There is nothing at this address")


def test_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/no-such-endpoint")

    assert response.status_code == 404
    assert response.json()["error"]["message"]


def test_bad_host_is_the_branded_400(client):
    assert_branded(client.get("/", HTTP_HOST="evil.example"), 400, "could not be understood")


def test_permission_denied_is_the_branded_403(client):
    from django.core.exceptions import PermissionDenied

    with mock.patch("payments.views.checkout._page", side_effect=PermissionDenied):
        response = client.get("/")

    assert_branded(response, 403, "You do not have access")


def test_crash_is_the_branded_500(client):
    client.raise_request_exception = False
    with mock.patch("payments.views.checkout._page", side_effect=RuntimeError("bug")):
        response = client.get("/")

    assert_branded(response, 500, "Something went wrong on our side")
    assert "bug" not in response.content.decode()


def test_crash_in_the_api_is_a_json_500(client):
    client.raise_request_exception = False
    with mock.patch("payments.views.checkout.checkout_request_parse", side_effect=RuntimeError("bug")):
        response = client.post(API_URL, {}, content_type="application/json")

    assert response.status_code == 500
    assert "went wrong" in response.json()["error"]["message"]


def test_500_page_renders_with_no_context_at_all():
    # Django renders 500.html so, in case the request itself is what broke.
    html = loader.get_template("500.html").render()

    assert "Back to the shop" in html


def test_csrf_failure_page_says_to_reload_and_allow_cookies():
    client = Client(enforce_csrf_checks=True)

    response = client.post(reverse("checkout-create"), {"item_id": "synced_product", "quantity": 1})

    assert_branded(response, 403, "allow cookies for this site, then reload the page")
    assert not Order.objects.exists()


def test_csrf_failure_with_a_stale_token_says_to_reload():
    client = Client(enforce_csrf_checks=True)
    client.get("/")

    response = client.post(
        reverse("checkout-create"),
        {"item_id": "synced_product", "quantity": 1, "csrfmiddlewaretoken": "x" * 64},
    )

    assert_branded(response, 403, "Reload the page and send the form again")


# The JSON endpoint answers every method in JSON.


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_other_methods_get_a_json_405_with_allow(client, method):
    response = getattr(client, method)(API_URL)

    assert response.status_code == 405
    assert response["Allow"] == "POST, OPTIONS"
    assert response["Content-Type"] == "application/json"
    assert "POST" in response.json()["error"]["message"]


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_the_order_status_endpoint_answers_other_methods_in_json_with_allow(client, method):
    response = getattr(client, method)(f"/orders/{uuid.uuid4()}/status")

    assert response.status_code == 405
    assert response["Allow"] == "GET, OPTIONS"
    assert response["Content-Type"] == "application/json"
    assert "GET" in response.json()["error"]["message"]


def test_options_preflight_gets_allow_and_no_cors_grant(client):
    response = client.options(
        API_URL,
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, idempotency-key",
        },
    )

    assert response.status_code == 204
    assert response["Allow"] == "POST, OPTIONS"
    assert not [name for name in response.headers if name.lower().startswith("access-control-")]
    assert not Order.objects.exists()


# Messages for people, with no interpreter internals.


def test_a_5000_digit_quantity_in_json_says_what_a_quantity_is(client):
    body = '{"item_id": "synced_product", "quantity": ' + "9" * 5000 + "}"

    response = client.post(API_URL, body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": "Quantity must be a whole number from 1 to 100.",
        "field": "quantity",
    }


def test_a_5000_digit_quantity_in_the_form_says_what_a_quantity_is(client):
    response = client.post(reverse("checkout-create"), {"item_id": "synced_product", "quantity": "9" * 5000})

    assert response.status_code == 400
    assert "Quantity must be a whole number from 1 to 100" in response.content.decode()
    assert "sys." not in response.content.decode()


@pytest.mark.parametrize(
    "body",
    [
        '{"item_id": "synced_product", "quantity": 1',
        '{"item_id": "synced_product", "quantity": NaN}',
        '{"item_id": "synced_product", "quantity": Infinity}',
        "[" * 100_000,
        '{"item_id": ' + "1" * 5000 + ', "quantity": 1}',
    ],
    ids=["truncated", "nan", "infinity", "nested-100000-deep", "huge-number-elsewhere"],
)
def test_unreadable_json_gets_a_message_for_people(client, body):
    response = client.post(API_URL, body, content_type="application/json")

    message = response.json()["error"]["message"]
    assert response.status_code == 400
    assert "Expecting" not in message and "sys." not in message and "recursion" not in message.lower()
    assert 'send {"items"' in message or "must be a string" in message


def test_truncated_json_says_where(client):
    response = client.post(API_URL, '{"item_id": "x",\n "quantity": ', content_type="application/json")

    assert "(line 2, column" in response.json()["error"]["message"]


def test_a_long_float_quantity_is_not_echoed_back(client):
    response = client.post(
        API_URL, json.dumps({"item_id": "synced_product", "quantity": 1.5}), content_type="application/json"
    )

    assert response.json()["error"]["message"] == "Quantity must be a whole number from 1 to 100, not 1.5."
