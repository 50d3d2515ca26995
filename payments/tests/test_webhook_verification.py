"""The webhook takes only genuine Stripe events, signed for real; anything else is refused, stored nowhere."""

import io
import json
import time

import pytest
from django.core.handlers.asgi import ASGIRequest
from django.db import connection

from orders.models import OrderStatus
from payments.models import StripeEvent
from payments.tests.conftest import WEBHOOK_SECRET
from payments.tests.events import body, deliver, open_order, session_event, sign
from payments.tests.signing import webhook_signature_header
from payments.views import webhook
from payments.views.webhook import stripe_webhook

pytestmark = pytest.mark.django_db

OLD_SECRET = "whsec_old_before_rotation"


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRETS = [WEBHOOK_SECRET]


def assert_refused(response, status: int, reason: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/plain")
    assert reason in response.content.decode()
    assert not StripeEvent.objects.exists()


def test_event_signed_with_the_secret_is_stored_and_processed(client, product, worker_run):
    order = open_order(product)
    payload = body(session_event("checkout.session.completed", order))

    response = deliver(
        client, payload, signature=webhook_signature_header(payload=payload, secret=WEBHOOK_SECRET)
    )

    assert response.status_code == 200
    assert response.content == b"received: processing queued"
    worker_run()
    assert StripeEvent.objects.get().status == "processed"
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED


def test_signature_made_with_another_secret_is_refused(client, product):
    payload = body(session_event("checkout.session.completed", open_order(product)))

    response = deliver(client, payload, signature=sign(payload, secret="whsec_someone_else"))

    assert_refused(response, 400, "does not match any configured webhook secret")


def test_body_changed_after_signing_is_refused(client, product):
    order = open_order(product)
    payload = body(session_event("checkout.session.completed", order))
    tampered = payload.replace(str(order.amount_total).encode(), b"1")

    response = deliver(client, tampered, signature=sign(payload))

    assert_refused(response, 400, "does not match")


def test_stale_timestamp_is_refused(client, product):
    payload = body(session_event("checkout.session.completed", open_order(product)))

    response = deliver(client, payload, signature=sign(payload, timestamp=int(time.time()) - 301))

    assert_refused(response, 400, "outside the 300 s tolerance")


def test_timestamp_within_tolerance_is_accepted(client, product):
    payload = body(session_event("checkout.session.completed", open_order(product)))

    response = deliver(client, payload, signature=sign(payload, timestamp=int(time.time()) - 240))

    assert response.status_code == 200


def test_future_timestamp_beyond_tolerance_is_refused(client, product):
    payload = body(session_event("checkout.session.completed", open_order(product)))

    response = deliver(client, payload, signature=sign(payload, timestamp=int(time.time()) + 3600))

    assert_refused(response, 400, "outside the 300 s tolerance (in the future)")


@pytest.mark.parametrize("signer", [WEBHOOK_SECRET, OLD_SECRET])
def test_during_rotation_either_secret_is_accepted(client, product, settings, signer):
    settings.STRIPE_WEBHOOK_SECRETS = [WEBHOOK_SECRET, OLD_SECRET]
    payload = body(session_event("checkout.session.completed", open_order(product)))

    response = deliver(client, payload, signature=sign(payload, secret=signer))

    assert response.status_code == 200
    assert StripeEvent.objects.count() == 1


def test_header_with_several_v1_signatures_is_accepted_when_one_matches(client, product):
    # During a rotation in Stripe's dashboard, Stripe signs with both secrets: t=...,v1=<new>,v1=<old>.
    payload = body(session_event("checkout.session.completed", open_order(product)))
    timestamp = int(time.time())
    other = sign(payload, secret="whsec_unknown", timestamp=timestamp).split(",")[1]
    ours = sign(payload, timestamp=timestamp).split(",")[1]

    response = deliver(client, payload, signature=f"t={timestamp},{other},{ours}")

    assert response.status_code == 200


def test_v0_only_header_is_refused(client, product):
    payload = body(session_event("checkout.session.completed", open_order(product)))
    v0 = sign(payload).replace("v1=", "v0=")

    response = deliver(client, payload, signature=v0)

    assert_refused(response, 400, "no v1 signature")


def test_missing_signature_header_is_refused(client, product):
    payload = body(session_event("checkout.session.completed", open_order(product)))

    response = client.post("/stripe-webhook", data=payload, content_type="application/json")

    assert_refused(response, 400, "Missing Stripe-Signature header")


def test_garbled_signature_header_is_refused(client):
    response = deliver(client, b"{}", signature="not a signature")

    assert_refused(response, 400, "Malformed Stripe-Signature header")


def test_no_secret_configured_refuses_everything(client, settings, product):
    settings.STRIPE_WEBHOOK_SECRETS = []
    payload = body(session_event("checkout.session.completed", open_order(product)))

    response = deliver(client, payload)

    assert_refused(response, 400, "No webhook secret is configured")


def test_signed_body_that_is_not_json_is_refused(client):
    payload = b"this is not json"

    response = deliver(client, payload)

    assert_refused(response, 400, "not JSON")


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"object": "charge", "id": "ch_1"},
        {"object": "event", "type": "checkout.session.completed", "data": {}},
        {"object": "event", "id": "evt_1", "data": {"object": {}}},
        {"object": "event", "id": "evt_1", "type": "x", "data": "not an object"},
    ],
    ids=["list", "not-an-event", "no-id", "no-type", "data-not-object"],
)
def test_signed_json_that_is_not_an_event_is_refused(client, document):
    response = deliver(client, json.dumps(document).encode())

    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


def test_body_over_the_size_limit_is_refused_with_413(client, settings, product):
    settings.STRIPE_WEBHOOK_MAX_BYTES = 1024
    evt = session_event("checkout.session.completed", open_order(product))
    evt["data"]["object"]["metadata"]["padding"] = "x" * 2000

    response = deliver(client, evt)

    assert_refused(response, 413, "limit is 1024 bytes")


def test_get_is_refused_with_405(client):
    response = client.get("/stripe-webhook")

    assert response.status_code == 405
    assert response["Allow"] == "POST"


@pytest.mark.parametrize("url", ["/stripe-webhook", "/stripe-webhook/"])
def test_with_or_without_trailing_slash_the_event_is_taken_without_redirect(client, product, url):
    response = deliver(client, session_event("checkout.session.completed", open_order(product)), url=url)

    assert response.status_code == 200
    assert StripeEvent.objects.count() == 1


def test_no_csrf_token_is_needed(product):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)

    response = deliver(strict, session_event("checkout.session.completed", open_order(product)))

    assert response.status_code == 200


def test_during_rotation_a_stale_signature_is_reported_as_stale(client, product, settings):
    settings.STRIPE_WEBHOOK_SECRETS = [OLD_SECRET, WEBHOOK_SECRET]
    payload = body(session_event("checkout.session.completed", open_order(product)))

    response = deliver(
        client, payload, signature=sign(payload, secret=OLD_SECRET, timestamp=int(time.time()) - 400)
    )

    assert_refused(response, 400, "outside the 300 s tolerance")


def test_body_over_the_size_limit_without_a_content_length_is_refused_with_413(settings, product):
    # Under ASGI a chunked body arrives with no Content-Length: the length read is checked too.
    settings.STRIPE_WEBHOOK_MAX_BYTES = 1024
    payload = body(session_event("checkout.session.completed", open_order(product))) + b" " * 2000
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/stripe-webhook",
        "query_string": b"",
        "headers": [(b"stripe-signature", sign(payload).encode()), (b"content-type", b"application/json")],
    }
    request = ASGIRequest(scope, io.BytesIO(payload))

    response = stripe_webhook(request)

    assert_refused(response, 413, "limit is 1024 bytes")


@pytest.mark.django_db(transaction=True)
def test_webhook_runs_outside_the_request_transaction_even_with_atomic_requests(client, product, monkeypatch):
    # The event and its task must commit in a transaction of their own, whatever ATOMIC_REQUESTS says.
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    seen = []
    real_intake = webhook.stripe_event_intake

    def spy(**kwargs):
        seen.append(connection.in_atomic_block)
        return real_intake(**kwargs)

    monkeypatch.setattr(webhook, "stripe_event_intake", spy)

    response = deliver(client, session_event("checkout.session.completed", open_order(product)))

    assert response.status_code == 200
    assert seen == [False]
