"""The whole purchase in a real browser, with the webhook and the redirect racing both ways."""

import re

import pytest
from playwright.sync_api import expect

from orders.models import Order, OrderStatus, OrderTransition
from payments.tests.browser.conftest import PRODUCT_SKU, only_order

pytestmark = pytest.mark.browser


def transitions_of(order) -> list[tuple[str, str]]:
    return list(OrderTransition.objects.filter(order=order).values_list("from_status", "to_status"))


def admin_transitions(page, shop: str, order) -> list[tuple[str, str]]:
    """Return the (from, to) labels of the transitions the admin shows on the order's page."""
    page.goto(f"{shop}/admin/orders/order/{order.pk}/change/")
    rows = page.locator("#transitions-group tbody tr.has_original")
    return [
        (
            row.locator("td.field-from_badge").inner_text().strip(),
            row.locator("td.field-to_badge").inner_text().strip(),
        )
        for row in rows.all()
    ]


def pay_by_card_and_land_on_success(page, shop: str) -> None:
    page.click("#pay-card")
    page.wait_for_url(re.compile(re.escape(f"{shop}/success")))
    # Any navigation from here on would drop this marker: its survival proves the page was not reloaded.
    page.evaluate("window.__sameDocument = true")


def test_purchase_with_webhook_first_is_fulfilled_once(page, shop, emulator, buy, admin_login, wait_until):
    emulator.configure(webhook_timing="before_redirect")
    buy(quantity=3)
    expect(page.locator("#amount-total")).to_contain_text("149.97")

    def after_the_worker_fulfilled(route):
        # The webhook is acknowledged before the redirect, and processed by the worker a moment later:
        # hold the buyer's redirect back to the shop until then, so the webhook wins the race outright.
        redirect = route.fetch(max_redirects=0)
        wait_until(lambda: Order.objects.filter(status=OrderStatus.FULFILLED).exists())
        route.fulfill(response=redirect)

    page.route(re.compile(re.escape(emulator.base_url) + r"/pay/.*"), after_the_worker_fulfilled)

    pay_by_card_and_land_on_success(page, shop)
    status = page.locator("#order-status")
    expect(status).to_have_attribute("data-status", re.compile(r"^(confirmed|fulfilled)$"))
    expect(status).to_have_attribute("data-status", "fulfilled")
    expect(status).to_have_text(re.compile("fulfilled", re.I))
    assert page.evaluate("window.__sameDocument") is True

    emulator.wait_for_idle(timeout=10)
    order = only_order()
    assert order.status == OrderStatus.FULFILLED
    assert [(line.product.sku, line.quantity) for line in order.lines.all()] == [(PRODUCT_SKU, 3)]
    assert order.amount_total == 14997
    assert transitions_of(order) == [("pending", "fulfilled")]

    admin_login()
    assert admin_transitions(page, shop, order) == [("Pending", "Fulfilled")]


def test_purchase_with_redirect_first_is_confirmed_then_fulfilled_without_reload(
    page, shop, emulator, buy, admin_login
):
    emulator.configure(webhook_timing="hold")
    buy(quantity=1)

    pay_by_card_and_land_on_success(page, shop)
    status = page.locator("#order-status")
    expect(status).to_have_attribute("data-status", "confirmed")
    assert only_order().status == OrderStatus.CONFIRMED

    assert emulator.release_webhooks() >= 1
    expect(status).to_have_attribute("data-status", "fulfilled")
    expect(status).to_have_text(re.compile("fulfilled", re.I))
    assert page.evaluate("window.__sameDocument") is True

    emulator.wait_for_idle(timeout=10)
    order = only_order()
    assert order.status == OrderStatus.FULFILLED
    assert transitions_of(order) == [("pending", "confirmed"), ("confirmed", "fulfilled")]

    admin_login()
    assert admin_transitions(page, shop, order) == [("Pending", "Confirmed"), ("Confirmed", "Fulfilled")]


def test_duplicate_webhooks_fulfil_the_order_once(page, shop, emulator, buy):
    emulator.configure(duplicates=3)
    buy(quantity=2)

    pay_by_card_and_land_on_success(page, shop)
    expect(page.locator("#order-status")).to_have_attribute("data-status", "fulfilled")

    emulator.wait_for_idle(timeout=10)
    order = only_order()
    assert OrderTransition.objects.filter(order=order, to_status=OrderStatus.FULFILLED).count() == 1
    delivered = [d for d in emulator.deliveries() if d["type"] == "checkout.session.completed"]
    assert len(delivered) == 3 and all(d["status"] == "delivered" for d in delivered)
