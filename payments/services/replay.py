"""Run events through the inbox again: replay stored ones, backfill from Stripe, import a file.

Every event goes through the inbox (`payments.services.inbox`), so an event already finished is a
no-op and order transitions stay exactly-once. Each function is a generator that yields one outcome
per event and reads the database in pages, so thousands of events take constant memory and the
caller can show progress. Pages are keyed on the primary key rather than streamed from one open
cursor, because the rows change status while being walked (SQLite gives no isolation to that).
"""

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db.models import QuerySet

from orders.models import TransitionSource
from payments import gateway
from payments.models import UNFINISHED_STATUSES, EventSource, EventStatus, StripeEvent
from payments.outcome import EventOutcome
from payments.services.inbox import (
    EventProcessingFailed,
    stripe_event_process,
    stripe_event_receive,
    stripe_event_status,
)

PAGE_SIZE = 200


class EventFileInvalid(Exception):
    """The events file cannot be read or does not hold Stripe events."""


def stripe_events_selected(
    *,
    stripe_ids: Iterable[str] = (),
    failed: bool = False,
    unfinished: bool = False,
    types: Iterable[str] = (),
    since: datetime | None = None,
) -> QuerySet[StripeEvent]:
    """Return the stored events matching every given filter.

    `failed` and `unfinished` never select needs_review: a refusal is run again only by its id.
    """
    events = StripeEvent.objects.all()
    stripe_ids = list(stripe_ids)
    if stripe_ids:
        events = events.filter(stripe_id__in=stripe_ids)
    if failed:
        events = events.filter(status=EventStatus.FAILED)
    if unfinished:
        events = events.filter(status__in=UNFINISHED_STATUSES)
    types = list(types)
    if types:
        events = events.filter(type__in=types)
    if since is not None:
        events = events.filter(received_at__gte=since)
    return events


def stripe_events_missing(*, stripe_ids: Iterable[str]) -> list[str]:
    """Return those of the ids that no stored event has, in the order given."""
    stripe_ids = list(dict.fromkeys(stripe_ids))
    stored = set(StripeEvent.objects.filter(stripe_id__in=stripe_ids).values_list("stripe_id", flat=True))
    return [stripe_id for stripe_id in stripe_ids if stripe_id not in stored]


def stripe_event_replay(*, stripe_event: StripeEvent) -> EventOutcome:
    """Process a stored event again, whatever its status, with the transition source `replay`.

    Transitions only move forward, so running an event that was already processed changes nothing
    but its attempt count and outcome. Raises EventProcessingFailed (the event is then marked failed).
    """
    status = stripe_event.status
    return stripe_event_process(
        pk=stripe_event.pk,
        event=stripe_event.event,
        transition_source=TransitionSource.REPLAY,
        # Only a run that starts from the status it read may finish the event: a concurrent webhook
        # or replay that finished it first wins, and this run rolls back.
        from_statuses=UNFINISHED_STATUSES if status in UNFINISHED_STATUSES else (status,),
    )


def stripe_events_replay(*, events: QuerySet[StripeEvent], dry_run: bool = False) -> Iterator[EventOutcome]:
    """Replay the stored events, oldest first, and yield what each run did (or would do)."""
    if dry_run:
        events = events.defer("payload", "payload_text", "last_error")
    for stored in _pages(events):
        if dry_run:
            yield EventOutcome(stored.stripe_id, stored.type, stored.status, "would replay")
            continue
        try:
            outcome = stripe_event_replay(stripe_event=stored)
        except EventProcessingFailed as exc:
            outcome = EventOutcome(stored.stripe_id, stored.type, EventStatus.FAILED, str(exc), error=True)
        yield outcome


def stripe_events_backfill(
    *,
    since: datetime | None = None,
    types: Iterable[str] = (),
    undelivered_only: bool = False,
    dry_run: bool = False,
) -> Iterator[EventOutcome]:
    """Fetch events from Stripe's Events API and put each through the inbox; stored ones are no-ops.

    Raises PaymentProviderNotConfigured before any work when Stripe is not configured, and
    PaymentProviderUnavailable or PaymentProviderRefused when listing fails part way.
    """
    gateway.client()
    listed = gateway.events_list(
        created_gte=int(since.timestamp()) if since else None,
        types=list(types) or None,
        undelivered_only=undelivered_only,
    )
    yield from _receive_all(listed, source=EventSource.BACKFILL, dry_run=dry_run)


def events_file_load(*, path: str | Path) -> list[dict[str, Any]]:
    """Return the events in a JSON file holding a list of events or Stripe's list object.

    The whole file is read at once: an export is one JSON document and Stripe's events are small
    (a 30-day export of 10,000 events is tens of megabytes). Every item is checked before any is used.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except FileNotFoundError:
        raise EventFileInvalid(f"No such file: {path}") from None
    except OSError as exc:
        raise EventFileInvalid(f"Cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise EventFileInvalid(f"{path} is not UTF-8 text.") from None
    except ValueError as exc:
        raise EventFileInvalid(f"{path} is not valid JSON: {exc}") from None
    if isinstance(document, dict) and document.get("object") == "list":
        document = document.get("data")
    elif isinstance(document, dict) and document.get("object") == "event":
        document = [document]
    if not isinstance(document, list):
        raise EventFileInvalid(
            f'{path} holds neither a JSON list of events nor a Stripe list object ({{"object": "list", '
            f'"data": [...]}}).'
        )
    for position, item in enumerate(document, start=1):
        problem = _not_an_event(item)
        if problem:
            raise EventFileInvalid(f"{path}: item {position} {problem}; nothing was imported.")
    return document


def stripe_events_import(
    *, events: Iterable[dict[str, Any]], dry_run: bool = False
) -> Iterator[EventOutcome]:
    """Put events exported elsewhere through the inbox; stored ones are no-ops."""
    yield from _receive_all(events, source=EventSource.FILE, dry_run=dry_run)


def _pages(events: QuerySet[StripeEvent]) -> Iterator[StripeEvent]:
    """Yield the events in primary key order, one page at a time."""
    last_pk = 0
    while True:
        batch = list(events.filter(pk__gt=last_pk).order_by("pk")[:PAGE_SIZE])
        yield from batch
        if len(batch) < PAGE_SIZE:
            return
        last_pk = batch[-1].pk


def _receive_all(events: Iterable[dict[str, Any]], *, source: str, dry_run: bool) -> Iterator[EventOutcome]:
    for event in events:
        if dry_run:
            status = stripe_event_status(stripe_id=event["id"])
            yield EventOutcome.of(event, status or "new", "would receive")
            continue
        try:
            outcome = stripe_event_receive(event=event, source=source)
        except EventProcessingFailed as exc:
            outcome = EventOutcome.of(event, EventStatus.FAILED, str(exc), error=True)
        yield outcome


def _not_an_event(item: Any) -> str:
    """Return what keeps the item from being a Stripe event, or an empty string."""
    if not isinstance(item, dict) or item.get("object") != "event":
        return 'is not a Stripe event (no "object": "event")'
    if not isinstance(item.get("id"), str) or not item["id"]:
        return "has no event id"
    if not isinstance(item.get("type"), str) or not isinstance(item.get("data"), dict):
        return f"({item['id']}) has no type or no data"
    return ""
