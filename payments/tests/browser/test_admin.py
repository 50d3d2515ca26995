"""What a member of staff sees in the admin after a purchase."""

import re

import pytest
from playwright.sync_api import expect

from payments.tests.browser.conftest import only_order

pytestmark = pytest.mark.browser


def test_admin_shows_the_order_and_its_stripe_events_to_staff(page, shop, emulator, buy, admin_login):
    buy(quantity=2)
    page.click("#pay-card")
    page.wait_for_url(re.compile(re.escape(f"{shop}/success")))
    expect(page.locator("#order-status")).to_have_attribute("data-status", "fulfilled")
    emulator.wait_for_idle(timeout=10)
    order = only_order()

    admin_login()
    page.goto(f"{shop}/admin/orders/order/")
    page.click(f"a[href$='/admin/orders/order/{order.pk}/change/']")
    expect(page.locator("div.field-status_badge")).to_contain_text("Fulfilled")
    expect(page.locator("div.field-checkout_session")).to_contain_text(order.stripe_checkout_session_id)

    page.click("text=Events of this order")
    expect(page).to_have_url(re.compile(r"/admin/payments/stripeevent/\?order__id__exact="))
    results = page.locator("#result_list")
    expect(results).to_contain_text("checkout.session.completed")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)


def test_admin_sends_an_anonymous_visitor_to_the_login_page(page, live_server):
    page.goto(f"{live_server.url}/admin/orders/order/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
