"""The order list's marks (needs attention, refunded, disputed), its filters' wording, the events' badges,
and the Refund button only for those who may refund."""

import pytest
from django.urls import reverse

from backoffice.tests.test_order_actions import staff
from orders.models import Order, OrderDispute, OrderStatus
from payments.models import EventStatus
from payments.tests.events import open_order
from payments.tests.health_rows import event_stored

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:orders_order_changelist")


def row_of(html: str, order: Order) -> str:
    start = html.index(f'title="{order.pk}"')
    return html[start : html.index("</tr>", start)]


def test_the_order_list_marks_what_to_notice_beside_the_status(product):
    flagged, refunded, disputed, plain = (open_order(product) for _ in range(4))
    Order.objects.filter(pk=flagged.pk).update(needs_attention=True, attention_reason="late payment")
    Order.objects.filter(pk=refunded.pk).update(status=OrderStatus.FULFILLED, amount_refunded=1000)
    OrderDispute.objects.create(
        stripe_dispute_id="dp_flag", order=disputed, amount=4999, currency="usd", status="needs_response"
    )

    html = staff("orders.view_order").get(CHANGELIST).content.decode()

    assert 'class="flag flag-attention" title="late payment">Needs attention' in row_of(html, flagged)
    assert "10.00 USD refunded" in row_of(html, refunded)
    assert "Disputed" in row_of(html, disputed)
    assert 'class="flag' not in row_of(html, plain)


def test_the_delayed_payment_filter_is_titled_by_what_it_means(product):
    html = staff("orders.view_order").get(CHANGELIST).content.decode()

    assert "By delayed payment" in html
    assert "By payment pending" not in html


def test_event_statuses_show_as_badges():
    event_stored(status=EventStatus.NEEDS_REVIEW)

    html = staff("payments.view_stripeevent").get(reverse("admin:payments_stripeevent_changelist")).content

    assert b'<span class="status-badge status-needs_review">Needs review</span>' in html


@pytest.mark.parametrize(("permissions", "offered"), [((), False), (("orders.refund_order",), True)])
def test_the_refund_button_shows_only_to_those_who_may_refund(product, permissions, offered):
    order = open_order(product)
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.FULFILLED)

    html = (
        staff("orders.view_order", *permissions)
        .get(reverse("admin:orders_order_change", args=[order.pk]))
        .content.decode()
    )

    assert (reverse("admin:orders_order_refund", args=[order.pk]) in html) is offered
    assert "49.99 USD left." in html
