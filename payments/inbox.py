"""The event inbox, which is also the queue: each event is stored once, from any source, by one INSERT ... ON
CONFLICT, and its row is its queue entry until a worker finishes it by a conditional UPDATE in the handler's
transaction (a run that finds it finished elsewhere rolls back). See docs/design.md, "The inbox"."""

import json
import logging
import traceback
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, DataError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from orders.db import storable_text
from orders.logs import current_log_fields, log_fields
from orders.models import TransitionSource
from payments import gateway
from payments.handlers import EventOutcome, event_handle
from payments.models import REQUEST_ID_MAX_LENGTH, UNFINISHED_STATUSES, EventSource, EventStatus, StripeEvent

logger = logging.getLogger(__name__)

# Logged at error level: a person has to act on these.
NEEDS_A_PERSON = frozenset({EventStatus.FAILED, EventStatus.NEEDS_REVIEW})
# Events not fetched from a live delivery are applied as replays.
TRANSITION_SOURCES = {
    EventSource.WEBHOOK: TransitionSource.WEBHOOK,
    EventSource.BACKFILL: TransitionSource.REPLAY,
    EventSource.FILE: TransitionSource.REPLAY,
}
# Errors the same event raises every time (a value the database refuses, a field of a shape the code does not
# read): no retry cures them. A lost connection, a lock timeout or an unavailable Stripe still retry.
DETERMINISTIC_ERRORS = (DataError, KeyError, TypeError, ValueError, AttributeError)
PAGE_SIZE = 200
TABLE = StripeEvent._meta.db_table
_ORDER = StripeEvent._meta.get_field("order")


class EventNotStored(Exception):
    """The event could not be stored (the database is unreachable, say); it must not be acknowledged."""


class EventProcessingFailed(Exception):
    """Processing the stored event hit an unexpected error; it is marked failed and will be retried."""


class EventFileInvalid(Exception):
    """The events file cannot be read or does not hold Stripe events."""


class _FinishedElsewhere(Exception):
    """Another run finished this event while we processed it: roll our work back."""


def stripe_event_intake(
    *, event: dict[str, Any], payload: bytes | str | None = None, source: str = EventSource.WEBHOOK
) -> EventOutcome:
    """Store a verified event as work to do, in one statement; a copy changes nothing but a failed event's
    next attempt, brought forward to now. `payload`: the body as it came (None: serialised here)."""
    text = (
        payload.decode() if isinstance(payload, bytes) else json.dumps(event) if payload is None else payload
    )
    created = event.get("created")
    now = timezone.now()
    row = [
        event["id"],
        event["type"],
        storable_text(str(event.get("api_version") or ""), max_length=64),
        event.get("livemode") is True,
        datetime.fromtimestamp(created, tz=UTC)
        if isinstance(created, int) and 0 <= created < 2**33
        else None,
        text,
        text,
        source,
        current_log_fields().get("request_id", "")[:REQUEST_ID_MAX_LENGTH],
        now,
        now,
    ]
    try:
        try:
            # Inside a caller's transaction, a savepoint keeps it usable for the second try below; the
            # webhook runs in autocommit, where the statement is its own transaction.
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                stored = _execute(_intake_sql(queryable=True), row)
        except DataError as exc:
            # jsonb refuses a \u0000 or a lone surrogate that JSON allows; a text column holds the body.
            logger.warning("event %s: stored without its queryable JSON copy: %s", event["id"], exc)
            stored = _execute(_intake_sql(queryable=False), row[:6] + row[7:])
    except DatabaseError as exc:
        logger.error("event %s %s: could not be stored: %s", event["id"], event["type"], exc)
        raise EventNotStored(f"Could not store event {event['id']}: {exc}") from exc
    if not stored:
        logger.info("event %s %s (%s): a copy, stored before", event["id"], event["type"], source)
        return EventOutcome.of(event, "stored", "stored before", duplicate=True)
    if stored[0][0]:  # attempts: a failed event, queued again
        logger.info("event %s %s (%s): failed before, queued again", event["id"], event["type"], source)
        return EventOutcome.of(event, EventStatus.FAILED, "stored before, processing queued again")
    logger.info("event %s %s (%s): stored, queued", event["id"], event["type"], source)
    return EventOutcome.of(event, EventStatus.RECEIVED, "processing queued")


@cache
def _intake_sql(*, queryable: bool) -> str:
    json_copy = ("%s::jsonb" if connection.vendor == "postgresql" else "%s") if queryable else "NULL"
    return (
        f"INSERT INTO {TABLE} (stripe_id, type, api_version, livemode, stripe_created, payload_text, "
        "payload, source, request_id, status, attempts, outcome, last_error, received_at, next_attempt_at) "
        f"VALUES (%s, %s, %s, %s, %s, %s, {json_copy}, %s, %s, 'received', 0, '', '', %s, %s) "
        f"ON CONFLICT (stripe_id) DO UPDATE SET next_attempt_at = excluded.next_attempt_at "
        f"WHERE {TABLE}.status = 'failed' RETURNING attempts"
    )


def _execute(statement: str, params: list[Any]) -> list[tuple]:
    """Run one statement with Django's own adaptation of the parameters; return what it returns."""
    adapted = [connection.ops.adapt_datetimefield_value(p) if isinstance(p, datetime) else p for p in params]
    with connection.cursor() as cursor:
        cursor.execute(statement, adapted)
        return cursor.fetchall() if cursor.description else []


@dataclass(frozen=True)
class Claimed:
    """An event a worker holds until its lease runs out."""

    pk: int
    stripe_id: str
    type: str
    source: str
    payload_text: str
    request_id: str  # of the delivery that stored it: the worker's lines for it carry it too


def stripe_events_claim(*, limit: int, lease: timedelta) -> list[Claimed]:
    """Claim up to `limit` due events no live worker holds, longest due first, in one statement (SKIP LOCKED
    on PostgreSQL lets workers claim side by side; SQLite's one writer serialises the claims)."""
    now = timezone.now()
    skip_locked = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    statement = (
        f"UPDATE {TABLE} SET claimed_until = %s WHERE id IN (SELECT id FROM {TABLE} "
        "WHERE status IN ('received', 'failed') AND next_attempt_at <= %s "
        "AND (claimed_until IS NULL OR claimed_until < %s) "
        f"ORDER BY next_attempt_at, id LIMIT %s{skip_locked}) "
        "RETURNING id, stripe_id, type, source, payload_text, request_id"
    )
    rows = _execute(statement, [now + lease, now, now, limit])
    return sorted((Claimed(*row) for row in rows), key=lambda claimed: claimed.pk)


def stripe_events_release(*, pks: Iterable[int]) -> int:
    """Give back claimed events not processed (a worker stopping), so the next worker takes them at once."""
    return StripeEvent.objects.filter(pk__in=list(pks), status__in=UNFINISHED_STATUSES).update(
        claimed_until=None
    )


def stripe_event_process_claimed(claimed: Claimed) -> EventOutcome:
    """Process an event this worker claimed; an unexpected error is stored, with its retry, and returned."""
    event = json.loads(claimed.payload_text)
    try:
        with log_fields(request_id=claimed.request_id):
            return stripe_event_process(
                pk=claimed.pk, event=event, transition_source=TRANSITION_SOURCES[claimed.source]
            )
    except EventProcessingFailed as exc:
        return EventOutcome.of(event, EventStatus.FAILED, str(exc), error=True)


def retry_delay(*, attempt: int) -> timedelta:
    """Return how long to wait after the given failed attempt (1, 2, ...): doubling from the base, capped."""
    seconds = settings.RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0)
    return timedelta(seconds=min(seconds, settings.RETRY_MAX_SECONDS))


def stripe_event_process(
    *,
    pk: int,
    event: dict[str, Any],
    transition_source: str,
    from_statuses: Iterable[str] = UNFINISHED_STATUSES,
) -> EventOutcome:
    """Run the event's handler and store its outcome in one transaction, unless another run finished it (left
    `from_statuses`). Raises EventProcessingFailed on an unexpected error, stored as failed."""
    with log_fields(event_id=event["id"], event_type=event["type"]):
        return _process(pk, event, transition_source, tuple(from_statuses))


def _process(pk: int, event: dict[str, Any], transition_source: str, from_statuses: tuple) -> EventOutcome:
    try:
        with transaction.atomic():
            outcome = event_handle(event=event, source=transition_source)
            if not _finish(pk, outcome, from_statuses):
                raise _FinishedElsewhere
    except _FinishedElsewhere:
        status = StripeEvent.objects.filter(pk=pk).values_list("status", flat=True).first() or ""
        logger.info("event %s %s: finished concurrently, now %s", event["id"], event["type"], status)
        return EventOutcome.of(event, status, "finished concurrently", duplicate=True)
    except DETERMINISTIC_ERRORS as exc:
        outcome = EventOutcome.of(
            event, EventStatus.NEEDS_REVIEW, f"cannot be processed as sent: {type(exc).__name__}: {exc}"
        )
        _record_failure(pk, event, exc, from_statuses, outcome)
        return outcome
    except Exception as exc:
        failed = EventOutcome.of(event, EventStatus.FAILED, f"unexpected error: {type(exc).__name__}: {exc}")
        _record_failure(pk, event, exc, from_statuses, failed)
        raise EventProcessingFailed(f"Event {event['id']} could not be processed: {failed.reason}") from exc
    outcome = replace(outcome, source=transition_source)
    log = logger.error if outcome.status in NEEDS_A_PERSON else logger.info
    log(
        "event %s %s %s: %s (order=%s session=%s source=%s)",
        outcome.stripe_id,
        outcome.type,
        outcome.status,
        outcome.reason,
        outcome.order_id or "-",
        outcome.session_id or "-",
        transition_source,
        extra={
            name: str(value)
            for name, value in (("order_id", outcome.order_id), ("checkout_session_id", outcome.session_id))
            if value
        },
    )
    return outcome


def _finish(pk: int, outcome: EventOutcome, from_statuses: tuple[str, ...]) -> bool:
    """Store the run's outcome unless the event left `from_statuses`; return whether it did (raw SQL: hot)."""
    order_id = _ORDER.get_db_prep_save(outcome.order_id, connection)
    params = [str(outcome.status), storable_text(outcome.reason), order_id, timezone.now(), pk]
    return bool(_execute(_finish_sql(len(from_statuses)), [*params, *from_statuses]))


@cache
def _finish_sql(statuses: int) -> str:
    return (
        f"UPDATE {TABLE} SET status = %s, outcome = %s, order_id = %s, processed_at = %s, "
        "attempts = attempts + 1, last_error = '', next_attempt_at = NULL, claimed_until = NULL "
        f"WHERE id = %s AND status IN ({', '.join(['%s'] * statuses)}) RETURNING id"
    )


def _record_failure(
    pk: int, event: dict[str, Any], exc: Exception, from_statuses: tuple[str, ...], outcome: EventOutcome
) -> None:
    """Store the failure, its traceback and next attempt, unless another run finished the event meanwhile."""
    logger.error(
        "event %s %s %s: %s", event["id"], event["type"], outcome.status, outcome.reason, exc_info=exc
    )
    try:
        with transaction.atomic():
            attempts = StripeEvent.objects.values_list("attempts", flat=True).get(pk=pk) + 1
            retry = outcome.status == EventStatus.FAILED and attempts < settings.STRIPE_EVENT_MAX_ATTEMPTS
            StripeEvent.objects.filter(pk=pk, status__in=from_statuses).update(
                status=outcome.status,
                outcome=storable_text(outcome.reason),
                last_error=storable_text("".join(traceback.format_exception(exc))),
                attempts=attempts,
                processed_at=None if outcome.status == EventStatus.FAILED else timezone.now(),
                next_attempt_at=timezone.now() + retry_delay(attempt=attempts) if retry else None,
                claimed_until=None,
            )
    except DatabaseError:
        # The event stays as it was, claimed until its lease runs out; then any worker takes it again.
        logger.exception("event %s %s: could not record the failure either", event["id"], event["type"])
        return
    if outcome.status == EventStatus.FAILED and not retry:
        logger.error(
            "event %s: attempt %d failed, no retry left (replay_events --failed)", event["id"], attempts
        )


def stripe_events_selected(
    *,
    stripe_ids: Iterable[str] = (),
    failed: bool = False,
    unfinished: bool = False,
    types: Iterable[str] = (),
    since: datetime | None = None,
) -> QuerySet[StripeEvent]:
    """Return the stored events matching every given filter; never needs_review ones but by their id."""
    filters = {
        "stripe_id__in": list(stripe_ids),
        "status": EventStatus.FAILED if failed else None,
        "status__in": UNFINISHED_STATUSES if unfinished else None,
        "type__in": list(types),
        "received_at__gte": since,
    }
    return StripeEvent.objects.filter(**{name: value for name, value in filters.items() if value})


def stripe_events_missing(*, stripe_ids: Iterable[str]) -> list[str]:
    """Return those of the ids that no stored event has, in the order given."""
    stripe_ids = list(dict.fromkeys(stripe_ids))
    stored = set(StripeEvent.objects.filter(stripe_id__in=stripe_ids).values_list("stripe_id", flat=True))
    return [stripe_id for stripe_id in stripe_ids if stripe_id not in stored]


def stripe_events_replay(*, events: QuerySet[StripeEvent], dry_run: bool = False) -> Iterator[EventOutcome]:
    """Process the stored events again, oldest first, whatever their status; yield what each run did. Only a
    run from the status it read may finish an event, so a concurrent run wins cleanly."""
    for stored in _pages(events.defer("payload", "payload_text", "last_error") if dry_run else events):
        if stored.status == EventStatus.SETTLED:
            yield EventOutcome(stored.stripe_id, stored.type, stored.status, "settled by a person: left so")
            continue
        if dry_run:
            yield EventOutcome(stored.stripe_id, stored.type, stored.status, "would replay")
            continue
        statuses = UNFINISHED_STATUSES if stored.status in UNFINISHED_STATUSES else (stored.status,)
        try:
            yield stripe_event_process(
                pk=stored.pk,
                event=stored.event,
                transition_source=TransitionSource.REPLAY,
                from_statuses=statuses,
            )
        except EventProcessingFailed as exc:
            yield EventOutcome(stored.stripe_id, stored.type, EventStatus.FAILED, str(exc), error=True)


def stripe_events_backfill(
    *,
    since: datetime | None = None,
    types: Iterable[str] = (),
    undelivered_only: bool = False,
    dry_run: bool = False,
) -> Iterator[EventOutcome]:
    """Take in the events Stripe's Events API lists (30 days of them) through the intake; yield outcomes."""
    gateway.client()  # PaymentProviderNotConfigured before any work
    listed = gateway.events_list(
        created_gte=int(since.timestamp()) if since else None,
        types=list(types) or None,
        undelivered_only=undelivered_only,
    )
    yield from stripe_events_import(events=listed, source=EventSource.BACKFILL, dry_run=dry_run)


def events_file_load(*, path: str | Path) -> list[dict[str, Any]]:
    """Return the events of a JSON file holding a list of events, one event, or Stripe's list object; every
    item is checked before any is used."""
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
    kind = document.get("object") if isinstance(document, dict) else None
    document = document.get("data") if kind == "list" else [document] if kind == "event" else document
    if not isinstance(document, list):
        raise EventFileInvalid(
            f'{path} holds neither a JSON list of events nor a Stripe list object ({{"object": "list", '
            f'"data": [...]}}).'
        )
    for position, item in enumerate(document, start=1):
        if problem := _not_an_event(item):
            raise EventFileInvalid(f"{path}: item {position} {problem}; nothing was imported.")
    return document


def _pages(events: QuerySet[StripeEvent]) -> Iterator[StripeEvent]:
    """Yield the events by primary key a page at a time: rows change status while being walked."""
    last_pk = 0
    while True:
        batch = list(events.filter(pk__gt=last_pk).order_by("pk")[:PAGE_SIZE])
        yield from batch
        if len(batch) < PAGE_SIZE:
            return
        last_pk = batch[-1].pk


def stripe_events_import(
    *, events: Iterable[dict[str, Any]], source: str = EventSource.FILE, dry_run: bool = False
) -> Iterator[EventOutcome]:
    """Take in events exported elsewhere (or listed by Stripe) through the intake; yield each outcome."""
    for event in events:
        if dry_run:
            status = (
                StripeEvent.objects.filter(stripe_id=event["id"]).values_list("status", flat=True).first()
            )
            yield EventOutcome.of(event, status or "new", "would be taken in")
        else:
            yield stripe_event_intake(event=event, source=source)


def _not_an_event(item: Any) -> str:
    """Return what keeps the item from being a Stripe event, or an empty string."""
    if not isinstance(item, dict) or item.get("object") != "event":
        return 'is not a Stripe event (no "object": "event")'
    if not isinstance(item.get("id"), str) or not item["id"]:
        return "has no event id"
    if not isinstance(item.get("type"), str) or not isinstance(item.get("data"), dict):
        return f"({item['id']}) has no type or no data"
    if not (gateway.is_identifier(item["id"]) and gateway.is_identifier(item["type"])):
        return f"({item['id']!r}) has an id or type Stripe would not send"
    return ""
