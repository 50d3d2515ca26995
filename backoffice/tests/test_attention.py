"""The admin's Needs attention page and the index's dashboard: who sees them, and what each list holds."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from backoffice.tests.test_order_actions import staff
from orders.models import (
    DisputeStatus,
    Order,
    OrderDispute,
    OrderRefund,
    OrderStatus,
    RefundStatus,
    order_reference,
)
from payments.models import EventStatus
from payments.tests.events import open_order
from payments.tests.health_rows import event_stored

pytestmark = pytest.mark.django_db

LATE = "A payment arrived after it closed."
PAGE = reverse("admin:needs_attention")
INDEX = reverse("admin:index")
OPERATOR = (
    "orders.view_order",
    "payments.view_stripeevent",
    "orders.view_orderrefund",
    "orders.view_orderdispute",
)


def fulfilled(product, **fields) -> Order:
    order = open_order(product)
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.FULFILLED, **fields)
    return Order.objects.get(pk=order.pk)


def aged(order: Order, *, seconds: int) -> Order:
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(seconds=seconds))
    return Order.objects.get(pk=order.pk)


def section(html: str, key: str) -> str:
    """Return the HTML of one section of the page."""
    start = html.index(f'id="{key}"')
    end = html.find('<div class="module attention-section"', start)
    return html[start : end if end != -1 else len(html)]


def test_the_page_lists_each_kind_of_thing_to_look_at_with_links_to_the_full_lists(product, settings):
    settings.CHECKOUT_SESSION_TTL_SECONDS = 3600
    flagged = open_order(product)
    Order.objects.filter(pk=flagged.pk).update(
        status=OrderStatus.EXPIRED, needs_attention=True, attention_reason=LATE
    )
    late = aged(open_order(product), seconds=3601)
    fresh = aged(open_order(product), seconds=3500)
    review = event_stored(status=EventStatus.NEEDS_REVIEW)
    failed = event_stored(status=EventStatus.FAILED)
    event_stored(status=EventStatus.PROCESSED)
    paid = fulfilled(product)
    unsettled = OrderRefund.objects.create(
        order=paid, amount=500, currency="usd", status=RefundStatus.FAILED, requested_by="admin",
        failure_reason="The card was closed.",
    )  # fmt: skip
    OrderRefund.objects.create(
        order=paid, amount=100, currency="usd", status=RefundStatus.SUCCEEDED, requested_by="admin"
    )
    due_later, due_sooner = (timezone.now() + timedelta(days=days) for days in (9, 2))
    for number, (status, due) in enumerate(
        [
            (DisputeStatus.NEEDS_RESPONSE, due_later),
            (DisputeStatus.WARNING_NEEDS_RESPONSE, due_sooner),
            (DisputeStatus.WON, due_sooner),
        ]
    ):
        OrderDispute.objects.create(
            stripe_dispute_id=f"dp_{number}", order=paid, amount=100, currency="usd", status=status,
            evidence_due_by=due,
        )  # fmt: skip

    response = staff(*OPERATOR).get(PAGE)

    assert response.status_code == 200
    html = response.content.decode()
    flagged_html = section(html, "flagged_orders")
    assert order_reference(flagged.pk) in flagged_html and LATE in flagged_html
    assert "?needs_attention__exact=1" in flagged_html
    assert review.stripe_id in section(html, "needs_review_events")
    assert failed.stripe_id not in section(html, "needs_review_events")
    assert failed.stripe_id in section(html, "failed_events")
    assert "?status__exact=failed" in section(html, "failed_events")
    past = section(html, "open_past_session")
    assert order_reference(late.pk) in past and order_reference(fresh.pk) not in past
    assert "?session=expired_open" in past
    refunds = section(html, "unsettled_refunds")
    assert "5.00 USD" in refunds and "The card was closed." in refunds and "1.00 USD" not in refunds
    assert unsettled.get_status_display() in refunds
    disputes = section(html, "open_disputes")
    assert disputes.index("Inquiry: needs response") < disputes.index("Needs response")  # soonest first
    assert "Won" not in disputes
    assert "status__in=needs_response%2Cwarning_needs_response" in disputes


def test_each_full_list_the_page_links_to_holds_what_the_page_counted(product, settings):
    settings.CHECKOUT_SESSION_TTL_SECONDS = 3600
    late = aged(open_order(product), seconds=7200)
    aged(open_order(product), seconds=60)
    client = staff(*OPERATOR)

    response = client.get(reverse("admin:orders_order_changelist") + "?session=expired_open")

    assert [order.pk for order in response.context["cl"].result_list] == [late.pk]


def test_a_list_with_nothing_in_it_says_so():
    html = staff(*OPERATOR).get(PAGE).content.decode()

    assert section(html, "open_disputes").count("Nothing here.") == 1


def test_staff_who_may_view_orders_but_not_events_see_no_event_lists(product):
    event_stored(status=EventStatus.NEEDS_REVIEW)

    html = staff("orders.view_order").get(PAGE).content.decode()

    assert 'id="flagged_orders"' in html
    assert 'id="needs_review_events"' not in html and 'id="failed_events"' not in html


def test_staff_who_may_view_orders_but_not_events_see_no_event_counts_on_the_index(product):
    event_stored(status=EventStatus.FAILED)

    html = staff("orders.view_order").get(INDEX).content.decode()

    assert 'id="dashboard"' in html
    assert "dashboard-events" not in html and "failed event" not in html


def test_a_list_links_to_its_full_list_only_for_staff_who_may_view_that_list(product):
    paid = fulfilled(product)
    OrderDispute.objects.create(
        stripe_dispute_id="dp_link",
        order=paid,
        amount=100,
        currency="usd",
        status=DisputeStatus.NEEDS_RESPONSE,
    )
    full_list = reverse("admin:orders_orderdispute_changelist")

    orders_only = section(staff("orders.view_order").get(PAGE).content.decode(), "open_disputes")
    operator = section(staff(*OPERATOR).get(PAGE).content.decode(), "open_disputes")

    assert "dp_link" not in orders_only and "1.00 USD" in orders_only
    assert full_list not in orders_only
    assert full_list in operator


def test_staff_who_may_not_view_orders_are_refused_and_visitors_sent_to_log_in():
    assert staff("payments.view_stripeevent").get(PAGE).status_code == 403
    response = Client().get(PAGE)
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]


def test_the_index_shows_the_counts_today_s_orders_events_and_the_queue(product):
    Order.objects.filter(pk=open_order(product).pk).update(needs_attention=True)
    fulfilled(product)
    event_stored(status=EventStatus.FAILED)

    response = staff(*OPERATOR).get(INDEX)

    html = response.content.decode()
    attention = html[html.index("dashboard-attention") : html.index("dashboard-today")]
    assert "<strong>1</strong> flagged order<" in attention
    assert "<strong>1</strong> failed event<" in attention
    today = html[html.index("dashboard-today") : html.index("dashboard-events")]
    assert "Fulfilled</span> 1" in today and "Pending</span> 1" in today
    events = html[html.index("dashboard-events") : html.index("dashboard-queue")]
    assert "Failed</span> 1" in events
    assert "no worker?" not in html


def test_the_index_asks_whether_a_worker_runs_when_an_event_has_waited_over_a_minute():
    event_stored(status=EventStatus.RECEIVED, received_at=timezone.now() - timedelta(minutes=2))

    html = staff("orders.view_order").get(INDEX).content.decode()

    assert 'id="no-worker"' in html
    assert "<strong>1</strong> waiting" in html


def test_the_index_shows_no_dashboard_to_staff_who_may_not_view_orders():
    html = staff("payments.view_stripeevent").get(INDEX).content.decode()

    assert 'id="dashboard"' not in html
