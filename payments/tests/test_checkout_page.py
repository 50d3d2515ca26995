"""The checkout page: every product for sale, with a real form that works without JavaScript."""

import re

import pytest
from django.test import Client

from orders.models import Product

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(db) -> list[Product]:
    """Return the seeded demo catalog, priced in Stripe, plus an inactive product."""
    Product.objects.create(sku="retired", name="Retired plan", unit_amount=100, currency="usd", active=False)
    products = list(Product.objects.filter(active=True))
    for product in products:
        product.stripe_price_id = f"price_{product.sku}"
        product.save()
    return products


def test_page_lists_active_products_with_their_prices(client, catalog):
    response = client.get("/")

    html = response.content.decode()
    assert response.status_code == 200
    for name, price in (("Starter plan", "$9.99"), ("Standard plan", "$19.99"), ("Premium plan", "$49.99")):
        assert name in html
        assert price in html
    assert "Retired plan" not in html


def test_each_product_has_a_csrf_protected_form_posting_to_checkout(client, catalog):
    html = client.get("/").content.decode()

    for product in catalog:
        form = re.search(rf'<form[^>]*id="buy-{product.sku}".*?</form>', html, re.S).group(0)
        assert 'method="post"' in form
        assert 'action="/checkout/"' in form
        assert 'name="csrfmiddlewaretoken"' in form
        assert f'<input type="hidden" name="item_id" value="{product.sku}">' in form
        assert 'name="quantity"' in form
        assert 'min="1" max="100"' in form
        assert f'id="pay-{product.sku}"' in form


def test_every_form_and_every_render_gets_a_fresh_checkout_token(client, catalog):
    first = re.findall(r'name="checkout_token" value="([0-9a-f-]{36})"', client.get("/").content.decode())
    second = re.findall(r'name="checkout_token" value="([0-9a-f-]{36})"', client.get("/").content.decode())

    assert len(first) == len(catalog) == 5
    assert len(set(first + second)) == 2 * len(catalog)


def test_checkout_path_serves_the_same_page(client, catalog):
    response = client.get("/checkout/")

    assert response.status_code == 200
    assert 'id="buy-premium_product_demo"' in response.content.decode()


def test_page_is_not_cached_so_going_back_gets_fresh_tokens(client, catalog):
    assert "no-store" in client.get("/")["Cache-Control"]


def test_product_without_a_stripe_price_is_shown_but_cannot_be_paid(client, db):
    html = client.get("/").content.decode()

    assert re.search(r'<button type="submit" id="pay-starter_product_demo"[^>]* disabled', html)
    assert "Not available for payment yet." in html


def test_page_explains_when_stripe_is_not_configured(client, catalog, settings):
    settings.STRIPE_SECRET_KEY = ""

    html = client.get("/").content.decode()

    assert "Payments are not set up." in html
    assert "STRIPE_SECRET_KEY" in html


def test_page_says_nothing_of_configuration_when_stripe_is_configured(client, catalog, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_configured"

    assert "Payments are not set up." not in client.get("/").content.decode()


def test_page_with_an_empty_catalog_says_so(client, db):
    Product.objects.update(active=False)

    assert "Nothing is for sale right now." in client.get("/").content.decode()


def test_page_is_served_to_a_client_that_enforces_csrf(catalog):
    client = Client(enforce_csrf_checks=True)

    response = client.get("/")

    assert response.status_code == 200
    assert "csrftoken" in response.cookies
