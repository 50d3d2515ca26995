"""STRIPE_WEBHOOK_ALLOWED_IPS: off by default; when set, other addresses get 403 and store nothing."""

from ipaddress import ip_network

import pytest

from orders.models import OrderStatus
from payments.models import StripeEvent
from payments.stripe_ips import STRIPE_WEBHOOK_IPS
from payments.tests.conftest import WEBHOOK_SECRET
from payments.tests.events import body, open_order, session_event, sign

pytestmark = pytest.mark.django_db

STRIPE_ADDRESS = STRIPE_WEBHOOK_IPS[0]


def deliver(client, event: dict, **extra):
    """POST an event signed for real with the test secret, from the address given in extra."""
    payload = body(event)
    return client.post(
        "/stripe-webhook",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(payload),
        **extra,
    )


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRETS = [WEBHOOK_SECRET]


@pytest.fixture
def stripe_only(settings):
    settings.STRIPE_WEBHOOK_ALLOWED_IPS = [ip_network(ip) for ip in STRIPE_WEBHOOK_IPS]


def test_off_by_default_any_address_may_deliver(client, product, settings):
    assert settings.STRIPE_WEBHOOK_ALLOWED_IPS == []

    response = deliver(client, session_event("checkout.session.completed", open_order(product)))

    assert response.status_code == 200


def test_a_signed_event_from_another_address_is_refused_with_403_and_not_stored(client, product, stripe_only):
    order = open_order(product)

    response = deliver(client, session_event("checkout.session.completed", order), REMOTE_ADDR="198.51.100.9")

    assert response.status_code == 403
    assert "not one that Stripe sends webhooks from" in response.content.decode()
    assert not StripeEvent.objects.exists()
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING


def test_an_event_from_stripes_address_is_processed(client, product, stripe_only, worker_run):
    order = open_order(product)

    response = deliver(client, session_event("checkout.session.completed", order), REMOTE_ADDR=STRIPE_ADDRESS)

    assert response.status_code == 200
    assert worker_run() == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED


def test_an_ipv4_client_on_a_dual_stack_listener_is_recognised(client, product, stripe_only):
    response = deliver(
        client,
        session_event("checkout.session.completed", open_order(product)),
        REMOTE_ADDR=f"::ffff:{STRIPE_ADDRESS}",
    )

    assert response.status_code == 200


def test_a_spoofed_forwarded_for_does_not_pass_without_trusted_proxies(client, product, stripe_only):
    response = deliver(
        client,
        session_event("checkout.session.completed", open_order(product)),
        REMOTE_ADDR="198.51.100.9",
        HTTP_X_FORWARDED_FOR=STRIPE_ADDRESS,
    )

    assert response.status_code == 403
    assert not StripeEvent.objects.exists()


def test_behind_a_trusted_proxy_the_forwarded_address_is_checked(client, product, stripe_only, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    event = session_event("checkout.session.completed", open_order(product))

    refused = deliver(client, event, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.9")
    allowed = deliver(
        client, event, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"6.6.6.6, {STRIPE_ADDRESS}"
    )

    assert (refused.status_code, allowed.status_code) == (403, 200)


def test_a_network_in_the_list_admits_its_addresses(client, product, settings):
    settings.STRIPE_WEBHOOK_ALLOWED_IPS = [ip_network("203.0.113.0/24")]

    response = deliver(
        client, session_event("checkout.session.completed", open_order(product)), REMOTE_ADDR="203.0.113.200"
    )

    assert response.status_code == 200
