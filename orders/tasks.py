"""The shop's signals as tasks: each enqueued in the transaction that makes it due, run by a worker.

The task row commits with the change that makes the signal due (the database backend writes it in the
caller's transaction): the fulfilling transition for `order_fulfilled`, the refund that succeeded for
`order_refunded`, the dispute status reached for `order_disputed`. So a due signal always has its task
queued: no window between the commit and the signal. The receivers run in the worker, outside the
order's row lock; one that raises rolls back its writes with the claim (the `*_signal_send` functions),
and the task runs again after a backoff. When the attempts (`SIGNAL_MAX_ATTEMPTS`) run out the signal
stays owed and `reconcile_orders` sends it.
"""

import logging
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django_tasks import task
from django_tasks.base import Task

from orders.retries import task_retry_enqueue
from orders.signals import (
    order_disputed_signal_send,
    order_fulfillment_signal_send,
    order_refunded_signal_send,
)

logger = logging.getLogger(__name__)


def _signal_send_or_retry(
    *, task: Task, send: Callable[[], bool], kwargs: dict[str, Any], attempt: int, subject: str
) -> bool:
    """Run `send` (a claim and its signal, in one transaction); when it raises, queue the next attempt.

    `kwargs` are the task's own arguments, for the retry; `subject` names the signal in the log line.
    Re-raises, so the worker records this attempt as failed.
    """
    try:
        return send()
    except Exception as exc:
        retry_at = task_retry_enqueue(
            task=task,
            attempt=attempt,
            max_attempts=settings.SIGNAL_MAX_ATTEMPTS,
            kwargs={**kwargs, "attempt": attempt + 1},
        )
        logger.warning(
            "%s failed on attempt %d: %s: %s; %s",
            subject,
            attempt,
            type(exc).__name__,
            exc,
            f"retry at {retry_at.isoformat()}" if retry_at else "left owed for reconcile_orders",
        )
        raise


@task()
def order_fulfillment_signal_task(
    *, order_id: str, source: str, stripe_event_id: str | None, attempt: int = 1
) -> bool:
    """Send `order_fulfilled` unless it was sent; return whether this run sent it."""
    return _signal_send_or_retry(
        task=order_fulfillment_signal_task,
        # A task's arguments travel as JSON: hand receivers the UUID the other senders give them.
        send=lambda: order_fulfillment_signal_send(
            order_id=uuid.UUID(order_id), source=source, stripe_event_id=stripe_event_id
        ),
        kwargs={"order_id": order_id, "source": source, "stripe_event_id": stripe_event_id},
        attempt=attempt,
        subject=f"order {order_id} fulfillment signal (event={stripe_event_id or '-'})",
    )


@task()
def order_refunded_signal_task(*, refund_id: str, attempt: int = 1) -> bool:
    """Send `order_refunded` for the succeeded refund (our row's id) unless it was sent."""
    return _signal_send_or_retry(
        task=order_refunded_signal_task,
        send=lambda: order_refunded_signal_send(refund_pk=uuid.UUID(refund_id)),
        kwargs={"refund_id": refund_id},
        attempt=attempt,
        subject=f"refund {refund_id} signal",
    )


@task()
def order_disputed_signal_task(*, dispute_id: int, status: str, attempt: int = 1) -> bool:
    """Send `order_disputed` for the dispute (our row's id) unless its status was sent.

    `status` is the one that made the signal due, kept on the task for the log and the queue's admin;
    the claim sends the status the row holds when the worker runs, so a dispute that moved on before
    its first task ran is told once, of its newest status, and never of one going backwards.
    """
    return _signal_send_or_retry(
        task=order_disputed_signal_task,
        send=lambda: order_disputed_signal_send(dispute_pk=dispute_id),
        kwargs={"dispute_id": dispute_id, "status": status},
        attempt=attempt,
        subject=f"dispute {dispute_id} signal (due at {status})",
    )
