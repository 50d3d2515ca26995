"""The other ways a checkout ends in a browser: cancelled, paid later (or not), refused by the form."""

import re

import pytest
from playwright.sync_api import expect

from orders.models import Order, OrderStatus
from payments.tests.browser.conftest import PRODUCT_SKU, only_order

pytestmark = pytest.mark.browser

# Longer than any test: each delayed payment is settled through the emulator when the test says so.
SETTLE_ONLY_WHEN_TOLD = 600


def test_cancel_on_the_payment_page_charges_nothing_and_leaves_the_order_pending(page, shop, buy):
    buy(quantity=1)

    page.click("#cancel")
    page.wait_for_url(re.compile(re.escape(f"{shop}/cancel")))
    expect(page.locator("body")).to_contain_text(re.compile(r"nothing (was|has been) charged", re.I))

    order = only_order()
    assert order.status == OrderStatus.PENDING
    assert not order.transitions.exists()


def test_delayed_payment_that_succeeds_shows_processing_then_fulfilled(page, shop, emulator, buy):
    emulator.configure(async_delay=SETTLE_ONLY_WHEN_TOLD)
    buy(quantity=1)

    page.click("#pay-delayed-success")
    page.wait_for_url(re.compile(re.escape(f"{shop}/success")))
    page.evaluate("window.__sameDocument = true")
    status = page.locator("#order-status")
    expect(status).to_have_attribute("data-status", "pending")
    expect(page.locator("body")).to_contain_text(re.compile(r"processing", re.I))

    emulator.wait_for_idle(timeout=10)
    order = only_order()
    assert order.payment_pending is True
    emulator.settle(order.stripe_checkout_session_id)

    expect(status).to_have_attribute("data-status", "fulfilled")
    assert page.evaluate("window.__sameDocument") is True
    emulator.wait_for_idle(timeout=10)
    assert list(order.transitions.values_list("from_status", "to_status")) == [("pending", "fulfilled")]


def test_delayed_payment_that_fails_ends_failed_when_the_emulator_settles_it(page, shop, emulator, buy):
    # Settled by the emulator's own timer this time, as Stripe would a few days later.
    emulator.configure(async_delay=0.5)
    buy(quantity=1)

    page.click("#pay-delayed-failure")
    page.wait_for_url(re.compile(re.escape(f"{shop}/success")))
    page.evaluate("window.__sameDocument = true")
    status = page.locator("#order-status")
    expect(status).to_have_attribute("data-status", re.compile(r"^(pending|failed)$"))

    expect(status).to_have_attribute("data-status", "failed")
    assert page.evaluate("window.__sameDocument") is True
    emulator.wait_for_idle(timeout=10)
    order = only_order()
    assert order.status == OrderStatus.FAILED
    assert order.failure_reason
    assert list(order.transitions.values_list("from_status", "to_status")) == [("pending", "failed")]


@pytest.mark.parametrize(("quantity", "explanation"), [("0", "at least 1"), ("101", "at most 100")])
def test_quantity_the_server_refuses_is_explained_on_the_form(page, shop, quantity, explanation):
    page.goto(f"{shop}/")
    field = page.locator(f"#buy-{PRODUCT_SKU} input[name=quantity]")
    # The browser's own min/max check would stop the submit before the server ever saw it.
    field.evaluate("input => { input.removeAttribute('min'); input.removeAttribute('max'); }")
    field.fill(quantity)
    page.click(f"#pay-{PRODUCT_SKU}")

    error = page.locator(".form-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(explanation)
    expect(page.locator(f"#buy-{PRODUCT_SKU} input[name=quantity]")).to_have_value(quantity)
    assert page.url.startswith(shop)
    assert not Order.objects.exists()
