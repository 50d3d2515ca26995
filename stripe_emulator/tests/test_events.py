"""GET /v1/events: ordering, pagination and filters, read through stripe-python."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from .conftest import session_params


@pytest.fixture
def events(emu: Any, client: stripe.StripeClient, price: stripe.Price) -> list[str]:
    """Create 12 events (oldest first) with created = 1000, 1010, ... and return their ids."""
    for n in range(12):
        session = client.v1.checkout.sessions.create(params=session_params(price.id))
        if n % 3 == 0:
            emu.pay(session.id)
        else:
            client.v1.checkout.sessions.expire(session.id)
    records = sorted(emu.store.events_newest_first(), key=lambda r: r.seq)
    for n, record in enumerate(records):
        record.event["created"] = 1000 + 10 * n
    return [r.event["id"] for r in records]


def test_newest_first_with_limit_and_has_more(client: stripe.StripeClient, events: list[str]) -> None:
    page = client.v1.events.list(params={"limit": 5})
    assert [e.id for e in page.data] == events[::-1][:5]
    assert page.has_more is True and page.url == "/v1/events"
    assert len(client.v1.events.list().data) == 10


def test_auto_paging_iter_walks_every_event(client: stripe.StripeClient, events: list[str]) -> None:
    page = client.v1.events.list(params={"limit": 5})
    assert [e.id for e in page.auto_paging_iter()] == events[::-1]


def test_starting_after_and_ending_before(client: stripe.StripeClient, events: list[str]) -> None:
    newest_first = events[::-1]
    after = client.v1.events.list(params={"limit": 3, "starting_after": newest_first[2]})
    assert [e.id for e in after.data] == newest_first[3:6]
    before = client.v1.events.list(params={"limit": 2, "ending_before": newest_first[5]})
    assert [e.id for e in before.data] == newest_first[3:5] and before.has_more
    tail = client.v1.events.list(params={"ending_before": newest_first[1]})
    assert [e.id for e in tail.data] == newest_first[:1] and not tail.has_more
    walked = client.v1.events.list(params={"limit": 4, "ending_before": newest_first[-1]})
    assert [e.id for e in walked.auto_paging_iter()] == newest_first[-2::-1]


def test_filter_by_type_and_wildcard(client: stripe.StripeClient, events: list[str]) -> None:
    completed = client.v1.events.list(params={"type": "checkout.session.completed"})
    assert [e.id for e in completed.data] == [events[n] for n in (9, 6, 3, 0)]
    every = client.v1.events.list(params={"type": "checkout.session.*", "limit": 100})
    assert len(every.data) == 12
    assert client.v1.events.list(params={"type": "payment_intent.*"}).data == []


def test_filter_by_types(client: stripe.StripeClient, events: list[str]) -> None:
    both = client.v1.events.list(
        params={"types": ["checkout.session.completed", "checkout.session.expired"], "limit": 100}
    )
    assert len(both.data) == 12
    expired = client.v1.events.list(params={"types": ["checkout.session.expired"], "limit": 100})
    assert {e.type for e in expired.data} == {"checkout.session.expired"}
    assert len(expired.data) == 8
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.events.list(params={"type": "a", "types": ["b"]})
    assert info.value.param == "type"


def test_filter_by_created(client: stripe.StripeClient, events: list[str]) -> None:
    def ids(created: Any) -> list[str]:
        return [e.id for e in client.v1.events.list(params={"created": created, "limit": 100}).data]

    assert ids({"gte": 1100}) == [events[11], events[10]]
    assert ids({"gt": 1100}) == [events[11]]
    assert ids({"lt": 1010}) == [events[0]]
    assert ids({"lte": 1010}) == [events[1], events[0]]
    assert ids({"gte": 1020, "lt": 1040}) == [events[3], events[2]]
    assert ids(1050) == [events[5]]
    with pytest.raises(stripe.InvalidRequestError) as info:
        ids({"after": 3})
    assert info.value.param == "created[after]"


def test_filter_by_delivery_success(client: stripe.StripeClient, events: list[str]) -> None:
    # No endpoint is configured: nothing is pending, so every event counts as delivered.
    assert len(client.v1.events.list(params={"delivery_success": True, "limit": 100}).data) == 12
    assert client.v1.events.list(params={"delivery_success": False}).data == []


def test_equal_created_keeps_insertion_order(
    emu: Any, client: stripe.StripeClient, events: list[str]
) -> None:
    for record in emu.store.events_newest_first():
        record.event["created"] = 5000
    page = client.v1.events.list(params={"limit": 5})
    assert [e.id for e in page.auto_paging_iter()] == events[::-1]


def test_retrieve_event(client: stripe.StripeClient, events: list[str]) -> None:
    event = client.v1.events.retrieve(events[0])
    assert event.id == events[0] and event.object == "event"
    assert event.data.object.object == "checkout.session"
    assert event.api_version == stripe.api_version


def test_event_snapshot_does_not_change_later(
    emu: Any, client: stripe.StripeClient, price: stripe.Price
) -> None:
    emu.configure(async_delay=60)
    session = client.v1.checkout.sessions.create(params=session_params(price.id))
    emu.pay(session.id, "delayed_success")
    emu.settle(session.id)
    succeeded, completed = client.v1.events.list().data
    assert completed.data.object.payment_status == "unpaid"
    assert succeeded.data.object.payment_status == "paid"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"starting_after": "evt_missing"}, "starting_after"),
        ({"colour": "x"}, "colour"),
    ],
)
def test_list_parameter_errors(client: stripe.StripeClient, params: dict[str, Any], param: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.events.list(params=params)
    assert info.value.param == param
