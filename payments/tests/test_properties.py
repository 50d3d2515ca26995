"""Property-based passes over what strangers can send: no input gets a 5xx, no refused one stores a row."""

import json
import time
import uuid

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from orders.models import Order
from payments.models import StripeEvent
from payments.tests.conftest import WEBHOOK_SECRET
from payments.tests.events import sign

pytestmark = pytest.mark.django_db

API_URL = "/api/checkout/create-session"
# Few examples and a fixed order: the suite stays fast, and every run tries the same inputs.
PROPERTY = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# What fits in an HTTP header: printable Latin-1, as a WSGI server hands it over.
header_text = st.text(
    st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=80
)
# Text as JSON allows it, with what no database column holds: a NUL and lone surrogates. A form or a query
# string carries bytes, in which a lone surrogate cannot be written (a server decodes one as U+FFFD).
any_text = st.text(st.characters() | st.sampled_from(["\x00", "\ud800", "\udfff"]), max_size=20)
form_text = st.text(st.characters() | st.just("\x00"), max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=12,
)
item_ids = st.sampled_from(["synced_product", "no_such_item", "", "\x00", "\ud800"]) | any_text
quantities = (
    st.integers(min_value=-5, max_value=105) | st.integers() | st.floats() | st.text(max_size=8) | st.none()
)
checkout_bodies = st.fixed_dictionaries(
    {"item_id": item_ids, "quantity": quantities}, optional={"price": st.integers(), "extra": json_values}
)


def _json_text(value) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


api_bodies = (
    checkout_bodies.map(_json_text)
    | json_values.map(_json_text)
    | st.binary(max_size=120)
    | st.text(max_size=120).map(str.encode)
)
content_types = (
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "text/plain",
            "",
            "application/x-www-form-urlencoded",
        ]
    )
    | header_text
)
idempotency_keys = st.none() | header_text | st.uuids(version=4).map(str) | st.uuids().map(str)


@pytest.fixture
def unlimited(settings):
    settings.CHECKOUT_RATE_LIMIT = None
    settings.CHECKOUT_RATE_LIMIT_GLOBAL = None


@PROPERTY
@given(body=api_bodies, content_type=content_types, key=idempotency_keys, with_session=st.booleans())
@example(
    body=b'{"item_id": "synced_product", "quantity": 1}',
    content_type="application/json",
    key=None,
    with_session=False,
)
def test_json_endpoint_never_fails_and_a_refusal_stores_no_order(
    synced_product, unlimited, body, content_type, key, with_session
):
    client = Client()
    if with_session:
        client.get("/")
    orders_before = Order.objects.count()
    headers = {"Idempotency-Key": key} if key is not None else {}

    response = client.post(API_URL, data=body, content_type=content_type, headers=headers)

    assert response.status_code < 500, response.content
    assert response["Content-Type"] == "application/json"
    if response.status_code >= 400:
        assert Order.objects.count() == orders_before
        assert response.json()["error"]["message"]


@PROPERTY
@given(
    data=st.fixed_dictionaries(
        {},
        optional={
            "item_id": st.sampled_from(["synced_product", "\x00"]) | form_text,
            "quantity": st.integers().map(str) | form_text,
            "checkout_token": st.uuids().map(str) | form_text,
            "unit_amount": form_text,
        },
    )
)
def test_form_post_never_fails_and_a_refusal_stores_no_order(synced_product, unlimited, data):
    client = Client()
    orders_before = Order.objects.count()

    response = client.post(reverse("checkout-create"), data)

    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert Order.objects.count() == orders_before


def _event_shaped(event_type: str, obj) -> bytes:
    return _json_text(
        {"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": event_type, "data": {"object": obj}}
    )


webhook_bodies = (
    st.binary(max_size=200)
    | json_values.map(_json_text)
    | st.builds(
        _event_shaped,
        st.sampled_from(["checkout.session.completed", "checkout.session.expired", "charge.refunded"])
        | st.text(max_size=30),
        json_values,
    )
)
signatures = st.sampled_from(["valid", "wrong secret", "stale", "none"]) | header_text


@PROPERTY
@given(payload=webhook_bodies, signature=signatures)
@example(payload=b"\x80", signature="valid")  # once a 500: stripe-python decoded the body unguarded
def test_webhook_never_fails_and_a_refusal_stores_no_event(product, settings, payload, signature):
    settings.STRIPE_WEBHOOK_SECRETS = [WEBHOOK_SECRET]
    header = {
        "valid": lambda: sign(payload),
        "wrong secret": lambda: sign(payload, secret="whsec_someone_else"),
        "stale": lambda: sign(payload, timestamp=int(time.time()) - 3600),
        "none": lambda: None,
    }.get(signature, lambda: signature)()
    events_before = StripeEvent.objects.count()
    headers = {"Stripe-Signature": header} if header is not None else {}

    response = Client().post(
        "/stripe-webhook", data=payload, content_type="application/json", headers=headers
    )

    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert StripeEvent.objects.count() == events_before


@PROPERTY
@given(
    path=st.sampled_from(["/success", "/cancel", "/", "/admin/login/"]),
    name=st.sampled_from(["session_id", "order_id", "q", "next"]),
    value=form_text,
)
@example(path="/success", name="session_id", value="cs_\x00abc")
def test_a_query_string_never_fails(db, path, name, value):
    response = Client().get(path, {name: value})

    assert response.status_code < 500, response.content
