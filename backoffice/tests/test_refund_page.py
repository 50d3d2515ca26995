"""The admin's refund page: permission-gated, a confirmation step, one refund per confirmation."""

import re

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from orders.models import Order, OrderRefund, OrderStatus
from payments.tests.conftest import emulator_worker_env
from payments.tests.events import emulator_order

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def order(emulator, live_server, worker, wait_until, synced_product) -> Order:
    """Return a fulfilled 99.98 USD order paid on the emulator, processed by a worker of the live server."""
    worker(**emulator_worker_env(emulator))
    emulator.configure(webhook_url=f"{live_server.url}/stripe-webhook")
    order, session = emulator_order(synced_product, quantity=2)
    emulator.pay(session.id, "card")
    wait_until(lambda: Order.objects.get(pk=order.pk).status == OrderStatus.FULFILLED)
    return Order.objects.get(pk=order.pk)


def staff(*permissions: str) -> User:
    user = User.objects.create_user(username="clerk", password="pw-clerk-long-enough", is_staff=True)
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def refund_url(order: Order) -> str:
    return reverse("admin:orders_order_refund", args=[order.pk])


def token_of(response) -> str:
    return re.search(r'name="token" value="([0-9a-f-]{36})"', response.content.decode()).group(1)


@pytest.mark.parametrize("permissions", [(), ("view_order", "change_order")])
def test_a_user_without_the_refund_permission_gets_403_and_nothing_happens(
    client, emulator, order, permissions
):
    client.force_login(staff(*permissions))

    page = client.get(refund_url(order))
    forged = client.post(
        refund_url(order),
        {"amount": "", "reason": "", "token": "6f1c1e4e-7d7b-4d44-9d1e-2f7a3b1c0a11", "confirm": "1"},
    )

    assert (page.status_code, forged.status_code) == (403, 403)
    assert not OrderRefund.objects.exists()
    assert emulator.store.newest_first("refunds") == []


def test_an_anonymous_visitor_is_sent_to_the_login(client, order):
    response = client.get(refund_url(order))

    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_order_page_links_to_the_refund_page_and_shows_refunds(admin_client, order):
    response = admin_client.get(reverse("admin:orders_order_change", args=[order.pk]))

    content = response.content.decode()
    assert refund_url(order) in content
    assert "0.00 USD refunded; 99.98 USD left." in content


def test_review_then_confirm_refunds_once_and_a_double_submit_changes_nothing(
    client, emulator, order, settled
):
    client.force_login(staff("view_order", "refund_order"))

    review = client.post(refund_url(order), {"amount": "12.50", "reason": "requested_by_customer"})
    assert review.status_code == 200
    assert "Refund <strong>12.50 USD</strong>" in review.content.decode()
    assert not OrderRefund.objects.exists()  # reviewing refunds nothing

    confirm = {
        "amount": "12.50",
        "reason": "requested_by_customer",
        "token": token_of(review),
        "confirm": "1",
    }
    done = client.post(refund_url(order), confirm, follow=True)
    client.post(refund_url(order), confirm)  # the second click
    settled()

    assert "Refunded 12.50 USD" in done.content.decode()
    (row,) = OrderRefund.objects.all()
    assert (row.amount, row.reason, row.requested_by, row.requested_by_user) == (
        1250,
        "requested_by_customer",
        "admin",
        "clerk",
    )
    assert len(emulator.store.newest_first("refunds")) == 1
    assert Order.objects.get(pk=order.pk).amount_refunded == 1250


def test_an_empty_amount_refunds_everything_left(admin_client, emulator, order, settled):
    review = admin_client.post(refund_url(order), {"amount": "", "reason": ""})
    assert "99.98 USD (everything left)" in review.content.decode()

    admin_client.post(
        refund_url(order), {"amount": "", "reason": "", "token": token_of(review), "confirm": "1"}
    )
    settled()

    assert Order.objects.get(pk=order.pk).status == OrderStatus.REFUNDED


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("120.00", "only 99.98 USD of its 99.98 USD is left to refund"),
        ("abc", "is not an amount"),
        ("0", "above zero"),
    ],
)
def test_a_bad_amount_is_refused_on_review_with_a_message(admin_client, order, amount, message):
    response = admin_client.post(refund_url(order), {"amount": amount, "reason": ""})

    assert response.status_code == 200
    assert message in response.content.decode()
    assert 'name="confirm"' not in response.content.decode()
    assert not OrderRefund.objects.exists()
