"""The gateway against the emulator: plain values out, the app's own exceptions for Stripe's errors."""

import socket
import time
import uuid

import pytest

from payments import gateway
from payments.exceptions import (
    PaymentProviderNotConfigured,
    PaymentProviderRefused,
    PaymentProviderUnavailable,
    StripeResourceMissing,
)
from payments.sessions import SessionDecision, checkout_session_decision

pytestmark = pytest.mark.django_db


def session_create(product, order_id: str, **overrides) -> gateway.CheckoutSession:
    params = {
        "order_id": order_id,
        "line_items": [(product.stripe_price_id, 2)],
        "success_url": "http://shop.test/success?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": f"http://shop.test/cancel?order_id={order_id}",
        "expires_at": int(time.time()) + 3600,
        **overrides,
    }
    return gateway.checkout_session_create(**params)


def test_checkout_session_create_returns_the_session_as_plain_values(synced_product):
    order_id = str(uuid.uuid4())

    session = session_create(synced_product, order_id)

    assert session.id.startswith("cs_test_")
    assert (session.status, session.payment_status) == ("open", "unpaid")
    assert (session.amount_total, session.currency) == (9998, "usd")
    assert (session.metadata, session.client_reference_id) == ({"order_id": order_id}, order_id)
    assert session.url
    assert checkout_session_decision(session=session) == SessionDecision.OPEN


def test_repeated_create_for_one_order_returns_the_same_session(synced_product):
    order_id = str(uuid.uuid4())
    expires_at = int(time.time()) + 3600

    first = session_create(synced_product, order_id, expires_at=expires_at)
    again = session_create(synced_product, order_id, expires_at=expires_at)

    assert again.id == first.id


def test_repeated_create_for_one_order_with_other_parameters_is_refused(synced_product):
    order_id = str(uuid.uuid4())
    session_create(synced_product, order_id, line_items=[(synced_product.stripe_price_id, 1)])

    with pytest.raises(PaymentProviderRefused):
        session_create(synced_product, order_id, line_items=[(synced_product.stripe_price_id, 3)])


def test_retrieve_and_expire(synced_product):
    created = session_create(synced_product, str(uuid.uuid4()))

    assert gateway.checkout_session_retrieve(session_id=created.id).id == created.id
    assert gateway.checkout_session_expire(session_id=created.id).status == "expired"


def test_retrieve_of_an_unknown_session_raises_not_found(emulator):
    with pytest.raises(StripeResourceMissing):
        gateway.checkout_session_retrieve(session_id="cs_test_unknown")


def test_catalog_calls_are_idempotent_per_sku(emulator):
    product_id = gateway.product_create(name="Thing", description="A thing", sku="thing")
    again = gateway.product_create(name="Thing", description="A thing", sku="thing")
    price = gateway.price_create(product_id=product_id, unit_amount=1234, currency="eur", sku="thing")

    assert again == product_id
    assert gateway.price_retrieve(price_id=price.id) == gateway.StripePrice(
        id=price.id, product_id=product_id, unit_amount=1234, currency="eur", active=True
    )


def test_unconfigured_stripe_raises_not_configured_with_the_fix(db, settings):
    settings.STRIPE_SECRET_KEY = ""

    with pytest.raises(PaymentProviderNotConfigured, match="STRIPE_SECRET_KEY") as raised:
        gateway.checkout_session_retrieve(session_id="cs_test_x")

    # A command typed beside a running `dev.py run` lacks its emulator's settings: say where they are,
    # rather than only to start what is already running.
    assert "python3 dev.py run" in str(raised.value)
    assert "in another shell while it runs needs the STRIPE_SECRET_KEY=..." in str(raised.value)
    assert "'other shells'" in str(raised.value)


def test_a_key_stripe_rejects_is_a_refusal(emulator, settings):
    settings.STRIPE_SECRET_KEY = "sk_live_rejected_by_the_emulator"

    with pytest.raises(PaymentProviderRefused, match="credentials"):
        gateway.checkout_session_retrieve(session_id="cs_test_x")


def test_an_unreachable_stripe_is_unavailable(db, settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.STRIPE_SECRET_KEY = "sk_test_unreachable"
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{port}"
    settings.STRIPE_MAX_NETWORK_RETRIES = 0

    with pytest.raises(PaymentProviderUnavailable):
        gateway.checkout_session_retrieve(session_id="cs_test_x")


def test_from_payload_reads_expanded_payment_intent_and_customer_details():
    session = gateway.CheckoutSession.from_payload(
        {
            "id": "cs_test_1",
            "status": "complete",
            "payment_status": "paid",
            "amount_total": 4999,
            "currency": "usd",
            "client_reference_id": "order-1",
            "metadata": {},
            "payment_intent": {"id": "pi_1", "object": "payment_intent"},
            "customer_details": {"email": "buyer@example.com"},
        }
    )

    assert (session.payment_intent_id, session.customer_email) == ("pi_1", "buyer@example.com")
    assert (session.metadata, session.client_reference_id) == ({}, "order-1")
    assert checkout_session_decision(session=session) == SessionDecision.PAID
