"""The /v1 API through stripe-python: objects, expansion, errors, auth, idempotency."""

from __future__ import annotations

import base64
import threading
import time
from typing import Any

import pytest
import requests
import stripe

from stripe_emulator import API_VERSION

from .conftest import API_KEY, session_params


def test_api_version_matches_stripe_python() -> None:
    assert stripe.api_version == API_VERSION


def test_product_and_price_round_trip(client: stripe.StripeClient) -> None:
    product = client.v1.products.create(
        params={"name": "Widget", "description": "A widget", "metadata": {"sku": "w-1"}}
    )
    assert product.id.startswith("prod_")
    assert product.object == "product"
    assert (product.name, product.description, product.active) == ("Widget", "A widget", True)
    assert product.metadata.to_dict() == {"sku": "w-1"}
    assert product.livemode is False

    price = client.v1.prices.create(
        params={"product": product.id, "unit_amount": 4999, "currency": "USD", "metadata": {"sku": "w-1"}}
    )
    assert price.id.startswith("price_")
    assert (price.object, price.type, price.currency) == ("price", "one_time", "usd")
    assert (price.unit_amount, str(price.unit_amount_decimal)) == (4999, "4999")
    assert price.product == product.id and price.active is True

    again = client.v1.prices.retrieve(price.id, params={"expand": ["product"]})
    assert again.product.id == product.id and again.product.name == "Widget"
    assert client.v1.products.retrieve(product.id).name == "Widget"


def test_price_with_product_data_creates_the_product(client: stripe.StripeClient) -> None:
    price = client.v1.prices.create(
        params={"product_data": {"name": "Inline"}, "unit_amount": 0, "currency": "eur"}
    )
    assert client.v1.products.retrieve(price.product).name == "Inline"


def test_list_prices_filters_and_paginates(client: stripe.StripeClient) -> None:
    first = client.v1.products.create(params={"name": "First"})
    second = client.v1.products.create(params={"name": "Second"})
    ids = [
        client.v1.prices.create(params={"product": first.id, "unit_amount": n, "currency": "usd"}).id
        for n in range(5)
    ]
    client.v1.prices.create(
        params={"product": second.id, "unit_amount": 1, "currency": "usd", "active": False}
    )
    page = client.v1.prices.list(params={"product": first.id, "limit": 2})
    assert [p.id for p in page.data] == ids[::-1][:2] and page.has_more
    assert [p.id for p in page.auto_paging_iter()] == ids[::-1]
    inactive = client.v1.prices.list(params={"active": False})
    assert [p.product for p in inactive.data] == [second.id]


def test_session_create_with_every_parameter(client: stripe.StripeClient, price: stripe.Price) -> None:
    expires_at = int(time.time()) + 3600
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [
                {"price": price.id, "quantity": 2},
                {
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 500,
                        "product_data": {"name": "Gift wrap"},
                    },
                    "quantity": 1,
                },
            ],
            "success_url": "http://shop.test/ok?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://shop.test/cancel",
            "client_reference_id": "order-42",
            "metadata": {"order_id": "42"},
            "customer_email": "buyer@example.com",
            "expires_at": expires_at,
            "payment_intent_data": {"metadata": {"order_id": "42"}},
            "locale": "auto",
            "submit_type": "pay",
        }
    )
    assert session.id.startswith("cs_test_") and len(session.id) >= 60
    assert session.object == "checkout.session"
    assert (session.status, session.payment_status, session.mode) == ("open", "unpaid", "payment")
    assert (session.amount_subtotal, session.amount_total, session.currency) == (
        2 * 4999 + 500,
        2 * 4999 + 500,
        "usd",
    )
    assert session.client_reference_id == "order-42"
    assert session.metadata.to_dict() == {"order_id": "42"}
    assert session.customer_email == "buyer@example.com"
    assert session.customer_details is None and session.payment_intent is None
    assert session.expires_at == expires_at
    assert session.cancel_url == "http://shop.test/cancel"
    assert session.url.endswith(f"/pay/{session.id}")
    assert session.payment_method_types == ["card"] and session.ui_mode == "hosted"
    assert session.total_details.amount_tax == 0 and session.currency_conversion is None
    assert (session.locale, session.submit_type, session.livemode) == ("auto", "pay", False)
    assert "line_items" not in session

    fetched = client.v1.checkout.sessions.retrieve(session.id)
    assert fetched.to_dict() == session.to_dict()


def test_session_defaults(client: stripe.StripeClient, price: stripe.Price) -> None:
    before = int(time.time())
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": "http://shop.test/ok",
        }
    )
    assert before + 24 * 3600 <= session.expires_at <= int(time.time()) + 24 * 3600
    assert session.cancel_url is None and session.metadata.to_dict() == {}


def test_expand_line_items_and_payment_intent(
    emu: Any, client: stripe.StripeClient, price: stripe.Price
) -> None:
    session = client.v1.checkout.sessions.create(
        params=session_params(
            price.id,
            line_items=[{"price": price.id, "quantity": 3}],
            payment_intent_data={"metadata": {"order_id": "7"}},
        )
    )
    unpaid = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["line_items", "payment_intent"]}
    )
    assert unpaid.payment_intent is None
    items = unpaid.line_items
    assert items.object == "list" and items.has_more is False
    assert items.url == f"/v1/checkout/sessions/{session.id}/line_items"
    (item,) = items.data
    assert item.id.startswith("li_") and item.object == "item"
    assert (item.quantity, item.amount_subtotal, item.amount_total) == (3, 14997, 14997)
    assert item.description == "Test widget" and item.price.id == price.id

    emu.pay(session.id)
    paid = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent", "line_items.data.price.product"]}
    )
    intent = paid.payment_intent
    assert intent.id.startswith("pi_") and intent.object == "payment_intent"
    assert (intent.status, intent.amount, intent.currency) == ("succeeded", 14997, "usd")
    assert intent.metadata.to_dict() == {"order_id": "7"}
    assert paid.line_items.data[0].price.product.name == "Test widget"
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"

    listed = client.v1.checkout.sessions.line_items.list(session.id)
    assert [i.id for i in listed.data] == [item.id]


def test_list_sessions_filters(emu: Any, client: stripe.StripeClient, price: stripe.Price) -> None:
    paid = client.v1.checkout.sessions.create(params=session_params(price.id))
    open_one = client.v1.checkout.sessions.create(params=session_params(price.id))
    intent_id = emu.pay(paid.id)["session"]["payment_intent"]
    by_intent = client.v1.checkout.sessions.list(params={"payment_intent": intent_id})
    assert [s.id for s in by_intent.data] == [paid.id]
    by_status = client.v1.checkout.sessions.list(params={"status": "open"})
    assert [s.id for s in by_status.data] == [open_one.id]
    assert [s.id for s in client.v1.checkout.sessions.list().data] == [open_one.id, paid.id]


def test_expire_via_api(client: stripe.StripeClient, session: Any) -> None:
    expired = client.v1.checkout.sessions.expire(session.id)
    assert (expired.status, expired.url) == ("expired", None)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.checkout.sessions.expire(session.id)
    assert "can be expired" in info.value.user_message
    (event,) = client.v1.events.list().data
    assert event.type == "checkout.session.expired"
    assert event.data.object.status == "expired"
    assert event.request.id == expired.last_response.request_id


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        (
            {"line_items": [{"price": "PRICE", "quantity": 0}]},
            "line_items[0][quantity]",
            "parameter_invalid_integer",
        ),
        (
            {"line_items": [{"price": "PRICE", "quantity": 1000000}]},
            "line_items[0][quantity]",
            "parameter_invalid_integer",
        ),
        (
            {"line_items": [{"price": "PRICE", "quantity": "two"}]},
            "line_items[0][quantity]",
            "parameter_invalid_integer",
        ),
        ({"line_items": [{"price": "PRICE"}]}, "line_items[0][quantity]", "parameter_missing"),
        (
            {"line_items": [{"price": "price_missing", "quantity": 1}]},
            "line_items[0][price]",
            "resource_missing",
        ),
        ({"line_items": [{"quantity": 1}]}, "line_items[0][price]", "parameter_missing"),
        (
            {"line_items": [{"price": "PRICE", "quantity": 1, "color": "red"}]},
            "line_items[0][color]",
            "parameter_unknown",
        ),
        ({"line_items": None}, "line_items", "parameter_missing"),
        ({"mode": None}, "mode", "parameter_missing"),
        ({"mode": "subscription"}, "mode", None),
        ({"success_url": None}, "success_url", "parameter_missing"),
        ({"success_url": "not a url"}, "success_url", "url_invalid"),
        ({"foo": "bar"}, "foo", "parameter_unknown"),
        ({"client_reference_id": "x" * 201}, "client_reference_id", None),
        ({"metadata": {f"k{n}": "v" for n in range(51)}}, "metadata", None),
        ({"metadata": {"k" * 41: "v"}}, "metadata[" + "k" * 41 + "]", None),
        ({"metadata": {"k": "v" * 501}}, "metadata[k]", None),
        ({"expires_at": 1}, "expires_at", None),
        ({"expires_at": "EXPIRES_SOON"}, "expires_at", None),
        ({"expires_at": "EXPIRES_LATE"}, "expires_at", None),
        ({"customer_email": "nope"}, "customer_email", "email_invalid"),
        (
            {"payment_intent_data": {"capture_method": "manual"}},
            "payment_intent_data[capture_method]",
            "parameter_unknown",
        ),
    ],
)
def test_session_validation_errors(
    client: stripe.StripeClient, price: stripe.Price, params: dict[str, Any], param: str, code: str | None
) -> None:
    now = int(time.time())
    replacements = {"PRICE": price.id, "EXPIRES_SOON": now + 600, "EXPIRES_LATE": now + 25 * 3600}
    merged = session_params(price.id)
    for key, value in params.items():
        if key == "line_items":
            value = (
                [{k: replacements.get(v, v) for k, v in item.items()} for item in value] if value else None
            )
        merged[key] = replacements.get(value, value) if isinstance(value, str) else value
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.checkout.sessions.create(params=merged)
    assert info.value.http_status == 400
    assert info.value.param == param
    assert info.value.code == code
    assert info.value.error.type == "invalid_request_error"
    assert client.v1.checkout.sessions.list().data == []


def test_inactive_price_is_refused(client: stripe.StripeClient) -> None:
    price = client.v1.prices.create(
        params={"product_data": {"name": "Old"}, "unit_amount": 100, "currency": "usd", "active": False}
    )
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.checkout.sessions.create(params=session_params(price.id))
    assert info.value.param == "line_items[0][price]"


def test_price_validation(client: stripe.StripeClient) -> None:
    product = client.v1.products.create(params={"name": "P"})
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.prices.create(params={"product": product.id, "unit_amount": -1, "currency": "usd"})
    assert info.value.param == "unit_amount"
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.prices.create(params={"product": "prod_nope", "unit_amount": 1, "currency": "usd"})
    assert (info.value.param, info.value.code) == ("product", "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.products.create(params={"name": ""})
    assert (info.value.param, info.value.code) == ("name", "parameter_invalid_empty")


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.v1.checkout.sessions.retrieve("cs_test_nope"),
        lambda c: c.v1.prices.retrieve("price_nope"),
        lambda c: c.v1.products.retrieve("prod_nope"),
        lambda c: c.v1.events.retrieve("evt_nope"),
        lambda c: c.v1.payment_intents.retrieve("pi_nope"),
        lambda c: c.v1.checkout.sessions.expire("cs_test_nope"),
    ],
)
def test_unknown_ids_are_404_resource_missing(client: stripe.StripeClient, call: Any) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        call(client)
    assert (info.value.http_status, info.value.code, info.value.param) == (404, "resource_missing", "id")
    assert "No such" in info.value.user_message


def test_unknown_route(emu: Any) -> None:
    response = requests.get(
        f"{emu.base_url}/v1/foo", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5
    )
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("Unrecognized request URL (GET: /v1/foo).")
    wrong_method = requests.delete(
        f"{emu.base_url}/v1/checkout/sessions", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5
    )
    assert wrong_method.status_code == 404
    assert response.headers["Request-Id"].startswith("req_")


@pytest.mark.parametrize("key", ["sk_live_123456789012", "pk_test_123456789", "nope"])
def test_bad_api_key_is_authentication_error(emu: Any, key: str) -> None:
    client = stripe.StripeClient(key, base_addresses={"api": emu.base_url}, max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError) as info:
        client.v1.products.create(params={"name": "x"})
    assert info.value.http_status == 401
    assert info.value.user_message.startswith("Invalid API Key provided: ")
    assert key not in info.value.user_message or len(key) <= 4


def test_missing_key_and_basic_auth(emu: Any) -> None:
    missing = requests.get(f"{emu.base_url}/v1/events", timeout=5)
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert "did not provide an API key" in missing.json()["error"]["message"]
    basic = base64.b64encode(f"{API_KEY}:".encode()).decode()
    ok = requests.get(f"{emu.base_url}/v1/events", headers={"Authorization": f"Basic {basic}"}, timeout=5)
    assert ok.status_code == 200 and ok.json()["object"] == "list"
    assert requests.get(f"{emu.base_url}/v1/events", auth=(API_KEY, ""), timeout=5).status_code == 200


def test_every_response_has_a_request_id(client: stripe.StripeClient) -> None:
    product = client.v1.products.create(params={"name": "x"})
    assert product.last_response.request_id.startswith("req_")
    assert product.last_response.headers["Stripe-Version"] == API_VERSION


def test_idempotent_replay(client: stripe.StripeClient, price: stripe.Price) -> None:
    params = session_params(price.id, metadata={"order_id": "1"})
    first = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "order-1"})
    second = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "order-1"})
    assert second.id == first.id
    assert second.last_response.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert len(client.v1.checkout.sessions.list().data) == 1


def test_idempotent_replay_over_raw_http(emu: Any, price: stripe.Price) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": "raw-1"}
    body = {"name": "Raw product"}
    first = requests.post(f"{emu.base_url}/v1/products", data=body, headers=headers, timeout=5)
    second = requests.post(f"{emu.base_url}/v1/products", data=body, headers=headers, timeout=5)
    assert first.status_code == second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.content == first.content
    assert second.headers["Request-Id"] != first.headers["Request-Id"]


def test_idempotency_conflicts(client: stripe.StripeClient, price: stripe.Price) -> None:
    client.v1.checkout.sessions.create(params=session_params(price.id), options={"idempotency_key": "k"})
    with pytest.raises(stripe.IdempotencyError) as info:
        client.v1.checkout.sessions.create(
            params=session_params(price.id, client_reference_id="other"), options={"idempotency_key": "k"}
        )
    assert "same parameters" in info.value.user_message
    assert info.value.http_status == 400
    with pytest.raises(stripe.IdempotencyError):
        client.v1.products.create(params={"name": "x"}, options={"idempotency_key": "k"})


def test_idempotency_keys_are_scoped_per_api_key(
    emu: Any, client: stripe.StripeClient, price: stripe.Price
) -> None:
    other = stripe.StripeClient(
        "sk_test_someone_else", base_addresses={"api": emu.base_url}, max_network_retries=0
    )
    first = client.v1.products.create(params={"name": "a"}, options={"idempotency_key": "s"})
    second = other.v1.products.create(params={"name": "b"}, options={"idempotency_key": "s"})
    assert first.id != second.id


def test_failed_requests_are_not_saved_for_replay(client: stripe.StripeClient, price: stripe.Price) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.create(
            params=session_params("price_missing"), options={"idempotency_key": "retry"}
        )
    fixed = client.v1.checkout.sessions.create(
        params=session_params(price.id), options={"idempotency_key": "retry"}
    )
    assert fixed.status == "open"


def test_concurrent_requests_with_one_key_create_one_object(
    client: stripe.StripeClient, price: stripe.Price
) -> None:
    ids: list[str] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        session = client.v1.checkout.sessions.create(
            params=session_params(price.id), options={"idempotency_key": "race"}
        )
        ids.append(session.id)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 8 and len(set(ids)) == 1
    assert len(client.v1.checkout.sessions.list().data) == 1


def test_unexpandable_paths_are_refused_before_anything_is_created(
    client: stripe.StripeClient, price: stripe.Price
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.checkout.sessions.create(params=session_params(price.id, expand=["customer"]))
    assert info.value.param == "expand" and "(customer)" in info.value.user_message
    assert client.v1.checkout.sessions.list().data == []
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.prices.list(params={"expand": ["data.nope"]})


def test_expand_inside_lists(client: stripe.StripeClient, price: stripe.Price) -> None:
    listed = client.v1.prices.list(params={"expand": ["data.product"]})
    assert listed.data[0].product.name == "Test widget"
    session = client.v1.checkout.sessions.create(params=session_params(price.id))
    items = client.v1.checkout.sessions.line_items.list(session.id, params={"expand": ["data.price.product"]})
    assert items.data[0].price.product.name == "Test widget"
    sessions = client.v1.checkout.sessions.list(params={"expand": ["data.line_items"]})
    assert sessions.data[0].line_items.data[0].quantity == 1
