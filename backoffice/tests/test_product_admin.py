"""Saving a product's price in the admin changes Stripe's price in the same action, or changes nothing."""

import pytest
from django.urls import reverse

from orders.models import Product
from orders.services import order_create
from orders.transitions import order_expire
from payments import gateway
from payments.views.checkout import PRICE_MISMATCH_MESSAGE

pytestmark = pytest.mark.django_db


def form_data(product: Product, **changes) -> dict:
    data = {
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "unit_amount": product.unit_amount,
        "currency": product.currency,
        "active": "on" if product.active else "",
    }
    return {**data, **changes}


def change_url(product: Product) -> str:
    return reverse("admin:orders_product_change", args=[product.pk])


def test_a_new_price_creates_the_stripe_price_and_archives_the_old_one(admin_client, synced_product):
    old_price = synced_product.stripe_price_id

    response = admin_client.post(
        change_url(synced_product), form_data(synced_product, unit_amount=5999), follow=True
    )

    synced_product.refresh_from_db()
    assert synced_product.unit_amount == 5999
    assert synced_product.stripe_price_id != old_price
    new = gateway.price_retrieve(price_id=synced_product.stripe_price_id)
    assert (new.unit_amount, new.currency, new.active) == (5999, "usd", True)
    assert new.product_id == synced_product.stripe_product_id
    assert gateway.price_retrieve(price_id=old_price).active is False
    assert f"{old_price} archived" in response.content.decode()


def test_a_price_changed_back_gets_a_new_price_not_the_archived_one(admin_client, synced_product):
    first = synced_product.stripe_price_id
    admin_client.post(change_url(synced_product), form_data(synced_product, unit_amount=5999))
    synced_product.refresh_from_db()

    admin_client.post(change_url(synced_product), form_data(synced_product, unit_amount=4999))

    synced_product.refresh_from_db()
    assert synced_product.stripe_price_id != first
    assert gateway.price_retrieve(price_id=synced_product.stripe_price_id).active is True


def test_saving_without_a_price_change_leaves_stripe_alone(admin_client, synced_product):
    price = synced_product.stripe_price_id

    admin_client.post(change_url(synced_product), form_data(synced_product, name="Renamed"))

    synced_product.refresh_from_db()
    assert (synced_product.name, synced_product.stripe_price_id) == ("Renamed", price)
    assert gateway.price_retrieve(price_id=price).active is True


def test_stripe_unreachable_refuses_the_price_and_keeps_the_old_one(admin_client, synced_product, settings):
    old_price = synced_product.stripe_price_id
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens on the discard port

    response = admin_client.post(change_url(synced_product), form_data(synced_product, unit_amount=5999))

    assert response.status_code == 200
    assert "The price was not changed" in response.content.decode()
    synced_product.refresh_from_db()
    assert (synced_product.unit_amount, synced_product.stripe_price_id) == (4999, old_price)


def test_the_product_admin_shows_prices_through_the_one_formatter(admin_client, synced_product):
    content = admin_client.get(reverse("admin:orders_product_changelist")).content.decode()

    assert "49.99 USD" in content


def test_a_checkout_that_meets_a_price_mismatch_says_the_price_changed(client, synced_product):
    # The catalog changed behind the admin's back (a direct database edit): Stripe still says 49.99.
    Product.objects.filter(pk=synced_product.pk).update(unit_amount=5999)

    response = client.post("/checkout/", {"item_id": synced_product.sku, "quantity": 1})

    assert response.status_code == 503
    assert PRICE_MISMATCH_MESSAGE.split(",")[0] in response.content.decode().replace("&#x27;", "'")


def test_a_stock_count_changed_while_checkouts_take_from_it_applies_the_difference_typed(
    admin_client, product
):
    Product.objects.filter(pk=product.pk).update(stock=10)
    page = admin_client.get(change_url(product)).content.decode()
    assert 'name="initial-stock" value="10"' in page
    Product.objects.filter(pk=product.pk).update(stock=7)  # three sold while the operator types

    admin_client.post(change_url(product), form_data(product, stock=15, **{"initial-stock": 10}))

    assert Product.objects.get(pk=product.pk).stock == 12


def test_a_stock_decrease_larger_than_what_is_left_is_refused_with_a_message(admin_client, product):
    Product.objects.filter(pk=product.pk).update(stock=1)

    response = admin_client.post(
        change_url(product), form_data(product, stock=0, **{"initial-stock": 5}), follow=True
    )

    assert Product.objects.get(pk=product.pk).stock == 1
    assert "was not changed by -5: checkouts took it down to 1" in response.content.decode()


def test_the_product_list_shows_stock_and_what_open_orders_reserve(admin_client, product):
    Product.objects.filter(pk=product.pk).update(stock=10)
    product.refresh_from_db()
    order_create(lines=[(product, 3)])
    closed = order_create(lines=[(product, 2)])
    order_expire(order_id=closed.pk, source="system")

    changelist = admin_client.get(reverse("admin:orders_product_changelist"))

    (row,) = [p for p in changelist.context["cl"].result_list if p.pk == product.pk]
    assert (row.stock, row.reserved) == (7, 3)
