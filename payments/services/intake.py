"""The webhook's half of the inbox: store a verified event and queue its processing, in one commit.

The event row and its task row are written in one transaction, so an acknowledged event always has its
processing queued (the database task backend writes the task as a row; nothing waits for an on-commit
hook that a crash could skip). The worker's task (`payments.tasks`) does what the inbox always did: the
transition and the event's status in one transaction.

A copy of an event already finished (processed, ignored) queues nothing. A copy of an event still
unfinished (received, failed) queues its processing again: the webhook cannot tell cheaply whether a task
for it is still waiting (one stored by a backfill that crashed has none), and a task too many costs one
read, since it finds the event finished and stops, while a task too few leaves an acknowledged event
unprocessed. The inbox's conditional UPDATE keeps the processing exactly-once either way.
"""

import logging
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction

from payments.models import UNFINISHED_STATUSES, EventSource, EventStatus
from payments.outcome import EventOutcome
from payments.services.inbox import (
    EventNotStored,
    stored_despite_json,
    stripe_event_insert,
    stripe_event_status,
)
from payments.tasks import stripe_event_process_task

logger = logging.getLogger(__name__)


def stripe_event_intake(*, event: dict[str, Any], payload: bytes | str) -> EventOutcome:
    """Store a verified event delivery and queue its processing, unless a stored copy is finished.

    Raises EventNotStored when the database cannot take the event, or its task, right now.
    """
    try:
        try:
            # The INSERT comes first and without a savepoint (two round trips fewer): a stored copy's
            # IntegrityError rolls back the whole transaction, which holds nothing else yet.
            def store(*, queryable: bool) -> None:
                with transaction.atomic():
                    stripe_event_insert(
                        event=event, payload=payload, source=EventSource.WEBHOOK, queryable=queryable
                    )
                    stripe_event_process_task.enqueue(stripe_event_id=event["id"])

            stored_despite_json(store, event=event)
            created, status, queue = True, EventStatus.RECEIVED, True
        except IntegrityError:
            status = stripe_event_status(stripe_id=event["id"])
            if status is None:
                raise
            created, queue = False, status in UNFINISHED_STATUSES
            if queue:
                stripe_event_process_task.enqueue(stripe_event_id=event["id"])
    except DatabaseError as exc:
        # The INSERTs are rolled back together: Stripe delivers again, and nothing half-stored is left.
        logger.error("event %s %s: could not be stored and queued: %s", event["id"], event["type"], exc)
        raise EventNotStored(f"Could not store event {event['id']}: {exc}") from exc
    if created:
        logger.info("event %s %s: stored, processing queued", event["id"], event["type"])
    else:
        logger.info(
            "event %s %s: duplicate delivery, event is %s%s",
            event["id"],
            event["type"],
            status,
            ", processing queued again" if queue else "",
        )
    if created:
        return EventOutcome.of(event, EventStatus.RECEIVED, "processing queued")
    if queue:
        return EventOutcome.of(event, status, "stored before, processing queued again")
    return EventOutcome.of(event, status, "already finished", duplicate=True)
