"""A cart in a real browser: several items, a promotion code and a shipping address on the payment page."""

import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from orders.models import OrderStatus, Product
from payments import gateway
from payments.tests.browser.conftest import only_order

pytestmark = pytest.mark.browser


@pytest.fixture
def goods(shop, emulator, settings):
    """Two shipped products in stock, a shipping rate, the code SAVE10, and tax for Germany."""
    Product.objects.create(sku="mug", name="Mug", unit_amount=1500, stock=10, requires_shipping=True)
    Product.objects.create(
        sku="sticker", name="Sticker pack", unit_amount=500, stock=25, requires_shipping=True
    )
    call_command("sync_catalog", verbosity=0)
    rate = gateway.client().v1.shipping_rates.create(
        params={
            "display_name": "Parcel",
            "type": "fixed_amount",
            "fixed_amount": {"amount": 499, "currency": "usd"},
        }
    )
    emulator.create_promotion_code(code="SAVE10", percent_off=10)
    settings.CHECKOUT_PROMOTION_CODES = True
    settings.CHECKOUT_AUTOMATIC_TAX = True
    settings.CHECKOUT_SHIPPING_COUNTRIES = ["DE", "FR"]
    settings.CHECKOUT_SHIPPING_RATES = [rate.id]
    return shop


def test_a_cart_with_a_promotion_code_and_an_address_is_paid_and_fulfilled(page, goods, emulator, wait_until):
    page.goto(f"{goods}/")
    page.locator("#quantity-mug").fill("2")
    page.click("#add-mug")
    page.goto(f"{goods}/")
    page.click("#add-sticker")
    expect(page.locator("#cart-subtotal")).to_have_text("$35.00")
    page.locator("#quantity-sticker").fill("3")
    page.click("#update-sticker")
    expect(page.locator("#cart-subtotal")).to_have_text("$45.00")
    expect(page.locator("#cart-link")).to_have_text("Cart (2)")

    page.click("#checkout")
    page.wait_for_url(re.compile(r"/pay/cs_"))
    page.fill("#promotion-code", "SAVE10")
    page.click("#apply-promotion-code")
    expect(page.locator("#discount")).to_contain_text("4.50")
    page.fill("#shipping-name", "Erika Mustermann")
    page.fill("#shipping-line1", "Hauptstr. 1")
    page.fill("#shipping-city", "Berlin")
    page.fill("#shipping-postal_code", "10115")
    page.select_option("#shipping-country", "DE")
    page.click("#pay-card")
    page.wait_for_url(re.compile(re.escape(f"{goods}/success")))

    # 45.00 less 4.50, plus 4.99 shipping, plus 19 % tax on 45.49: 8.64.
    expect(page.locator("#order-discount")).to_contain_text("4.50")
    expect(page.locator("#order-shipping")).to_have_text("$4.99")
    expect(page.locator("#order-tax")).to_have_text("$8.64")
    expect(page.locator("#order-total")).to_have_text("$54.13")
    expect(page.locator("#order-address")).to_contain_text("10115 Berlin")
    expect(page.locator("#order-status")).to_have_attribute("data-status", "fulfilled")
    order = only_order()
    assert (order.status, order.amount_total, order.promotion_code[:6]) == (
        OrderStatus.FULFILLED,
        5413,
        "promo_",
    )
    assert dict(Product.objects.filter(sku__in=["mug", "sticker"]).values_list("sku", "stock")) == {
        "mug": 8,
        "sticker": 22,
    }
    page.goto(f"{goods}/cart/")
    expect(page.locator("main")).to_contain_text("Your cart is empty")
