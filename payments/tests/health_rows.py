"""Rows for the health tests: tasks, events and transitions as the queue and the inbox leave them."""

from datetime import datetime, timedelta

from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from orders.models import Order, OrderTransition, Product
from payments.inbox import stripe_event_process_task
from payments.models import StripeEvent

NOW = timezone.now().replace(microsecond=0)
_events = iter(range(1_000_000))


def task_queued(
    *, enqueued_at: datetime, run_after: datetime | None = None, status: str = TaskResultStatus.READY
) -> DBTaskResult:
    """Queue a real event task with the database backend, then date it (and claim it) as asked."""
    task = stripe_event_process_task.using(run_after=run_after) if run_after else stripe_event_process_task
    result = task.enqueue(stripe_event_id=f"evt_health_{next(_events)}")
    DBTaskResult.objects.filter(pk=result.id).update(enqueued_at=enqueued_at, status=status)
    return DBTaskResult.objects.get(pk=result.id)


def task_claimed(*, started_at: datetime) -> DBTaskResult:
    """Return a task a worker claimed at `started_at` and has not finished."""
    task = task_queued(enqueued_at=started_at - timedelta(seconds=1), status=TaskResultStatus.RUNNING)
    DBTaskResult.objects.filter(pk=task.pk).update(started_at=started_at)
    return task


def event_stored(
    *, status: str, received_at: datetime | None = None, processed_at: datetime | None = None
) -> StripeEvent:
    """Store an event in this status, received and processed when asked."""
    stripe_id = f"evt_health_{next(_events)}"
    event = StripeEvent.objects.create(
        stripe_id=stripe_id, type="checkout.session.completed", payload={"id": stripe_id}, status=status
    )
    StripeEvent.objects.filter(pk=event.pk).update(
        received_at=received_at or event.received_at, processed_at=processed_at
    )
    return event


def transitions_written(*, product: Product, counts: dict[str, int]) -> None:
    """Write this many audit rows for each source, on one order."""
    order = Order.objects.create(
        product=product, quantity=1, unit_amount=product.unit_amount, amount_total=product.unit_amount
    )
    OrderTransition.objects.bulk_create(
        OrderTransition(order=order, from_status="pending", to_status="fulfilled", source=source)
        for source, count in counts.items()
        for _ in range(count)
    )
