"""`manage.py replay_events`: stored events again, missed events from Stripe, exported events from a file."""

import json
import urllib.request
from datetime import timedelta
from io import StringIO
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from orders.models import OrderStatus, OrderTransition, TransitionSource
from payments import handlers
from payments.inbox import PAGE_SIZE, stripe_event_intake
from payments.models import EventStatus, StripeEvent
from payments.tests.events import emulator_order, event, new_id, open_order, receive, session_event

pytestmark = pytest.mark.django_db

COMPLETED = "checkout.session.completed"


def replay(*args: str, verbosity: int = 1) -> str:
    out = StringIO()
    call_command("replay_events", *args, stdout=out, stderr=out, verbosity=verbosity)
    return out.getvalue()


def crash(event, source):
    raise RuntimeError("the fulfilment backend is down")


def failed_event(product):
    """Return an order and its completed event, stored as failed by a handler that crashed."""
    order = open_order(product)
    evt = session_event(COMPLETED, order)
    with (
        mock.patch.dict(handlers.HANDLERS, {COMPLETED: crash}),
        pytest.raises(Exception, match="could not be processed"),
    ):
        receive(evt)
    assert StripeEvent.objects.get(stripe_id=evt["id"]).status == EventStatus.FAILED
    return order, evt


# Stored events


def test_without_a_selection_nothing_is_replayed():
    with pytest.raises(CommandError, match="Say which stored events to replay"):
        replay()


def test_unknown_event_id_is_refused_and_nothing_is_replayed(product):
    _, evt = failed_event(product)

    with pytest.raises(CommandError, match=r"No stored event evt_missing\. To fetch events Stripe still has"):
        replay(evt["id"], "evt_missing")

    assert StripeEvent.objects.get().attempts == 1


@pytest.mark.parametrize("since", ["yesterday", "15 minutes", "2026-13-45"])
def test_unreadable_since_is_refused(since):
    with pytest.raises(CommandError, match=r"--since: .* is neither an ISO 8601 time .* nor an age"):
        replay("--failed", "--since", since)


def test_event_that_failed_while_processing_is_fixed_by_replaying_it(product):
    order, evt = failed_event(product)

    output = replay(evt["id"])

    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED
    assert order.transitions.get().source == TransitionSource.REPLAY
    stored = StripeEvent.objects.get()
    assert (stored.status, stored.attempts, stored.last_error) == ("processed", 2, "")
    assert "1 stored event handled: 1 processed." in output


def test_failed_replays_only_the_failed_events(product):
    _, evt = failed_event(product)
    other = session_event(COMPLETED, open_order(product))
    receive(other)

    replay("--failed")

    assert StripeEvent.objects.get(stripe_id=evt["id"]).status == "processed"
    assert StripeEvent.objects.get(stripe_id=other["id"]).attempts == 1


def needs_review_event(product):
    """Return an order and its completed event for another amount, stored as needs_review."""
    order = open_order(product)
    evt = session_event(COMPLETED, order, amount_total=1)
    receive(evt)
    assert StripeEvent.objects.get(stripe_id=evt["id"]).status == EventStatus.NEEDS_REVIEW
    return order, evt


@pytest.mark.parametrize("selection", ["--failed", "--unfinished"])
def test_failed_and_unfinished_leave_needs_review_events_alone(product, selection):
    _, refused = needs_review_event(product)
    _, crashed = failed_event(product)

    output = replay(selection)

    assert "1 stored event handled: 1 processed." in output
    stored = StripeEvent.objects.get(stripe_id=refused["id"])
    assert (stored.status, stored.attempts) == ("needs_review", 1)
    assert StripeEvent.objects.get(stripe_id=crashed["id"]).status == "processed"


def test_a_needs_review_event_replayed_by_id_runs_again_and_is_shown(product):
    order, evt = needs_review_event(product)

    output = replay(evt["id"])

    stored = StripeEvent.objects.get(stripe_id=evt["id"])
    assert (stored.status, stored.attempts) == ("needs_review", 2)
    assert f"{evt['id']} {COMPLETED} needs_review: amount mismatch: session" in output
    assert "1 stored event handled: 1 needs_review." in output
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING


def test_unfinished_replays_events_left_received_and_failed(product):
    failed_event(product)
    crashed_order = open_order(product)
    crashed = session_event(COMPLETED, crashed_order)
    stripe_event_intake(event=crashed)  # stored, never processed: the worker died

    output = replay("--unfinished")

    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"processed"}
    crashed_order.refresh_from_db()
    assert crashed_order.status == OrderStatus.FULFILLED
    assert "2 stored events handled: 2 processed." in output


def test_type_and_since_narrow_the_selection(product):
    old = session_event(COMPLETED, open_order(product))
    recent = session_event(COMPLETED, open_order(product))
    other_type = event("customer.created", {"id": "cus_1", "object": "customer"})
    for evt in (old, recent, other_type):
        stripe_event_intake(event=evt)
    StripeEvent.objects.filter(stripe_id=old["id"]).update(received_at=timezone.now() - timedelta(days=3))

    replay("--type", COMPLETED, "--since", "2d")

    statuses = dict(StripeEvent.objects.values_list("stripe_id", "status"))
    assert statuses == {old["id"]: "received", recent["id"]: "processed", other_type["id"]: "received"}


def test_since_accepts_an_iso_8601_time(product):
    evt = session_event(COMPLETED, open_order(product))
    stripe_event_intake(event=evt)
    StripeEvent.objects.update(received_at=timezone.now() - timedelta(hours=5))
    three_hours_ago = (timezone.now() - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    six_hours_ago = (timezone.now() - timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%S")

    replay("--unfinished", "--since", three_hours_ago)
    assert StripeEvent.objects.get().status == "received"
    replay("--unfinished", "--since", six_hours_ago)
    assert StripeEvent.objects.get().status == "processed"


def test_dry_run_lists_the_events_and_changes_nothing(product):
    order, evt = failed_event(product)

    output = replay("--failed", "--dry-run")

    assert f"{evt['id']} {COMPLETED}: failed (would replay)" in output
    assert "1 stored event would be replayed: 1 failed." in output
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    assert StripeEvent.objects.get().attempts == 1


def test_replaying_a_processed_event_moves_no_order_again(product):
    order = open_order(product)
    evt = session_event(COMPLETED, order)
    receive(evt)

    replay(evt["id"])

    assert OrderTransition.objects.filter(order=order).count() == 1
    stored = StripeEvent.objects.get()
    assert (stored.status, stored.attempts, stored.outcome) == (
        "processed",
        2,
        "no-op: order already fulfilled",
    )


def test_replay_that_fails_again_reports_it_and_exits_with_an_error(product):
    _, evt = failed_event(product)

    with mock.patch.dict(handlers.HANDLERS, {COMPLETED: crash}), pytest.raises(CommandError) as raised:
        replay(evt["id"])

    assert "1 hit an unexpected error and are stored as failed" in str(raised.value)
    assert "replay_events --failed" in str(raised.value)
    stored = StripeEvent.objects.get()
    assert (stored.status, stored.attempts) == ("failed", 2)


def test_long_runs_show_progress_and_walk_every_page():
    count = PAGE_SIZE + 5
    for _ in range(count):
        stripe_event_intake(event=event("customer.created", {"id": new_id("cus_"), "object": "customer"}))

    output = replay("--unfinished")

    assert "... 100 events handled" in output
    assert "... 200 events handled" in output
    assert f"{count} stored events handled: {count} ignored." in output
    assert StripeEvent.objects.filter(status="ignored").count() == count


def test_verbosity_zero_prints_nothing(product):
    failed_event(product)

    assert replay("--failed", verbosity=0) == ""


# From Stripe


def control(emulator, path: str, payload: dict) -> dict:
    """Call the emulator's control API, as a test harness outside the process would."""
    request = urllib.request.Request(
        f"{emulator.base_url}/_emulator/{path}",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_backfill_recovers_a_webhook_stripe_never_delivered(emulator, synced_product, worker_run):
    # An endpoint is configured, but the one delivery of this payment is lost on the way.
    emulator.configure(webhook_url="http://127.0.0.1:9/stripe-webhook", drop_next=1)
    order, session = emulator_order(synced_product)
    control(emulator, f"checkout/sessions/{session.id}/pay", {"method": "card"})
    (delivery,) = emulator.deliveries()
    assert delivery["status"] == "dropped"

    output = replay("--from-stripe", "--undelivered-only")
    worker_run()  # taken in as the webhook would have: a worker processes it

    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED
    assert order.transitions.get().source == TransitionSource.REPLAY
    stored = StripeEvent.objects.get(stripe_id=delivery["event_id"])
    assert (stored.status, stored.source, stored.order_id) == ("processed", "backfill", order.pk)
    assert "1 event from Stripe handled: 1 received." in output

    again = replay("--from-stripe", "--undelivered-only")

    assert "1 event from Stripe handled: 1 duplicate." in again
    assert OrderTransition.objects.filter(order=order).count() == 1


def test_backfill_skips_events_already_stored(emulator, synced_product):
    _, session = emulator_order(synced_product)
    emulator.pay(session.id, "card")
    (listed,) = [e for e in _stripe_events(emulator) if e["type"] == COMPLETED]
    receive(listed)  # as if the webhook had delivered it

    output = replay("--from-stripe")

    assert "1 event from Stripe handled: 1 duplicate." in output
    assert StripeEvent.objects.get().attempts == 1


def test_backfill_filters_by_type_and_dry_run_stores_nothing(emulator, synced_product, worker_run):
    paid_order, paid = emulator_order(synced_product)
    expired_order, expired = emulator_order(synced_product)
    emulator.pay(paid.id, "card")
    emulator.expire(expired.id)

    dry = replay("--from-stripe", "--type", "checkout.session.expired", "--since", "1h", "--dry-run")

    assert "checkout.session.expired: new (would be taken in)" in dry
    assert COMPLETED not in dry
    assert not StripeEvent.objects.exists()

    replay("--from-stripe", "--type", "checkout.session.expired", "--since", "1h")
    worker_run()

    assert list(StripeEvent.objects.values_list("type", flat=True)) == ["checkout.session.expired"]
    expired_order.refresh_from_db()
    paid_order.refresh_from_db()
    assert (expired_order.status, paid_order.status) == (OrderStatus.EXPIRED, OrderStatus.PENDING)


def test_backfill_needs_stripe_configured(settings):
    settings.STRIPE_SECRET_KEY = ""

    with pytest.raises(CommandError, match="Stripe is not configured"):
        replay("--from-stripe")


def test_backfill_when_stripe_is_unreachable_says_so(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_unreachable"
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    settings.STRIPE_MAX_NETWORK_RETRIES = 0

    with pytest.raises(
        CommandError,
        match=r"(?s)Stripe is unavailable.*0 events from Stripe handled before that; run it again",
    ):
        replay("--from-stripe")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--undelivered-only", "--failed"], "--undelivered-only only applies with --from-stripe"),
        (["--from-stripe", "--failed"], "select stored events"),
        (["--from-stripe", "--file", "x.json"], "either --from-stripe or --file"),
        (["--file", "x.json", "--type", COMPLETED], "do not apply to --file"),
    ],
)
def test_contradictory_options_are_refused(args, message):
    with pytest.raises(CommandError, match=message):
        replay(*args)


def _stripe_events(emulator) -> list[dict]:
    from payments import gateway

    return list(gateway.events_list())


# From a file


def test_file_with_a_list_of_events_is_received(tmp_path, product, worker_run):
    order = open_order(product)
    events = [
        session_event(COMPLETED, order),
        event("customer.created", {"id": "cus_1", "object": "customer"}),
    ]
    path = tmp_path / "events.json"
    path.write_text(json.dumps(events))

    output = replay("--file", str(path))
    worker_run()

    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED
    assert set(StripeEvent.objects.values_list("source", flat=True)) == {"file"}
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"ignored", "processed"}
    assert "2 events from the file handled: 2 received." in output


def test_file_with_stripes_list_object_is_received_and_stored_events_are_no_ops(tmp_path, product):
    order = open_order(product)
    evt = session_event(COMPLETED, order)
    receive(evt)
    path = tmp_path / "export.json"
    path.write_text(json.dumps({"object": "list", "data": [evt], "has_more": False, "url": "/v1/events"}))

    output = replay("--file", str(path))

    assert "1 event from the file handled: 1 duplicate." in output
    assert OrderTransition.objects.filter(order=order).count() == 1


def test_file_dry_run_stores_nothing(tmp_path, product):
    evt = session_event(COMPLETED, open_order(product))
    path = tmp_path / "events.json"
    path.write_text(json.dumps([evt]))

    output = replay("--file", str(path), "--dry-run")

    assert f"{evt['id']} {COMPLETED}: new (would be taken in)" in output
    assert not StripeEvent.objects.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No such file"),
        ("{not json", "is not valid JSON"),
        ('{"object": "customer"}', "neither a JSON list of events nor a Stripe list object"),
        (
            '[{"object": "event", "id": "evt_1", "type": "x", "data": {}}, {"id": "evt_2"}]',
            "item 2 is not a Stripe event",
        ),
        ('[{"object": "event", "type": "x", "data": {}}]', "item 1 has no event id"),
    ],
    ids=["missing", "bad-json", "not-a-list", "not-an-event", "no-id"],
)
def test_unusable_file_is_refused_and_nothing_is_stored(tmp_path, content, message):
    path = tmp_path / "events.json"
    if content is not None:
        path.write_text(content)

    with pytest.raises(CommandError, match=message):
        replay("--file", str(path))

    assert not StripeEvent.objects.exists()
