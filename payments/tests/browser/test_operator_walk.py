"""An operator's walk through the admin at 1280 x 900: the order list, a filter, an order, a partial
refund, the Needs attention page and the index's dashboard, with a screenshot of every step kept in
test-artifacts/operator-walk/ whether the test passes or not.

The operator is staff with the permissions the job needs, not a superuser. What needs attention is made
by the real flows: a late payment (an order expired, then its session paid on the emulator) that the
webhook flags, and whose event is stored `needs_review`.
"""

import re

import pytest
from django.contrib.auth.models import Permission, User
from playwright.sync_api import expect

from orders import transitions
from orders.models import Order, OrderStatus, Product, order_reference
from payments.models import EventStatus, StripeEvent
from payments.tests.browser.conftest import ARTIFACTS, PRODUCT_SKU
from payments.tests.events import emulator_order

pytestmark = pytest.mark.browser

SHOTS = ARTIFACTS / "operator-walk"
OPERATOR_PERMISSIONS = (
    "orders.view_order",
    "orders.view_ordertransition",
    "orders.view_orderrefund",
    "orders.view_orderdispute",
    "orders.refund_order",
    "payments.view_stripeevent",
)
PASSWORD = "an-operator-password-long-enough"


def operator() -> User:
    user = User.objects.create_user(username="operator", password=PASSWORD, is_staff=True)
    for name in OPERATOR_PERMISSIONS:
        app_label, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def late_payment(emulator, wait_until) -> Order:
    """Expire an order, then pay its still-open session on the emulator; wait for the webhook's flag."""
    order, session = emulator_order(Product.objects.get(sku=PRODUCT_SKU))
    transitions.order_expire(order_id=order.pk, source="admin")
    emulator.pay(session.id, "card")
    return wait_until(lambda: Order.objects.filter(pk=order.pk, needs_attention=True).first())


def test_an_operator_walks_the_admin_at_1280_px(page, shop, emulator, buy, wait_until):
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    steps = iter(range(1, 100))

    def shot(name: str) -> None:
        page.screenshot(path=str(SHOTS / f"{next(steps):02d}-{name}.png"), full_page=True)

    page.set_viewport_size({"width": 1280, "height": 900})
    buy(quantity=2)  # 99.98 USD
    page.click("#pay-card")
    page.wait_for_url(re.compile(re.escape(f"{shop}/success")))
    expect(page.locator("#order-status")).to_have_attribute("data-status", "fulfilled")
    paid = Order.objects.get(status=OrderStatus.FULFILLED)
    late = late_payment(emulator, wait_until)
    wait_until(lambda: StripeEvent.objects.filter(order=late, status=EventStatus.NEEDS_REVIEW).exists())
    emulator.wait_for_idle(timeout=10)
    operator()

    page.goto(f"{shop}/admin/login/?next=/admin/orders/order/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{shop}/admin/orders/order/")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    late_row = rows.filter(has_text=order_reference(late.pk))
    expect(late_row.locator(".flag-attention")).to_have_text("Needs attention")
    expect(late_row.locator(".status-badge")).to_have_text("Expired")
    # Every column in view at 1280 px: the last one's right edge inside the window.
    box = page.locator("#result_list thead th").last.bounding_box()
    assert box and box["x"] + box["width"] <= 1280
    shot("order-list")

    page.click("#changelist-filter >> text=Fulfilled")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(order_reference(paid.pk))
    shot("filtered-fulfilled")

    rows.first.locator("a").first.click()
    expect(page.locator("div.field-id")).to_contain_text(str(paid.pk))
    expect(page.locator("div.field-refunds")).to_contain_text("0.00 USD refunded; 99.98 USD left.")
    expect(page.locator("ul.object-tools")).to_contain_text("Refund…")
    shot("order-page")

    page.click("ul.object-tools >> text=Refund…")
    page.fill("#id_amount", "20")
    page.select_option("#id_reason", "requested_by_customer")
    page.click("input[value='Review the refund']")
    expect(page.locator("#refund-confirmation")).to_contain_text("Refund 20.00 USD of order")
    shot("refund-confirm")
    page.click("input[name=confirm]")
    expect(page.locator("ul.messagelist")).to_contain_text("Refunded 20.00 USD")
    emulator.wait_for_idle(timeout=10)
    page.reload()
    expect(page.locator("div.field-refunds")).to_contain_text("20.00 USD refunded; 79.98 USD left.")
    shot("order-refunded")

    page.goto(f"{shop}/admin/needs-attention/")
    flagged = page.locator("#flagged_orders")
    expect(flagged).to_contain_text(order_reference(late.pk))
    expect(flagged).to_contain_text("after")  # the reason the webhook wrote
    review = page.locator("#needs_review_events")
    expect(review).to_contain_text("checkout.session.completed")
    expect(review).to_contain_text(order_reference(late.pk))
    expect(page.locator("#open_disputes")).to_contain_text("Nothing here.")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280  # no sideways scrolling
    shot("needs-attention")

    page.click("#flagged_orders >> text=All 1")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(order_reference(late.pk))

    page.goto(f"{shop}/admin/")
    dashboard = page.locator("#dashboard")
    expect(dashboard.locator(".dashboard-attention")).to_contain_text(re.compile(r"\b1 flagged order(?!s)"))
    expect(dashboard.locator(".dashboard-attention")).to_contain_text(re.compile(r"\b1 event to review"))
    expect(dashboard.locator(".dashboard-today")).to_contain_text("Fulfilled 1")
    expect(dashboard.locator(".dashboard-events")).to_contain_text("Needs review 1")
    expect(dashboard.locator(".dashboard-queue")).to_contain_text("waiting")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    shot("admin-index")
