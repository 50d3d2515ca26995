"""An operator refunds part of an order, then the rest, from the order's admin page."""

import re

import pytest
from playwright.sync_api import expect

from orders.models import OrderStatus
from payments.tests.browser.conftest import only_order

pytestmark = pytest.mark.browser


def test_operator_refunds_part_then_the_rest_and_the_order_page_shows_it(
    page, shop, emulator, buy, admin_login
):
    buy(quantity=2)  # 99.98 USD
    page.click("#pay-card")
    page.wait_for_url(re.compile(re.escape(f"{shop}/success")))
    expect(page.locator("#order-status")).to_have_attribute("data-status", "fulfilled")
    emulator.wait_for_idle(timeout=10)
    order = only_order()
    admin_login()

    page.goto(f"{shop}/admin/orders/order/{order.pk}/change/")
    expect(page.locator("div.field-refunds")).to_contain_text("0.00 USD refunded; 99.98 USD left.")
    page.click("ul.object-tools >> text=Refund…")
    page.fill("#id_amount", "25")
    page.select_option("#id_reason", "requested_by_customer")
    page.click("input[value='Review the refund']")
    expect(page.locator("#refund-confirmation")).to_contain_text("Refund 25.00 USD of order")
    page.click("input[name=confirm]")

    expect(page).to_have_url(re.compile(rf"/admin/orders/order/{order.pk}/change/$"))
    expect(page.locator("ul.messagelist")).to_contain_text("Refunded 25.00 USD")
    emulator.wait_for_idle(timeout=10)
    page.reload()
    expect(page.locator("div.field-refunds")).to_contain_text("25.00 USD refunded; 74.98 USD left.")
    refunds = page.locator("#refunds-group")
    expect(refunds).to_contain_text("25.00 USD")
    expect(refunds).to_contain_text("Succeeded")
    expect(refunds).to_contain_text("Requested by customer")

    page.click("ul.object-tools >> text=Refund…")
    page.click("input[value='Review the refund']")  # no amount: everything left
    expect(page.locator("#refund-confirmation")).to_contain_text("74.98 USD (everything left)")
    page.click("input[name=confirm]")
    expect(page.locator("ul.messagelist")).to_contain_text("Refunded 74.98 USD")
    emulator.wait_for_idle(timeout=10)
    page.reload()

    expect(page.locator("div.field-status_badge")).to_contain_text("Refunded")
    expect(page.locator("div.field-refunds")).to_contain_text("99.98 USD refunded")
    expect(page.locator("#refunds-group")).to_contain_text("74.98 USD")
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (OrderStatus.REFUNDED, 9998)
