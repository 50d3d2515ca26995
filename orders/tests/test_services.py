import pytest
from django.db import transaction

from conftest import run_together
from orders.exceptions import InvalidQuantity, ProductUnavailable
from orders.models import Order, OrderStatus, Product
from orders.selectors import products_get_for_sale
from orders.services import (
    order_attach_checkout_session,
    order_create,
    order_get_or_create,
    order_mark_payment_pending,
)

pytestmark = pytest.mark.django_db


def test_order_create_prices_from_the_catalog(product):
    order = order_create(lines=[(product, 3)])

    assert order.status == OrderStatus.PENDING
    line = order.lines.get()
    assert (line.unit_amount, line.quantity, order.amount_subtotal, order.amount_total) == (
        4999,
        3,
        14997,
        14997,
    )
    assert order.currency == "usd"


@pytest.mark.parametrize("quantity", [0, -1, 101, 2.5, "3", True, None])
def test_order_create_refuses_quantity_outside_1_to_100(product, quantity):
    with pytest.raises(InvalidQuantity):
        order_create(lines=[(product, quantity)])


def test_order_create_refuses_inactive_product(product):
    product.active = False
    product.save()

    with pytest.raises(ProductUnavailable):
        order_create(lines=[(product, 1)])


def test_seeded_catalog_has_premium_product_at_49_99_usd():
    premium = Product.objects.get(sku="premium_product_demo")

    assert (premium.unit_amount, premium.currency, premium.active) == (4999, "usd", True)


def test_products_get_for_sale_hides_inactive_and_unknown_naming_the_item(product):
    product.active = False
    product.save()

    with pytest.raises(ProductUnavailable) as inactive:
        products_get_for_sale(skus=[product.sku])
    with pytest.raises(ProductUnavailable) as unknown:
        products_get_for_sale(skus=["nope"])
    assert (inactive.value.sku, unknown.value.sku) == (product.sku, "nope")


def test_session_is_attached_only_once(product):
    order = order_create(lines=[(product, 1)])

    assert order_attach_checkout_session(order_id=order.pk, session_id="cs_test_1") is True
    assert order_attach_checkout_session(order_id=order.pk, session_id="cs_test_2") is False
    order.refresh_from_db()
    assert order.stripe_checkout_session_id == "cs_test_1"


def test_payment_pending_is_marked_on_open_orders_only(product):
    order = order_create(lines=[(product, 1)])

    assert order_mark_payment_pending(order_id=order.pk, stripe_event_id="evt_1") is True
    order.refresh_from_db()
    assert order.payment_pending is True


def test_order_get_or_create_creates_once_then_finds_the_same_order(product):
    first, first_created = order_get_or_create(lines=[(product, 2)], checkout_token="token-1")
    again, again_created = order_get_or_create(lines=[(product, 2)], checkout_token="token-1")

    assert (first_created, again_created) == (True, False)
    assert again.pk == first.pk
    assert Order.objects.count() == 1
    assert again.checkout_token == "token-1"


def test_order_get_or_create_gives_each_token_its_own_order(product):
    one, _ = order_get_or_create(lines=[(product, 1)], checkout_token="token-1")
    two, _ = order_get_or_create(lines=[(product, 1)], checkout_token="token-2")

    assert one.pk != two.pk


def test_order_get_or_create_inside_a_transaction_leaves_it_usable(product):
    with transaction.atomic():
        order_get_or_create(lines=[(product, 1)], checkout_token="token-1")
        _, created = order_get_or_create(lines=[(product, 1)], checkout_token="token-1")
        # The losing INSERT rolled back to its savepoint, so the transaction can still write.
        order_create(lines=[(product, 3)])

    assert created is False
    assert Order.objects.count() == 2


def test_order_get_or_create_still_refuses_a_bad_quantity(product):
    with pytest.raises(InvalidQuantity):
        order_get_or_create(lines=[(product, 0)], checkout_token="token-1")
    assert not Order.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_submits_of_one_token_make_one_order(product):
    def submit() -> tuple[str, bool]:
        order, created = order_get_or_create(lines=[(product, 1)], checkout_token="double-click")
        return str(order.pk), created

    results = run_together([submit] * 8)

    assert len({order_id for order_id, _ in results}) == 1
    assert [created for _, created in results].count(True) == 1
    assert Order.objects.count() == 1
