"""Rows for the health tests: events and transitions as the queue and the inbox leave them."""

from datetime import datetime

from django.utils import timezone

from orders.models import OrderTransition, Product
from orders.services import order_create
from payments.models import UNFINISHED_STATUSES, StripeEvent

NOW = timezone.now().replace(microsecond=0)
_events = iter(range(1_000_000))


def event_stored(
    *,
    status: str,
    received_at: datetime | None = None,
    processed_at: datetime | None = None,
    next_attempt_at: datetime | None = None,
    claimed_until: datetime | None = None,
) -> StripeEvent:
    """Store an event in this status, received, due, claimed and processed when asked.

    An unfinished event is due when it was received unless told otherwise; a finished one is not due.
    """
    stripe_id = f"evt_health_{next(_events)}"
    event = StripeEvent.objects.create(
        stripe_id=stripe_id,
        type="checkout.session.completed",
        payload_text=f'{{"id": "{stripe_id}"}}',
        status=status,
    )
    received_at = received_at or event.received_at
    unfinished = status in UNFINISHED_STATUSES
    StripeEvent.objects.filter(pk=event.pk).update(
        received_at=received_at,
        processed_at=processed_at,
        next_attempt_at=next_attempt_at or (received_at if unfinished else None),
        claimed_until=claimed_until,
    )
    return StripeEvent.objects.get(pk=event.pk)


def transitions_written(*, product: Product, counts: dict[str, int]) -> None:
    """Write this many audit rows for each source, on one order."""
    order = order_create(lines=[(product, 1)])
    OrderTransition.objects.bulk_create(
        OrderTransition(order=order, from_status="pending", to_status="fulfilled", source=source)
        for source, count in counts.items()
        for _ in range(count)
    )
