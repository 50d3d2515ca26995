"""The order admin's actions: each behind a permission, each asking Stripe first, each counted honestly."""

from unittest import mock

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from orders import transitions
from orders.models import Order, OrderStatus, OrderTransition
from orders.signals import order_fulfilled
from payments import gateway
from payments.exceptions import PaymentProviderUnavailable
from payments.models import EventStatus, StripeEvent
from payments.order_actions import order_close
from payments.tests.events import emulator_order, open_order
from payments.tests.health_rows import event_stored

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:orders_order_changelist")
ACTIONS = ("fulfill_selected", "fail_selected", "expire_selected", "settle_selected")


def staff(*permissions: str) -> Client:
    """Return a client logged in as staff holding exactly these `app.codename` permissions."""
    user = User.objects.create_user(username=f"staff{User.objects.count()}", password="x", is_staff=True)
    for name in permissions:
        app_label, codename = name.split(".")
        permission = Permission.objects.get(content_type__app_label=app_label, codename=codename)
        user.user_permissions.add(permission)
    client = Client()
    client.force_login(user)
    return client


def act(client: Client, action: str, *orders: Order, query: str = "") -> str:
    """Post the action for the orders as the admin's changelist form does; return the messages shown."""
    response = client.post(
        CHANGELIST + query, {"action": action, "_selected_action": [str(o.pk) for o in orders]}, follow=True
    )
    assert response.status_code == 200
    return " | ".join(str(m) for m in response.context["messages"])


def status(order: Order) -> str:
    return Order.objects.get(pk=order.pk).status


def session_status(session_id: str) -> str:
    return gateway.checkout_session_retrieve(session_id=session_id).status


def test_a_view_only_user_is_offered_no_action(product):
    open_order(product)
    response = staff("orders.view_order").get(CHANGELIST)
    assert response.status_code == 200
    assert response.context["action_form"] is None
    for action in ACTIONS:
        assert action not in response.content.decode()


@pytest.mark.parametrize("action", ACTIONS)
def test_a_forged_post_by_a_view_only_user_changes_nothing(emulator, synced_product, action):
    order, session = emulator_order(synced_product)
    emulator.pay(session.id, "card")

    act(staff("orders.view_order"), action, order)

    assert status(order) == OrderStatus.PENDING
    assert not OrderTransition.objects.filter(order=order).exists()
    assert session_status(session.id) == "complete"


def test_closing_and_fulfilling_are_separate_permissions(emulator, synced_product):
    closer = staff("orders.view_order", "orders.close_order")
    offered = closer.get(CHANGELIST).context["action_form"].fields["action"].choices
    assert {name for name, _ in offered} == {"", "fail_selected", "expire_selected"}

    order, session = emulator_order(synced_product)
    emulator.pay(session.id, "card")
    act(closer, "fulfill_selected", order)
    assert status(order) == OrderStatus.PENDING


def test_expire_expires_the_session_at_stripe_before_the_order(emulator, synced_product):
    order, session = emulator_order(synced_product)

    text = act(staff("orders.view_order", "orders.close_order"), "expire_selected", order)

    assert session_status(session.id) == "expired"
    assert status(order) == OrderStatus.EXPIRED
    assert text == "Expired: 1 of 1 order."
    with pytest.raises(Exception, match="expired"):
        emulator.pay(session.id, "card")


def test_expire_of_a_paid_session_applies_the_payment_instead(emulator, synced_product):
    order, session = emulator_order(synced_product)
    emulator.pay(session.id, "card")  # its webhook is lost: no endpoint is configured

    text = act(staff("orders.view_order", "orders.close_order"), "expire_selected", order)

    assert status(order) == OrderStatus.FULFILLED
    assert text == (
        f"Expired: 0 of 1 order. Not moved: order {str(order.pk)[:8]}: not closed: Stripe says the "
        "session is complete and paid: applied it, now fulfilled."
    )


def test_fail_of_a_delayed_payment_under_way_leaves_the_order_open(emulator, synced_product):
    order, session = emulator_order(synced_product)
    emulator.configure(async_delay=3600)
    emulator.pay(session.id, "delayed_success")

    text = act(staff("orders.view_order", "orders.close_order"), "fail_selected", order)

    refreshed = Order.objects.get(pk=order.pk)
    assert (refreshed.status, refreshed.payment_pending) == (OrderStatus.PENDING, True)
    assert "complete, payment unpaid: a delayed payment is under way" in text


def test_close_while_stripe_is_unreachable_moves_nothing_and_says_why(emulator, synced_product):
    order, session = emulator_order(synced_product)
    with mock.patch.object(
        gateway, "checkout_session_expire", side_effect=PaymentProviderUnavailable("Stripe is down")
    ):
        text = act(staff("orders.view_order", "orders.close_order"), "fail_selected", order)

    assert status(order) == OrderStatus.PENDING
    assert session_status(session.id) == "open"
    assert f"order {str(order.pk)[:8]}: not closed: Stripe could not be asked" in text
    assert "Stripe is down" in text


def test_close_of_a_session_stripe_does_not_know_closes_the_order(emulator, synced_product):
    order = open_order(synced_product, session_id="cs_test_forgotten_by_a_restart")

    text = act(staff("orders.view_order", "orders.close_order"), "expire_selected", order)

    assert status(order) == OrderStatus.EXPIRED
    assert text == "Expired: 1 of 1 order."


def test_fulfill_of_an_unpaid_session_is_refused_and_sends_no_signal(emulator, synced_product):
    order, _ = emulator_order(synced_product)
    sent = []
    order_fulfilled.connect(lambda **kw: sent.append(kw["order_id"]), weak=False, dispatch_uid="t-admin")
    try:
        text = act(staff("orders.view_order", "orders.fulfill_order"), "fulfill_selected", order)
    finally:
        order_fulfilled.disconnect(dispatch_uid="t-admin")

    assert status(order) == OrderStatus.PENDING
    assert sent == []
    assert text == (
        f"Fulfilled: 0 of 1 order. Not moved: order {str(order.pk)[:8]}: not fulfilled: Stripe says "
        "the session is open."
    )


def test_fulfill_of_a_paid_session_fulfills_it(emulator, synced_product):
    order, session = emulator_order(synced_product)
    emulator.pay(session.id, "card", email="paid@example.com")

    text = act(staff("orders.view_order", "orders.fulfill_order"), "fulfill_selected", order)

    refreshed = Order.objects.get(pk=order.pk)
    assert (refreshed.status, refreshed.customer_email) == (OrderStatus.FULFILLED, "paid@example.com")
    assert text == "Fulfilled: 1 of 1 order."


def test_the_count_is_what_each_call_returned_on_a_filtered_list(emulator, synced_product):
    # Filtered on pending: the moved orders leave the list, which counting it again would miss.
    first, _ = emulator_order(synced_product)
    second, _ = emulator_order(synced_product)

    text = act(
        staff("orders.view_order", "orders.close_order"),
        "expire_selected",
        first,
        second,
        query="?status__exact=pending",
    )

    assert (status(first), status(second)) == (OrderStatus.EXPIRED, OrderStatus.EXPIRED)
    assert text == "Expired: 2 of 2 orders."


def test_the_message_names_each_order_left_as_it_was(emulator, synced_product):
    moving, _ = emulator_order(synced_product)
    already, _ = emulator_order(synced_product)
    transitions.order_fail(order_id=already.pk, source="admin", reason="earlier")

    text = act(staff("orders.view_order", "orders.close_order"), "expire_selected", moving, already)

    assert status(moving) == OrderStatus.EXPIRED
    assert text == (
        f"Expired: 1 of 2 orders. Not moved: order {str(already.pk)[:8]}: not expired: it was already "
        "failed (its session is expired at Stripe)."
    )


def test_a_fulfilled_order_is_not_closed(emulator, synced_product):
    order, session = emulator_order(synced_product)
    emulator.pay(session.id, "card")
    transitions.order_fulfill(order_id=order.pk, source="webhook")

    text = act(staff("orders.view_order", "orders.close_order"), "fail_selected", order)

    assert status(order) == OrderStatus.FULFILLED
    assert "it is fulfilled, so it was paid: refund it instead of closing it" in text


def test_the_list_filters_orders_that_need_attention(product):
    flagged = open_order(product)
    open_order(product)
    Order.objects.filter(pk=flagged.pk).update(needs_attention=True, attention_reason="late payment")

    response = staff("orders.view_order").get(CHANGELIST + "?needs_attention__exact=1")

    assert [o.pk for o in response.context["cl"].result_list] == [flagged.pk]


def test_settling_settles_the_order_and_its_events_in_review_once_and_needs_the_change_permission(product):
    flagged = open_order(product)
    Order.objects.filter(pk=flagged.pk).update(needs_attention=True, attention_reason="late payment")
    review = event_stored(status=EventStatus.NEEDS_REVIEW)
    StripeEvent.objects.filter(pk=review.pk).update(order=flagged, outcome="late payment: paid 49.99 USD")

    act(staff("orders.view_order", "orders.close_order"), "settle_selected", flagged)
    assert Order.objects.get(pk=flagged.pk).needs_attention is True

    operator = staff("orders.view_order", "orders.change_order")
    text = act(operator, "settle_selected", flagged)
    again = act(operator, "settle_selected", flagged)

    settled = Order.objects.get(pk=flagged.pk)
    assert (settled.needs_attention, settled.attention_reason) == (False, "late payment")
    assert settled.attention_settled_by and settled.attention_settled_at
    event = StripeEvent.objects.get(pk=review.pk)
    assert event.status == EventStatus.SETTLED
    assert event.outcome.startswith(f"settled by {settled.attention_settled_by} at ")
    assert text == "Settled: 1 of 1 order."
    assert "nothing to settle" in again
    # A replay of a settled event leaves it settled: the order is not flagged again.
    call_command("replay_events", event.stripe_id, verbosity=0)
    assert StripeEvent.objects.get(pk=review.pk).status == EventStatus.SETTLED
    assert Order.objects.get(pk=flagged.pk).needs_attention is False


def test_an_order_closed_while_its_session_was_being_opened_gets_the_session_expired(
    emulator, synced_product
):
    # The operator closes the order in the moment between Stripe opening its session and the project
    # storing the session id: there was nothing at Stripe to expire yet, so the checkout must do it.
    from payments import checkout

    real_create = gateway.checkout_session_create
    opened = []

    def create_then_close(**params):
        session = real_create(**params)
        opened.append(session.id)
        result = order_close(order_id=params["order_id"], transition="expire", source="admin")
        assert result.moved, result.message
        return session

    with (
        mock.patch.object(gateway, "checkout_session_create", side_effect=create_then_close),
        pytest.raises(checkout.CheckoutAlreadySubmitted, match="was closed"),
    ):
        checkout.checkout_start(
            items=[(synced_product.sku, 1)],
            checkout_token=None,
            success_url="http://testserver/success?session_id={CHECKOUT_SESSION_ID}",
            cancel_url="http://testserver/cancel",
        )

    assert session_status(opened[0]) == "expired"
    assert Order.objects.get().status == OrderStatus.EXPIRED
