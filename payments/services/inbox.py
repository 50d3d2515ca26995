"""The event inbox: store an event first, then process it once, however often it arrives.

1. Record: one INSERT, committed on its own, so the event is durable before anything acts on it.
   The unique Stripe event id settles concurrent copies; the loser reads the stored status.
2. Process: in ONE transaction, the handler's order transition and the event's final status, the
   latter by a conditional UPDATE. If that UPDATE finds the event already finished by another
   worker, everything rolls back and the delivery counts as a duplicate.
3. Fail: an unexpected error rolls the transaction back, then the event is marked failed with its
   traceback in a transaction of its own, and the caller learns it must not acknowledge.
"""

import json
import logging
import traceback
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any, TypeVar

from django.db import DatabaseError, DataError, IntegrityError, connection, transaction
from django.db.models import F, JSONField, Value
from django.db.models.functions import Cast
from django.utils import timezone

from orders.db import storable_text
from orders.models import TransitionSource
from payments.handlers import event_handle
from payments.models import FINISHED_STATUSES, UNFINISHED_STATUSES, EventSource, EventStatus, StripeEvent
from payments.outcome import EventOutcome

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Logged at error level: a person has to act on these.
NEEDS_A_PERSON = frozenset({EventStatus.FAILED, EventStatus.NEEDS_REVIEW})

# Events a project stores but did not fetch from a live delivery are applied as replays.
TRANSITION_SOURCES = {
    EventSource.WEBHOOK: TransitionSource.WEBHOOK,
    EventSource.BACKFILL: TransitionSource.REPLAY,
    EventSource.FILE: TransitionSource.REPLAY,
}


# Errors the same event raises every time (the database refuses one of its values, a field has a shape the
# code does not expect): retrying cannot cure them, so the event waits for a person at once. A lost
# connection, a lock timeout or a deadlock (OperationalError) and an unavailable Stripe still retry.
DETERMINISTIC_ERRORS = (DataError, KeyError, TypeError, ValueError, AttributeError)


class EventNotStored(Exception):
    """The event could not be stored (the database is unreachable, say); it must not be acknowledged."""


class EventProcessingFailed(Exception):
    """Processing the stored event hit an unexpected error; it is marked failed and must be retried."""

    def __init__(self, message: str, *, stripe_id: str):
        super().__init__(message)
        self.stripe_id = stripe_id


class _FinishedElsewhere(Exception):
    """Another worker finished this event while we processed it: roll our work back."""


def stripe_event_receive(
    *,
    event: dict[str, Any],
    payload: bytes | str | None = None,
    source: str = EventSource.WEBHOOK,
) -> EventOutcome:
    """Store a verified event unless it is stored already, and process it unless it is finished."""
    pk, status, created = stripe_event_record(event=event, payload=payload, source=source)
    if not created and status in FINISHED_STATUSES:
        logger.info(
            "event %s %s: duplicate, already %s (source=%s)", event["id"], event["type"], status, source
        )
        return EventOutcome.of(event, status, "already finished", duplicate=True)
    return stripe_event_process(
        pk=pk,
        event=event,
        transition_source=TRANSITION_SOURCES[EventSource(source)],
        from_statuses=UNFINISHED_STATUSES,
    )


def stripe_event_record(
    *,
    event: dict[str, Any],
    payload: bytes | str | None = None,
    source: str = EventSource.WEBHOOK,
) -> tuple[int, str, bool]:
    """Insert the event as received; return its pk, its status and whether this call stored it.

    Raises EventNotStored when the database cannot store or read it.
    """

    def store(*, queryable: bool) -> int:
        # Its own transaction: a savepoint inside a caller's (a failed INSERT would poison it), else the
        # INSERT alone, which commits by itself in one round trip.
        with transaction.atomic(savepoint=True) if connection.in_atomic_block else nullcontext():
            return stripe_event_insert(event=event, payload=payload, source=source, queryable=queryable)

    try:
        try:
            return stored_despite_json(store, event=event), EventStatus.RECEIVED, True
        except IntegrityError:
            existing = StripeEvent.objects.filter(stripe_id=event["id"]).values_list("pk", "status").first()
            if existing is None:
                raise
            return existing[0], existing[1], False
    except DatabaseError as exc:
        logger.error("event %s %s: could not be stored: %s", event.get("id"), event.get("type"), exc)
        raise EventNotStored(f"Could not store event {event.get('id')}: {exc}") from exc


def stripe_event_insert(
    *, event: dict[str, Any], payload: bytes | str | None, source: str, queryable: bool = True
) -> int:
    """Insert the event as received and return its pk; a stored copy raises IntegrityError.

    `payload` is the raw body the event was parsed from, stored as it came (None: the event is serialised
    here). Without `queryable` the JSON copy is left out (see `stored_despite_json`).
    """
    if payload is None:
        text = json.dumps(event)
    else:
        text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
    return _insert(event, text, source, queryable=queryable)


def stored_despite_json(store: Callable[..., T], *, event: dict[str, Any]) -> T:
    """Return `store(queryable=True)`, or, when the database's JSON type refuses the event, its result
    without the JSON copy: jsonb cannot hold a \\u0000 that JSON allows, a text column always holds the body.

    `store` runs its own transaction, which the refusal rolls back whole, so no savepoint is needed.
    """
    try:
        return store(queryable=True)
    except DataError as exc:
        logger.warning(
            "event %s %s: stored without its queryable copy, which the database cannot hold: %s",
            event["id"],
            event["type"],
            str(exc).strip(),
        )
        return store(queryable=False)


def _insert(event: dict[str, Any], text: str, source: str, *, queryable: bool) -> int:
    created = event.get("created")
    return StripeEvent.objects.create(
        stripe_id=event["id"],
        type=event["type"],
        api_version=storable_text(str(event.get("api_version") or ""), max_length=64),
        livemode=event.get("livemode") is True,
        stripe_created=datetime.fromtimestamp(created, tz=dt_timezone.utc)
        if isinstance(created, int) and 0 <= created < 2**33
        else None,
        payload_text=text,
        payload=Cast(Value(text), output_field=JSONField()) if queryable else None,
        source=source,
    ).pk


def stripe_event_status(*, stripe_id: str) -> str | None:
    """Return the stored event's status, or None when no event of that id is stored."""
    return StripeEvent.objects.filter(stripe_id=stripe_id).values_list("status", flat=True).first()


def stripe_event_process(
    *,
    pk: int,
    event: dict[str, Any],
    transition_source: str,
    from_statuses: Iterable[str] = UNFINISHED_STATUSES,
) -> EventOutcome:
    """Run the event's handler and store its outcome in one transaction, unless another worker did.

    `from_statuses` are the stored statuses this run may finish; a row found in any other status
    was finished concurrently, and this run rolls back and reports a duplicate.
    """
    from_statuses = tuple(from_statuses)
    try:
        with transaction.atomic():
            outcome = event_handle(event=event, source=transition_source)
            finished = StripeEvent.objects.filter(pk=pk, status__in=from_statuses).update(
                status=outcome.status,
                outcome=storable_text(outcome.reason),
                order_id=outcome.order_id,
                processed_at=timezone.now(),
                attempts=F("attempts") + 1,
                last_error="",
            )
            if not finished:
                raise _FinishedElsewhere
    except _FinishedElsewhere:
        status = StripeEvent.objects.filter(pk=pk).values_list("status", flat=True).first() or ""
        logger.info(
            "event %s %s: finished concurrently by another worker, now %s", event["id"], event["type"], status
        )
        return EventOutcome.of(event, status, "finished concurrently", duplicate=True)
    except DETERMINISTIC_ERRORS as exc:
        outcome = EventOutcome.of(
            event, EventStatus.NEEDS_REVIEW, f"cannot be processed as sent: {type(exc).__name__}: {exc}"
        )
        _record_failure(pk=pk, event=event, exc=exc, from_statuses=from_statuses, outcome=outcome)
        return outcome
    except Exception as exc:
        failed = EventOutcome.of(event, EventStatus.FAILED, f"unexpected error: {type(exc).__name__}: {exc}")
        _record_failure(pk=pk, event=event, exc=exc, from_statuses=from_statuses, outcome=failed)
        raise EventProcessingFailed(
            f"Event {event['id']} could not be processed: {type(exc).__name__}: {exc}", stripe_id=event["id"]
        ) from exc
    _log_outcome(outcome, transition_source)
    return outcome


def _record_failure(
    *, pk: int, event: dict[str, Any], exc: Exception, from_statuses: tuple[str, ...], outcome: EventOutcome
) -> None:
    """Store the failed run's status, reason and traceback, unless another worker finished the event."""
    retry = "left for a retry" if outcome.status == EventStatus.FAILED else "no retry can cure it"
    logger.error(
        "event %s %s: processing failed, %s: %s: %s",
        event["id"],
        event["type"],
        retry,
        type(exc).__name__,
        exc,
        exc_info=exc,
    )
    try:
        with transaction.atomic():
            StripeEvent.objects.filter(pk=pk, status__in=from_statuses).update(
                status=outcome.status,
                outcome=storable_text(outcome.reason),
                last_error=storable_text("".join(traceback.format_exception(exc))),
                attempts=F("attempts") + 1,
                processed_at=timezone.now() if outcome.status != EventStatus.FAILED else None,
            )
    except DatabaseError:
        # The event stays as it was (received, most likely) and is processed again on redelivery.
        logger.exception("event %s %s: could not record the failure either", event["id"], event["type"])


def _log_outcome(outcome: EventOutcome, transition_source: str) -> None:
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
    )
