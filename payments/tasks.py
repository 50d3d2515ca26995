"""The worker's half of the inbox: process one stored event, and retry it with backoff if it crashes.

The task runs the inbox's `stripe_event_process`: the handler's transition and the event's status in
one transaction, finished only from an unfinished status, so a task that runs twice (a retry racing a
Dashboard resend, a lease that expired under a slow worker) changes nothing the second time.

Only an unexpected error (`EventProcessingFailed`: the inbox has marked the event `failed` with its
traceback) is retried. A final outcome, a refusal no retry can change, returns normally and is never
retried. The event's own `attempts` counts the tries, so the limit holds across retries, resends and
workers; after STRIPE_EVENT_MAX_ATTEMPTS the event stays `failed` for `replay_events --failed`.
"""

import json
import logging

from django.conf import settings
from django_tasks import task

from orders.retries import task_retry_enqueue
from payments.models import UNFINISHED_STATUSES, EventSource, StripeEvent
from payments.services.inbox import TRANSITION_SOURCES, EventProcessingFailed, stripe_event_process

logger = logging.getLogger(__name__)


@task()
def stripe_event_process_task(*, stripe_event_id: str) -> str:
    """Process the stored event unless it is finished; return what became of it."""
    stored = (
        StripeEvent.objects.filter(stripe_id=stripe_event_id)
        .values("pk", "status", "source", "payload_text")
        .first()
    )
    if stored is None:
        logger.error("event %s: queued for processing but not stored; nothing to do", stripe_event_id)
        return "missing"
    if stored["status"] not in UNFINISHED_STATUSES:
        return f"already {stored['status']}"
    try:
        result = stripe_event_process(
            pk=stored["pk"],
            event=json.loads(stored["payload_text"]),
            transition_source=TRANSITION_SOURCES[EventSource(stored["source"])],
            from_statuses=UNFINISHED_STATUSES,
        )
    except EventProcessingFailed:
        attempts = StripeEvent.objects.filter(pk=stored["pk"]).values_list("attempts", flat=True).get()
        retry_at = task_retry_enqueue(
            task=stripe_event_process_task,
            attempt=attempts,
            max_attempts=settings.STRIPE_EVENT_MAX_ATTEMPTS,
            kwargs={"stripe_event_id": stripe_event_id},
        )
        if retry_at:
            logger.warning(
                "event %s: attempt %d failed, retry at %s", stripe_event_id, attempts, retry_at.isoformat()
            )
        else:
            logger.error(
                "event %s: attempt %d failed, no retry left; it stays failed (replay_events --failed)",
                stripe_event_id,
                attempts,
            )
        raise
    return result.reply
