from unittest import mock

import pytest
from django.db import IntegrityError, OperationalError

pytestmark = pytest.mark.django_db


def test_lost_database_answers_503_with_retry_after(client):
    with mock.patch("orders.selectors.Order.objects.prefetch_related", side_effect=OperationalError("gone")):
        response = client.get("/success", {"session_id": "cs_test_x"})

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "try again" in response.content.decode()


def test_lost_database_answers_json_to_api_clients(client, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_not_called"
    with mock.patch("orders.selectors.Product.objects.filter", side_effect=OperationalError("gone")):
        response = client.post(
            "/api/checkout/create-session",
            data={"item_id": "premium_product_demo", "quantity": 1},
            content_type="application/json",
            headers={"Accept": "application/json"},
        )

    assert response.status_code == 503
    assert "try again" in response.json()["error"]["message"]


def test_other_database_errors_stay_server_errors(client):
    client.raise_request_exception = False
    with mock.patch("orders.selectors.Order.objects.prefetch_related", side_effect=IntegrityError("bug")):
        response = client.get("/success", {"session_id": "cs_test_x"})

    assert response.status_code == 500
