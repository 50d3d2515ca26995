"""The hot paths, statement by statement: the webhook's acknowledgement, and the worker's processing.

The acknowledgement is what a Stripe delivery waits for; the processing runs in a worker. Transaction
control is counted too (BEGIN, COMMIT...): each is a round trip to the database.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders import transitions
from payments.inbox import stripe_event_intake, stripe_event_process_claimed, stripe_events_claim
from payments.tests.conftest import WEBHOOK_SECRET
from payments.tests.events import deliver, open_order, session_event
from payments.worker import Worker

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRETS = [WEBHOOK_SECRET]


def _statements(captured: CaptureQueriesContext) -> list[str]:
    """Return each statement's verb and table, as 'UPDATE orders_order'; transaction control as its verb."""
    names = []
    for query in captured.captured_queries:
        words = query["sql"].replace('"', "").split()
        verb = words[0].upper()
        if verb in ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"):
            names.append(verb)
        elif verb == "ROLLBACK":
            names.append("ROLLBACK TO SAVEPOINT" if "SAVEPOINT" in query["sql"].upper() else verb)
        else:
            # After INTO for an INSERT (SQLite's INSERT OR IGNORE INTO too), after FROM for the rest.
            keyword = "INTO" if verb == "INSERT" else "FROM"
            table = words[1] if verb == "UPDATE" else words[words.index(keyword) + 1]
            names.append(f"{verb} {table}")
    return names


def test_acknowledging_a_new_event_costs_one_statement(client, product):
    event = session_event("checkout.session.completed", open_order(product))

    with CaptureQueriesContext(connection) as captured:
        response = deliver(client, event)

    assert (response.status_code, response.content) == (200, b"received: processing queued")
    # The row is its own queue entry: stored and queued in one upsert, no transaction around it.
    assert _statements(captured) == ["INSERT payments_stripeevent"]


def test_acknowledging_a_duplicate_costs_the_same_one_statement(client, product, worker_run):
    paid = session_event("checkout.session.completed", open_order(product))
    deliver(client, paid)
    worker_run()

    with CaptureQueriesContext(connection) as captured:
        response = deliver(client, paid)

    assert response.content == b"duplicate: event already stored"
    assert _statements(captured) == ["INSERT payments_stripeevent"]  # it conflicts, and changes nothing


def test_processing_a_paid_event_costs_the_transition_the_inbox_and_the_signals_claim(product):
    order = open_order(product)
    stripe_event_intake(event=session_event("checkout.session.completed", order))
    (claimed,) = stripe_events_claim(limit=10, lease=timedelta(minutes=5))
    worker = Worker(name="test")

    with CaptureQueriesContext(connection) as captured:
        outcome = stripe_event_process_claimed(claimed)
        worker.send_owed(outcome)

    assert outcome.reply == "processed: fulfilled"
    assert _statements(captured) == [
        "BEGIN",
        "SELECT orders_order",  # the order's payment fields, to check the session is its own
        "UPDATE orders_order",  # the conditional transition, RETURNING the state it moved from
        "INSERT orders_ordertransition",
        "UPDATE payments_stripeevent",  # the event's outcome, committed with the transition
        "COMMIT",
        "BEGIN",
        "UPDATE orders_order",  # the fulfilment signal's claim; the receivers run here:
        "SELECT orders_order",  # the buyer's address, for the confirmation e-mail
        "INSERT payments_customeremail",  # the e-mail owed, once with the claim
        "COMMIT",
    ]


def test_a_batch_of_events_is_claimed_in_one_statement(product):
    for _ in range(5):
        stripe_event_intake(event=session_event("checkout.session.completed", open_order(product)))

    with CaptureQueriesContext(connection) as captured:
        claimed = stripe_events_claim(limit=50, lease=timedelta(minutes=5))

    assert len(claimed) == 5
    assert _statements(captured) == ["UPDATE payments_stripeevent"]


def test_processing_a_paid_event_that_loses_costs_one_read_to_say_what_the_order_already_is(product):
    order = open_order(product)
    paid = session_event("checkout.session.completed", order)
    session = paid["data"]["object"]
    # Fulfilled with what the event says of the buyer: the loser has nothing left to store.
    transitions.order_fulfill(
        order_id=order.pk,
        source="webhook",
        payment_intent_id=session["payment_intent"],
        customer_email=session["customer_details"]["email"],
    )
    stripe_event_intake(event=paid)
    (claimed,) = stripe_events_claim(limit=10, lease=timedelta(minutes=5))

    with CaptureQueriesContext(connection) as captured:
        outcome = stripe_event_process_claimed(claimed)

    assert outcome.reply == "processed: no-op: order already fulfilled"
    assert outcome.owes == ()  # nothing made due: no signal's claim either
    assert _statements(captured) == [
        "BEGIN",
        "SELECT orders_order",  # the order's payment fields
        "UPDATE orders_order",  # the conditional transition, which touches no row
        "SELECT orders_order",  # the one read a loser costs: what the order already is
        "UPDATE payments_stripeevent",
        "COMMIT",
    ]
