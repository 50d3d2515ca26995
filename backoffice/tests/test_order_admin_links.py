"""The order page links its Stripe ids to Stripe's Dashboard, in the mode of the key, and never to nowhere."""

import pytest
from django.urls import reverse

from orders.models import Order
from payments.gateway import dashboard_url as stripe_dashboard_url
from payments.tests.events import open_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid(product) -> Order:
    order = open_order(product, session_id="cs_test_link_me")
    Order.objects.filter(pk=order.pk).update(stripe_payment_intent_id="pi_link_me")
    return order


def page(admin_client, order: Order) -> str:
    return admin_client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()


def test_a_test_key_links_to_the_dashboards_test_mode(admin_client, paid, settings):
    settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE = "sk_test_abc", ""

    content = page(admin_client, paid)

    assert 'href="https://dashboard.stripe.com/test/checkout/sessions/cs_test_link_me"' in content
    assert 'href="https://dashboard.stripe.com/test/payments/pi_link_me"' in content


def test_a_live_key_links_to_the_live_dashboard(settings):
    settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE = "rk_live_abc", ""

    url = stripe_dashboard_url(kind="payment_intent", object_id="pi_1")

    assert url == "https://dashboard.stripe.com/payments/pi_1"


@pytest.mark.parametrize("key, base", [("sk_test_abc", "http://127.0.0.1:12111"), ("", "")])
def test_no_link_for_the_emulator_or_without_a_key(admin_client, paid, settings, key, base):
    settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE = key, base

    content = page(admin_client, paid)

    assert "cs_test_link_me" in content
    assert "dashboard.stripe.com" not in content
