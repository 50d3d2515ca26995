"""Who may do what in the admin: closing and fulfilling are separate trusts, a forged action is refused in
words that name the missing permission, and staff refused a page get the admin's 403 page, which names it
and leads back to the admin."""

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from backoffice.tests.test_order_actions import CHANGELIST, act, session_status, staff, status
from orders.models import Order, OrderStatus, OrderTransition
from payments.models import StripeEvent
from payments.tests.events import emulator_order, open_order
from payments.tests.health_rows import event_stored

pytestmark = pytest.mark.django_db

FULFILLER = ("orders.view_order", "orders.fulfill_order")
CLOSER = ("orders.view_order", "orders.close_order")


def offered(client: Client) -> set[str]:
    return {name for name, _ in client.get(CHANGELIST).context["action_form"].fields["action"].choices} - {""}


@pytest.mark.parametrize("action", ["fail_selected", "expire_selected"])
def test_a_user_who_may_only_fulfill_cannot_close_even_by_a_forged_post(emulator, synced_product, action):
    fulfiller = staff(*FULFILLER)
    order, session = emulator_order(synced_product)

    text = act(fulfiller, action, order)

    assert offered(fulfiller) == {"fulfill_selected"}
    assert status(order) == OrderStatus.PENDING
    assert session_status(session.id) == "open"
    assert "was not done: it needs the permission" in text
    assert "(orders.close_order)" in text and "Can fail or expire an order" in text


def test_a_user_who_may_only_close_cannot_fulfill_even_by_a_forged_post(emulator, synced_product):
    closer = staff(*CLOSER)
    order, session = emulator_order(synced_product)
    emulator.pay(session.id, "card")  # its webhook is lost: only the action could fulfil it

    text = act(closer, "fulfill_selected", order)

    assert offered(closer) == {"fail_selected", "expire_selected"}
    assert status(order) == OrderStatus.PENDING
    assert not OrderTransition.objects.filter(order=order).exists()
    assert text == (
        "“Fulfill selected orders (if Stripe says paid)” was not done: it needs the permission “Can fulfill "
        "an order whose Checkout Session Stripe says is paid” (orders.fulfill_order)."
    )


def test_a_forged_post_by_a_view_only_user_names_the_permission_it_lacks(product):
    order = open_order(product)

    text = act(staff("orders.view_order"), "expire_selected", order)

    assert "(orders.close_order)" in text
    assert "No action selected" not in text
    assert status(order) == OrderStatus.PENDING


def test_settling_without_the_change_permission_is_refused_in_words(product):
    flagged = open_order(product)
    Order.objects.filter(pk=flagged.pk).update(needs_attention=True, attention_reason="late payment")

    text = act(staff(*CLOSER), "settle_selected", flagged)

    assert "“Mark selected orders as settled (clears Needs attention)” was not done" in text
    assert "(orders.change_order)" in text
    assert Order.objects.get(pk=flagged.pk).needs_attention is True


def test_a_forged_replay_names_the_permission_it_lacks():
    event = event_stored(status="failed")
    viewer = staff("payments.view_stripeevent")

    response = viewer.post(
        reverse("admin:payments_stripeevent_changelist"),
        {"action": "replay_selected", "_selected_action": [event.pk]},
        follow=True,
    )

    (message,) = response.context["messages"]
    assert message.level_tag == "error"
    assert "“Replay selected events” was not done" in str(message)
    assert "(payments.change_stripeevent)" in str(message)
    assert StripeEvent.objects.get(pk=event.pk).attempts == event.attempts


def test_the_admin_403_names_the_refund_permission_and_leads_back_to_the_admin(product):
    order = open_order(product)
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.FULFILLED)

    response = staff("orders.view_order").get(reverse("admin:orders_order_refund", args=[order.pk]))

    html = response.content.decode()
    assert response.status_code == 403
    assert "“Can refund orders through Stripe” (orders.refund_order)" in html
    assert f'href="{reverse("admin:index")}" class="button">Back to the admin' in html
    assert 'id="site-name"' in html  # the admin's own frame
    assert "Back to the shop" not in html


def test_the_admin_403_names_the_view_permission_the_needs_attention_page_needs():
    response = staff("payments.view_stripeevent").get(reverse("admin:needs_attention"))

    assert response.status_code == 403
    assert "(orders.view_order)" in response.content.decode()


def test_a_refusal_of_djangos_own_is_the_admin_403_too(product):
    order = open_order(product)

    response = staff("orders.view_order").post(reverse("admin:orders_order_change", args=[order.pk]), {})

    html = response.content.decode()
    assert response.status_code == 403
    assert "Permission needed" in html and "Back to the admin" in html


def test_a_logged_in_user_who_is_not_staff_is_sent_to_the_login(client):
    client.force_login(User.objects.create_user("buyer", password="pw"))

    response = client.get(reverse("admin:needs_attention"))

    # The admin sends a non-staff user to its login page; it never shows them its pages.
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]
