"""The event inbox: store an event first, then process it once, however often it arrives.

1. Record: one INSERT, committed on its own, so the event is durable before anything acts on it.
   The unique Stripe event id settles concurrent copies; the loser reads the stored status.
2. Process: in ONE transaction, the handler's order transition and the event's final status, the
   latter by a conditional UPDATE. If that UPDATE finds the event already finished by another
   worker, everything rolls back and the delivery counts as a duplicate.
3. Fail: an unexpected error rolls the transaction back, then the event is marked failed with its
   traceback in a transaction of its own, and the caller learns it must not acknowledge.
"""

import logging
import traceback
from collections.abc import Iterable
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, JSONField, Value
from django.db.models.functions import Cast
from django.utils import timezone

from orders.models import TransitionSource
from payments.handlers import event_handle
from payments.models import FINISHED_STATUSES, UNFINISHED_STATUSES, EventSource, EventStatus, StripeEvent
from payments.outcome import EventOutcome

logger = logging.getLogger(__name__)

# Logged at error level: a person has to act on these.
NEEDS_A_PERSON = frozenset({EventStatus.FAILED, EventStatus.NEEDS_REVIEW})

# Events a project stores but did not fetch from a live delivery are applied as replays.
TRANSITION_SOURCES = {
    EventSource.WEBHOOK: TransitionSource.WEBHOOK,
    EventSource.BACKFILL: TransitionSource.REPLAY,
    EventSource.FILE: TransitionSource.REPLAY,
}


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
    try:
        try:
            # Inside a caller's transaction a failed INSERT would poison it: isolate it in a savepoint.
            # Outside one, the INSERT commits by itself, in one round trip.
            if connection.in_atomic_block:
                with transaction.atomic():
                    pk = stripe_event_insert(event=event, payload=payload, source=source)
            else:
                pk = stripe_event_insert(event=event, payload=payload, source=source)
            return pk, EventStatus.RECEIVED, True
        except IntegrityError:
            existing = StripeEvent.objects.filter(stripe_id=event["id"]).values_list("pk", "status").first()
            if existing is None:
                raise
            return existing[0], existing[1], False
    except DatabaseError as exc:
        logger.error("event %s %s: could not be stored: %s", event.get("id"), event.get("type"), exc)
        raise EventNotStored(f"Could not store event {event.get('id')}: {exc}") from exc


def stripe_event_insert(*, event: dict[str, Any], payload: bytes | str | None, source: str) -> int:
    """Insert the event as received and return its pk; a stored copy raises IntegrityError.

    `payload` is the raw body the event was parsed from, stored as it came instead of serialising
    the parsed event again.
    """
    if payload is None:
        stored_payload: Any = event
    else:
        text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
        stored_payload = Cast(Value(text), output_field=JSONField())
    created = event.get("created")
    return StripeEvent.objects.create(
        stripe_id=event["id"],
        type=event["type"],
        api_version=event.get("api_version") or "",
        livemode=bool(event.get("livemode")),
        stripe_created=datetime.fromtimestamp(created, tz=dt_timezone.utc)
        if isinstance(created, int)
        else None,
        payload=stored_payload,
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
                outcome=outcome.reason,
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
    except Exception as exc:
        _record_failure(pk=pk, event=event, exc=exc, from_statuses=from_statuses)
        raise EventProcessingFailed(
            f"Event {event['id']} could not be processed: {type(exc).__name__}: {exc}", stripe_id=event["id"]
        ) from exc
    _log_outcome(outcome, transition_source)
    return outcome


def _record_failure(
    *, pk: int, event: dict[str, Any], exc: Exception, from_statuses: tuple[str, ...]
) -> None:
    """Mark the event failed with the traceback, unless another worker finished it meanwhile."""
    logger.error(
        "event %s %s: processing failed, left for a retry: %s: %s",
        event["id"],
        event["type"],
        type(exc).__name__,
        exc,
        exc_info=exc,
    )
    try:
        with transaction.atomic():
            StripeEvent.objects.filter(pk=pk, status__in=from_statuses).update(
                status=EventStatus.FAILED,
                outcome=f"unexpected error: {type(exc).__name__}: {exc}",
                last_error="".join(traceback.format_exception(exc)),
                attempts=F("attempts") + 1,
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
