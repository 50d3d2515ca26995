"""The order admin's actions in a browser: what a view-only member of staff can do (nothing), what
"Fulfill" does with an unpaid order (refuses), and an operator expiring an order its buyer is paying."""

import re

import pytest
from django.contrib.auth.models import Permission, User
from playwright.sync_api import Page, expect

from orders.models import Order, OrderStatus
from payments import gateway
from payments.tests.browser.conftest import STAFF_PASSWORD, TIMEOUT_MS, only_order

pytestmark = pytest.mark.browser

VIEWER = "viewer"


def log_in(page: Page, shop: str, username: str) -> None:
    page.goto(f"{shop}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", STAFF_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{shop}/admin/")


def run_action(page: Page, shop: str, order: Order, action: str) -> None:
    page.goto(f"{shop}/admin/orders/order/")
    page.check(f"input[name=_selected_action][value='{order.pk}']")
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")
    page.wait_for_load_state()


@pytest.fixture
def viewer(transactional_db):
    user = User.objects.create_user(username=VIEWER, password=STAFF_PASSWORD, is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_order"))
    return user


def test_a_view_only_user_sees_no_action_and_a_forged_post_changes_nothing(page, shop, buy, viewer):
    buy(quantity=1)
    order = only_order()

    log_in(page, shop, VIEWER)
    page.goto(f"{shop}/admin/orders/order/")
    expect(page.locator(f"a[href$='/admin/orders/order/{order.pk}/change/']")).to_be_visible()
    expect(page.locator("select[name=action]")).to_have_count(0)

    # Post the expire action anyway, with the session's own CSRF token, as a hand-made form would.
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post(
        f"{shop}/admin/orders/order/",
        form={"action": "expire_selected", "_selected_action": str(order.pk), "index": "0"},
        headers={"X-CSRFToken": token, "Referer": f"{shop}/admin/orders/order/"},
    )
    assert response.status == 200
    assert "Expired:" not in response.text()
    assert "was not done: it needs the permission" in response.text()
    assert "(orders.close_order)" in response.text()
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING
    assert not order.transitions.exists()
    assert gateway.checkout_session_retrieve(session_id=order.stripe_checkout_session_id).status == "open"


def test_fulfill_of_an_unpaid_order_is_refused_with_stripes_reason(page, shop, buy, admin_login):
    buy(quantity=1)
    order = only_order()

    admin_login()
    run_action(page, shop, order, "fulfill_selected")

    expect(page.locator("ul.messagelist")).to_contain_text(
        f"Fulfilled: 0 of 1 order. Not moved: order {str(order.pk)[:8]}: not fulfilled: Stripe says the "
        "session is open."
    )
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING


def test_the_operator_expires_an_order_and_its_buyer_can_no_longer_pay(
    browser, page, shop, emulator, buy, staff_user
):
    buy(quantity=2)  # the buyer waits on the payment page
    order = only_order()

    operator = browser.new_context()
    operator.set_default_timeout(TIMEOUT_MS)
    admin = operator.new_page()
    try:
        log_in(admin, shop, staff_user.username)
        run_action(admin, shop, order, "expire_selected")
        expect(admin.locator("ul.messagelist")).to_contain_text("Expired: 1 of 1 order.")
    finally:
        operator.close()

    page.click("#pay-card")
    expect(page.locator("body")).to_contain_text("This checkout has expired")
    expect(page.locator("body")).to_contain_text("can no longer be paid")
    page.click("a:has-text('Return to the merchant')")
    page.wait_for_url(re.compile(re.escape(f"{shop}/cancel")))
    expect(page.locator("body")).to_contain_text("If you did not finish paying, nothing was charged.")
    expect(page.locator("body")).not_to_contain_text("You were charged")

    emulator.wait_for_idle(timeout=10)
    order = Order.objects.get(pk=order.pk)
    session = gateway.checkout_session_retrieve(session_id=order.stripe_checkout_session_id)
    assert (order.status, session.status, session.payment_intent_id) == (OrderStatus.EXPIRED, "expired", "")
