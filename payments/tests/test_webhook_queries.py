"""The hot paths, statement by statement: the webhook's acknowledgement, and the tasks that follow it.

The acknowledgement is what a Stripe delivery waits for; the tasks run in a worker. Transaction control
is counted too (BEGIN, SAVEPOINT...): each is a round trip to the database.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from orders.tasks import order_fulfillment_signal_task

from payments.inbox import stripe_event_process_task
from payments.tests import events
from payments.tests.conftest import WEBHOOK_SECRET
from payments.tests.events import deliver, open_order, session_event

pytestmark = [pytest.mark.django_db(transaction=True)]

TASKS_TABLE = "django_tasks_database_dbtaskresult"


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
            table = (
                words[words.index("FROM") + 1] if verb == "SELECT" else words[2 if verb != "UPDATE" else 1]
            )
            names.append(f"{verb} {table}")
    return names


def test_acknowledging_a_new_event_costs_its_row_and_its_task_row_in_one_transaction(client, product):
    event = session_event("checkout.session.completed", open_order(product))

    with CaptureQueriesContext(connection) as captured:
        response = deliver(client, event)

    assert response.status_code == 200
    assert _statements(captured) == [
        "BEGIN",
        "INSERT payments_stripeevent",  # no savepoint: a stored copy rolls back a transaction holding no more
        f"INSERT {TASKS_TABLE}",  # its processing, committed with it
        "COMMIT",
    ]


def test_acknowledging_a_duplicate_of_a_finished_event_costs_one_failed_insert_and_one_read(
    client, product, worker_run
):
    paid = session_event("checkout.session.completed", open_order(product))
    deliver(client, paid)
    worker_run()

    with CaptureQueriesContext(connection) as captured:
        response = deliver(client, paid)

    assert response.content == b"duplicate: event already processed"
    assert _statements(captured) == [
        "BEGIN",
        "INSERT payments_stripeevent",
        "ROLLBACK",
        "SELECT payments_stripeevent",  # the stored copy's status: finished, so nothing is queued
    ]


def test_processing_a_paid_event_costs_the_inbox_the_transition_and_the_signals_task(client, product):
    event = session_event("checkout.session.completed", open_order(product))
    deliver(client, event)

    with CaptureQueriesContext(connection) as captured:
        assert stripe_event_process_task.call(stripe_event_id=event["id"]) == "processed: fulfilled"

    assert _statements(captured) == [
        "SELECT payments_stripeevent",  # the stored event: its status, source and payload
        "BEGIN",
        "SELECT orders_order",  # the order's payment fields, to check the session is its own
        "UPDATE orders_order",  # the conditional transition
        "SELECT orders_order",  # which state the transition moved the order from
        "INSERT orders_ordertransition",
        f"INSERT {TASKS_TABLE}",  # the fulfillment signal, queued with the transition
        "UPDATE payments_stripeevent",  # the event's outcome, committed with the transition
        "COMMIT",
    ]


def test_processing_a_paid_event_that_loses_costs_one_read_to_say_what_the_order_already_is(
    client, product, worker_run
):
    order = open_order(product)
    deliver(client, session_event("checkout.session.async_payment_succeeded", order))
    worker_run()
    late = session_event("checkout.session.completed", order)  # another event, for an order already fulfilled
    deliver(client, late)

    with CaptureQueriesContext(connection) as captured:
        reply = stripe_event_process_task.call(stripe_event_id=late["id"])

    assert reply == "processed: no-op: order already fulfilled"
    assert _statements(captured) == [
        "SELECT payments_stripeevent",
        "BEGIN",
        "SELECT orders_order",  # the order's payment fields
        "UPDATE orders_order",  # the conditional transition, which touches no row
        "SELECT orders_order",  # the one read a loser costs: what the order already is
        "UPDATE payments_stripeevent",
        "COMMIT",
    ]


def test_sending_the_fulfillment_signal_costs_its_claim(client, product):
    order = open_order(product)
    event = session_event("checkout.session.completed", order)
    deliver(client, event)
    stripe_event_process_task.call(stripe_event_id=event["id"])

    with CaptureQueriesContext(connection) as captured:
        assert order_fulfillment_signal_task.call(
            order_id=str(order.pk), source="webhook", stripe_event_id=event["id"]
        )

    # The receivers' own statements come on top (payments.apps only logs).
    assert _statements(captured) == ["BEGIN", "UPDATE orders_order", "COMMIT"]


def test_the_worker_adds_a_claim_and_a_finish_to_each_task(client, product, worker_run):
    deliver(client, events.event("customer.created", {"id": "cus_1", "object": "customer"}))
    with CaptureQueriesContext(connection) as captured:
        assert worker_run() == 1

    statements = _statements(captured)
    task_body = ["SELECT payments_stripeevent", "BEGIN", "UPDATE payments_stripeevent", "COMMIT"]
    claim = ["BEGIN", f"SELECT {TASKS_TABLE}", f"UPDATE {TASKS_TABLE}", "COMMIT"]
    assert statements == [
        *claim,  # SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL; an exclusive transaction on SQLite
        *task_body,
        f"UPDATE {TASKS_TABLE}",  # SUCCESSFUL, with the return value
        "BEGIN",  # the batch worker's last look: nothing left
        f"SELECT {TASKS_TABLE}",
        "COMMIT",
    ]


def test_a_task_for_an_event_already_finished_costs_one_read(client, product, worker_run):
    event = session_event("checkout.session.completed", open_order(product))
    deliver(client, event)
    worker_run()

    with CaptureQueriesContext(connection) as captured:
        assert (
            stripe_event_process_task.call(stripe_event_id=event["id"])
            == "duplicate: event already processed"
        )

    assert _statements(captured) == ["SELECT payments_stripeevent"]


def test_the_worker_sends_the_signal_at_once_claiming_it_with_one_statement(client, product, worker_run):
    deliver(client, session_event("checkout.session.completed", open_order(product)))
    with CaptureQueriesContext(connection) as captured:
        assert worker_run() == 2

    statements = _statements(captured)
    claim = ["BEGIN", f"SELECT {TASKS_TABLE}", f"UPDATE {TASKS_TABLE}", "COMMIT"]
    event_task = statements[4 : statements.index(f"UPDATE {TASKS_TABLE}", 4)]
    assert statements == [
        *claim,
        *event_task,  # the processing, which queues the signal's task in its transaction
        f"UPDATE {TASKS_TABLE}",  # SUCCESSFUL
        f"UPDATE {TASKS_TABLE}",  # the signal's task claimed by its id, READY -> RUNNING: no poll
        "BEGIN",
        "UPDATE orders_order",  # the signal's own claim; the receivers run here
        "COMMIT",
        f"UPDATE {TASKS_TABLE}",  # SUCCESSFUL
        "BEGIN",  # the batch worker's last look: nothing left
        f"SELECT {TASKS_TABLE}",
        "COMMIT",
    ]
    assert f"INSERT {TASKS_TABLE}" in event_task
