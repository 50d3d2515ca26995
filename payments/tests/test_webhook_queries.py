"""The webhook hot path, statement by statement: a fresh paid event that wins, one that loses, a duplicate."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payments.tests.conftest import WEBHOOK_SECRET
from payments.tests.events import deliver, open_order, session_event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRETS = [WEBHOOK_SECRET]


def _statements(captured: CaptureQueriesContext) -> list[str]:
    """Return each statement's verb and table, as 'UPDATE orders_order'."""
    names = []
    for query in captured.captured_queries:
        words = query["sql"].replace('"', "").split()
        verb = words[0].upper()
        if verb in ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "ROLLBACK"):
            continue
        table = words[words.index("FROM") + 1] if verb == "SELECT" else words[2 if verb != "UPDATE" else 1]
        names.append(f"{verb} {table}")
    return names


def test_paid_event_costs_the_inbox_the_transition_and_the_signal_mark_only(client, product):
    order = open_order(product)
    event = session_event("checkout.session.completed", order)

    with CaptureQueriesContext(connection) as captured:
        response = deliver(client, event)

    assert response.status_code == 200
    assert _statements(captured) == [
        "INSERT payments_stripeevent",  # stored first, in its own commit
        "SELECT orders_order",  # the order's payment fields, to check the session is its own
        "UPDATE orders_order",  # the conditional transition
        "SELECT orders_order",  # which state the transition moved the order from
        "INSERT orders_ordertransition",
        "UPDATE payments_stripeevent",  # the event's outcome, committed with the transition
        "UPDATE orders_order",  # after the commit: the fulfillment signal's mark
    ]


def test_paid_event_that_loses_costs_one_read_to_say_what_the_order_already_is(client, product):
    order = open_order(product)
    deliver(client, session_event("checkout.session.async_payment_succeeded", order))
    late = session_event("checkout.session.completed", order)  # another event, for an order already fulfilled

    with CaptureQueriesContext(connection) as captured:
        response = deliver(client, late)

    assert response.content == b"processed: no-op: order already fulfilled"
    assert _statements(captured) == [
        "INSERT payments_stripeevent",
        "SELECT orders_order",  # the order's payment fields
        "UPDATE orders_order",  # the conditional transition, which touches no row
        "SELECT orders_order",  # the one read a loser costs: what the order already is
        "UPDATE payments_stripeevent",
    ]


def test_duplicate_delivery_costs_one_failed_insert_and_one_read(client, product):
    order = open_order(product)
    event = session_event("checkout.session.completed", order)
    deliver(client, event)

    with CaptureQueriesContext(connection) as captured:
        response = deliver(client, event)

    assert response.status_code == 200
    assert _statements(captured) == ["INSERT payments_stripeevent", "SELECT payments_stripeevent"]
