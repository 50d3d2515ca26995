"""The words a person reads in the admin: a count takes the right noun, an amount is money in its currency."""

import re

import pytest
from django.urls import reverse

from backoffice.tests.test_order_actions import staff
from orders.models import DisputeStatus, Order, OrderDispute, OrderStatus
from payments.models import EventStatus, StripeEvent
from payments.tests.events import open_order
from payments.tests.health_rows import event_stored

pytestmark = pytest.mark.django_db

OPERATOR = ("orders.view_order", "orders.view_orderdispute", "payments.view_stripeevent")
# How payments words a late payment's reason (payments/tests/test_late_payments.py checks it does).
LATE = "Late payment: paid 59.97 USD on session cs_test_late after the order was expired; refund asked."


def text(html: str) -> str:
    """Return the page's words without its tags and with its spaces folded."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def disputes(product, count: int) -> None:
    order = open_order(product)
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.FULFILLED)
    for number in range(count):
        OrderDispute.objects.create(
            stripe_dispute_id=f"dp_words_{number}",
            order=order,
            amount=2500,
            currency="usd",
            status=DisputeStatus.NEEDS_RESPONSE,
        )


@pytest.mark.parametrize(("count", "words"), [(1, "1 dispute to answer"), (2, "2 disputes to answer")])
def test_the_index_and_the_page_count_in_the_right_number(product, count, words):
    disputes(product, count)
    Order.objects.filter(pk=open_order(product).pk).update(needs_attention=True)
    client = staff(*OPERATOR)

    for url in (reverse("admin:index"), reverse("admin:needs_attention")):
        shown = text(client.get(url).content.decode())
        assert re.search(rf"\b{words}\b", shown)
        assert re.search(r"\b1 flagged order\b(?!s)", shown)
        assert re.search(r"\b0 events to review\b", shown)
        assert "1 flagged orders" not in shown and "1 disputes" not in shown


def test_a_late_payments_reason_shows_on_every_page_that_lists_the_order(product):
    order = open_order(product)
    Order.objects.filter(pk=order.pk).update(
        status=OrderStatus.EXPIRED, needs_attention=True, attention_reason=LATE
    )
    client = staff(*OPERATOR)

    pages = [
        client.get(reverse("admin:orders_order_changelist")).content.decode(),
        client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode(),
        client.get(reverse("admin:needs_attention")).content.decode(),
    ]

    for html in pages:
        assert "paid 59.97 USD on session cs_test_late" in html


def test_disputes_and_refunds_show_money_not_minor_units(product):
    disputes(product, 1)

    html = staff(*OPERATOR).get(reverse("admin:needs_attention")).content.decode()

    assert "25.00 USD" in html and "2500" not in html


def test_an_order_page_says_each_thing_once(admin_client, product):
    order = open_order(product)
    Order.objects.filter(pk=order.pk).update(
        payment_pending=True, needs_attention=True, attention_reason=LATE
    )

    words_shown = text(
        admin_client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    )

    assert words_shown.count("Awaiting the bank") == 1
    assert words_shown.count("paid 59.97 USD") == 1
    assert "Needs attention: Needs attention" not in words_shown


def test_an_events_outcome_shows_on_the_attention_page_and_the_event():
    event = event_stored(status=EventStatus.NEEDS_REVIEW)
    StripeEvent.objects.filter(pk=event.pk).update(outcome=LATE.replace("Late", "late"))
    client = staff(*OPERATOR)

    pages = [
        client.get(reverse("admin:needs_attention")).content.decode(),
        client.get(reverse("admin:payments_stripeevent_change", args=[event.pk])).content.decode(),
    ]

    for html in pages:
        assert "paid 59.97 USD on session cs_test_late" in html
