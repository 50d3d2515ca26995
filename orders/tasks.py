"""The fulfillment signal as a task: enqueued by the winning fulfil, in its transaction, run by a worker.

The task row commits with the transition (the database backend writes it in the caller's transaction),
so a fulfilled order always has its signal queued: no window between the commit and the signal. The
receivers run in the worker, outside the order's row lock; one that raises rolls back its writes with
the claim (`order_fulfillment_signal_send`), and the task runs again after a backoff. When the attempts
run out the signal stays owed and `reconcile_orders` sends it.
"""

import logging
import uuid

from django.conf import settings
from django_tasks import task

from orders.fulfillment import order_fulfillment_signal_send
from orders.retries import task_retry_enqueue

logger = logging.getLogger(__name__)


@task()
def order_fulfillment_signal_task(
    *, order_id: str, source: str, stripe_event_id: str | None, attempt: int = 1
) -> bool:
    """Send `order_fulfilled` unless it was sent; return whether this run sent it."""
    try:
        # A task's arguments travel as JSON: hand receivers the UUID the other senders give them.
        return order_fulfillment_signal_send(
            order_id=uuid.UUID(order_id), source=source, stripe_event_id=stripe_event_id
        )
    except Exception as exc:
        retry_at = task_retry_enqueue(
            task=order_fulfillment_signal_task,
            attempt=attempt,
            max_attempts=settings.FULFILLMENT_SIGNAL_MAX_ATTEMPTS,
            kwargs={
                "order_id": order_id,
                "source": source,
                "stripe_event_id": stripe_event_id,
                "attempt": attempt + 1,
            },
        )
        logger.warning(
            "order %s fulfillment signal failed on attempt %d (event=%s): %s: %s; %s",
            order_id,
            attempt,
            stripe_event_id or "-",
            type(exc).__name__,
            exc,
            f"retry at {retry_at.isoformat()}" if retry_at else "left owed for reconcile_orders",
        )
        raise
