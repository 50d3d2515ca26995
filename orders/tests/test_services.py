import pytest

from orders.exceptions import InvalidQuantity, ProductUnavailable
from orders.models import OrderStatus, Product
from orders.selectors import product_get_for_sale
from orders.services import order_attach_checkout_session, order_create, order_mark_payment_pending

pytestmark = pytest.mark.django_db


def test_order_create_prices_from_the_catalog(product):
    order = order_create(product=product, quantity=3)

    assert order.status == OrderStatus.PENDING
    assert (order.unit_amount, order.amount_total, order.currency) == (4999, 14997, "usd")


@pytest.mark.parametrize("quantity", [0, -1, 101, 2.5, "3", True, None])
def test_order_create_refuses_quantity_outside_1_to_100(product, quantity):
    with pytest.raises(InvalidQuantity):
        order_create(product=product, quantity=quantity)


def test_order_create_refuses_inactive_product(product):
    product.active = False
    product.save()

    with pytest.raises(ProductUnavailable):
        order_create(product=product, quantity=1)


def test_seeded_catalog_has_premium_product_at_49_99_usd():
    premium = Product.objects.get(sku="premium_product_demo")

    assert (premium.unit_amount, premium.currency, premium.active) == (4999, "usd", True)


def test_product_get_for_sale_hides_inactive_and_unknown(product):
    product.active = False
    product.save()

    with pytest.raises(ProductUnavailable):
        product_get_for_sale(sku=product.sku)
    with pytest.raises(ProductUnavailable):
        product_get_for_sale(sku="nope")


def test_session_is_attached_only_once(product):
    order = order_create(product=product, quantity=1)

    assert order_attach_checkout_session(order_id=order.pk, session_id="cs_test_1") is True
    assert order_attach_checkout_session(order_id=order.pk, session_id="cs_test_2") is False
    order.refresh_from_db()
    assert order.stripe_checkout_session_id == "cs_test_1"


def test_payment_pending_is_marked_on_open_orders_only(product):
    order = order_create(product=product, quantity=1)

    assert order_mark_payment_pending(order_id=order.pk, stripe_event_id="evt_1") is True
    order.refresh_from_db()
    assert order.payment_pending is True
