"""The events admin: find events, read their payloads and errors, replay them; never edit what Stripe sent."""

import html
import re
from unittest import mock

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from backoffice.admin import EventTypeFilter
from orders.models import OrderStatus
from payments import handlers
from payments.models import StripeEvent
from payments.tests.events import event, open_order, receive, session_event

pytestmark = pytest.mark.django_db

COMPLETED = "checkout.session.completed"
CHANGELIST = "admin:payments_stripeevent_changelist"


def crash(event, source):
    raise RuntimeError("the fulfilment backend is down")


@pytest.fixture
def failed(product):
    """Return an order and its completed event, stored as failed by a crashing handler."""
    order = open_order(product)
    evt = session_event(COMPLETED, order)
    with (
        mock.patch.dict(handlers.HANDLERS, {COMPLETED: crash}),
        pytest.raises(Exception, match="not be processed"),
    ):
        receive(evt)
    return order, StripeEvent.objects.get(stripe_id=evt["id"])


@pytest.fixture
def processed(product):
    order = open_order(product)
    evt = session_event(COMPLETED, order)
    receive(evt)
    return order, StripeEvent.objects.get(stripe_id=evt["id"])


@pytest.fixture
def ignored(db):
    evt = event("customer.created", {"id": "cus_admin", "object": "customer"})
    receive(evt)
    return StripeEvent.objects.get(stripe_id=evt["id"])


@pytest.fixture
def needs_review(product):
    """Return an order and its completed event for another amount, a refusal only a person can settle."""
    order = open_order(product)
    evt = session_event(COMPLETED, order, amount_total=1)
    receive(evt)
    return order, StripeEvent.objects.get(stripe_id=evt["id"])


def listed(response) -> set[str]:
    return {e.stripe_id for e in response.context["cl"].result_list}


def test_changelist_shows_events_with_their_order(admin_client, processed, ignored):
    order, evt = processed

    response = admin_client.get(reverse(CHANGELIST))

    assert response.status_code == 200
    assert listed(response) == {evt.stripe_id, ignored.stripe_id}
    content = response.content.decode()
    assert reverse("admin:orders_order_change", args=[order.pk]) in content
    assert "processed" in content and "ignored" in content


def test_changelist_filters_by_status_and_type(admin_client, failed, processed, ignored):
    by_status = admin_client.get(reverse(CHANGELIST), {"status__exact": "failed"})
    by_type = admin_client.get(reverse(CHANGELIST), {"type__exact": "customer.created"})
    by_time = admin_client.get(reverse(CHANGELIST), {"received_at__gte": "2000-01-01 00:00:00+00:00"})

    assert listed(by_status) == {failed[1].stripe_id}
    assert listed(by_type) == {ignored.stripe_id}
    assert len(listed(by_time)) == 3


def test_changelist_filters_on_needs_review_and_shows_it(admin_client, failed, processed, needs_review):
    response = admin_client.get(reverse(CHANGELIST), {"status__exact": "needs_review"})

    assert listed(response) == {needs_review[1].stripe_id}
    content = response.content.decode()
    assert "Needs review" in content  # the status column, and the filter's choice
    assert 'href="?status__exact=needs_review"' in content


def test_replay_action_runs_a_needs_review_event_again_and_warns(admin_client, needs_review):
    order, evt = needs_review

    response = admin_client.post(
        reverse(CHANGELIST), {"action": "replay_selected", "_selected_action": [evt.pk]}, follow=True
    )

    (message,) = response.context["messages"]
    assert (str(message), message.level_tag) == ("Replayed 1 event: 1 needs review.", "warning")
    evt.refresh_from_db()
    assert (evt.status, evt.attempts) == ("needs_review", 2)
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING


def test_search_finds_by_event_id_and_by_order_id(admin_client, failed, processed, ignored):
    order, evt = processed

    by_event = admin_client.get(reverse(CHANGELIST), {"q": evt.stripe_id})
    by_order = admin_client.get(reverse(CHANGELIST), {"q": str(order.pk)})
    by_nonsense = admin_client.get(reverse(CHANGELIST), {"q": "not an id"})

    assert listed(by_event) == {evt.stripe_id}
    assert listed(by_order) == {evt.stripe_id}
    assert by_nonsense.status_code == 200
    assert listed(by_nonsense) == set()


def test_the_order_admins_link_lists_that_orders_events(admin_client, failed, processed):
    order, evt = processed
    order_page = admin_client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    link = html.unescape(re.search(r'href="([^"]*)">Events of this order', order_page).group(1))
    assert link == f"{reverse(CHANGELIST)}?order__id__exact={order.pk}"

    response = admin_client.get(link)

    assert response.status_code == 200
    assert listed(response) == {evt.stripe_id}


def test_a_malformed_order_filter_is_refused_without_an_error_page(admin_client, processed):
    response = admin_client.get(reverse(CHANGELIST), {"order__id__exact": "not-a-uuid"})

    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


def test_event_page_shows_the_body_exactly_as_signed_and_the_error(admin_client, failed):
    _, evt = failed

    response = admin_client.get(reverse("admin:payments_stripeevent_change", args=[evt.pk]))

    assert response.status_code == 200
    content = response.content.decode()
    assert f"<pre>{html.escape(evt.payload_text)}</pre>" in content
    assert "Traceback (most recent call last)" in content
    assert "RuntimeError: the fulfilment backend is down" in content
    assert 'name="_save"' not in content


def test_events_cannot_be_added_changed_or_deleted(admin_client, processed):
    _, evt = processed

    add = admin_client.get(reverse("admin:payments_stripeevent_add"))
    change = admin_client.post(
        reverse("admin:payments_stripeevent_change", args=[evt.pk]), {"status": "failed"}
    )
    delete = admin_client.get(reverse("admin:payments_stripeevent_delete", args=[evt.pk]))

    assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
    evt.refresh_from_db()
    assert evt.status == "processed"


def test_replay_action_processes_the_selected_events_and_reports_counts(admin_client, failed, processed):
    order, evt = failed

    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "replay_selected", "_selected_action": [evt.pk, processed[1].pk]},
        follow=True,
    )

    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED
    assert order.transitions.get().source == "replay"
    evt.refresh_from_db()
    assert (evt.status, evt.attempts) == ("processed", 2)
    messages = [str(m) for m in response.context["messages"]]
    assert messages == ["Replayed 2 events: 2 processed."]


def test_replay_action_reports_events_that_fail_again(admin_client, failed):
    _, evt = failed

    with mock.patch.dict(handlers.HANDLERS, {COMPLETED: crash}):
        response = admin_client.post(
            reverse(CHANGELIST), {"action": "replay_selected", "_selected_action": [evt.pk]}, follow=True
        )

    assert [str(m) for m in response.context["messages"]] == ["Replayed 1 event: 1 failed."]
    evt.refresh_from_db()
    assert (evt.status, evt.attempts) == ("failed", 2)


def test_staff_who_may_only_view_events_cannot_replay(client, failed):
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_stripeevent"))
    client.force_login(viewer)
    _, evt = failed

    page = client.get(reverse(CHANGELIST))
    client.post(reverse(CHANGELIST), {"action": "replay_selected", "_selected_action": [evt.pk]})

    assert page.status_code == 200
    assert "replay_selected" not in page.content.decode()
    evt.refresh_from_db()
    assert evt.status == "failed"


def test_search_finds_an_event_by_its_id_its_session_or_its_orders_reference(
    admin_client, processed, ignored
):
    order, evt = processed

    by_id = admin_client.get(reverse(CHANGELIST), {"q": evt.stripe_id})
    by_session = admin_client.get(reverse(CHANGELIST), {"q": order.stripe_checkout_session_id})
    by_reference = admin_client.get(reverse(CHANGELIST), {"q": order.pk.hex[:8]})
    by_nonsense = admin_client.get(reverse(CHANGELIST), {"q": "nonsense"})

    assert listed(by_id) == listed(by_session) == listed(by_reference) == {evt.stripe_id}
    assert listed(by_nonsense) == set()


def test_type_filter_lists_each_stored_type_once(admin_client, failed, processed, ignored):
    response = admin_client.get(reverse(CHANGELIST))

    spec = next(s for s in response.context["cl"].filter_specs if isinstance(s, EventTypeFilter))
    assert [value for value, _ in spec.lookup_choices] == ["checkout.session.completed", "customer.created"]
