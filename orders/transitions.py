"""The order state machine: every status change is one conditional UPDATE decided by the database.

`UPDATE ... WHERE id = %s AND status IN (<from>)` moves the row for exactly one caller; the others lost,
which is normal. The winner writes the `OrderTransition` row and what the move makes due (stock given
back, `order_fulfilled` owed) in the same transaction. The table of moves is in docs/design.md.
"""

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from orders.db import update_returning
from orders.models import Order, OrderStatus, OrderTransition, TransitionSource
from orders.selectors import order_status_get
from orders.services import Charged, payment_details, stock_release

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Transition:
    """A named move from any of some states to one state, stamping one timestamp field."""

    name: str
    from_statuses: frozenset[str]
    to_status: str
    stamp_field: str


CONFIRM = Transition("confirm", frozenset({OrderStatus.PENDING}), OrderStatus.CONFIRMED, "confirmed_at")
FULFILL = Transition("fulfill", OrderStatus.OPEN, OrderStatus.FULFILLED, "fulfilled_at")
FAIL = Transition("fail", OrderStatus.OPEN, OrderStatus.FAILED, "failed_at")
EXPIRE = Transition("expire", frozenset({OrderStatus.PENDING}), OrderStatus.EXPIRED, "expired_at")
REFUND = Transition("refund", frozenset({OrderStatus.FULFILLED}), OrderStatus.REFUNDED, "refunded_at")
TRANSITIONS = {t.name: t for t in (CONFIRM, FULFILL, FAIL, EXPIRE, REFUND)}


@dataclass(frozen=True)
class TransitionResult:
    """Whether this caller won, and the order's status before and now (a loser's are equal: the status the
    order already had, or None when there is no such order)."""

    won: bool
    from_status: str | None
    status: str | None


def _apply(
    transition: Transition,
    *,
    order_id: uuid.UUID | str,
    source: str,
    stripe_event_id: str | None,
    note: str = "",
    changes: dict[str, Any] | None = None,
) -> TransitionResult:
    source = TransitionSource(source)
    now = timezone.now()
    values: dict[str, Any] = {
        "status": transition.to_status,
        "previous_status": F("status"),
        transition.stamp_field: now,
        "updated_at": now,
        **(changes or {}),
    }
    # No savepoint: inside a caller's transaction (the worker's), an error rolls back the caller's work too.
    with transaction.atomic(savepoint=False):
        # RETURNING previous_status, set from the row's status by this UPDATE: where the winner moved it from.
        moved = Order.objects.filter(pk=order_id, status__in=transition.from_statuses)
        returned = update_returning(moved, values, "previous_status")
        if returned:
            OrderTransition.objects.create(
                order_id=order_id,
                from_status=returned[0],
                to_status=transition.to_status,
                source=source,
                stripe_event_id=stripe_event_id,
                note=note,
            )
            if transition.to_status in OrderStatus.CLOSED:
                stock_release(order_id=order_id)
    if returned:
        from_status, status = returned[0], str(transition.to_status)
        what = f"{from_status} -> {status}"
    else:
        # The one read a loser costs: what the order already is, for the caller and this log line.
        from_status = status = order_status_get(order_id=order_id)
        what = f"no-op, order is {status or 'missing'}"
    logger.info(
        "order %s %s: %s (source=%s event=%s)",
        order_id,
        transition.name,
        what,
        source.value,
        stripe_event_id or "-",
        extra={"order_id": str(order_id), "transition": transition.name},
    )
    return TransitionResult(won=bool(returned), from_status=from_status, status=status)


def order_confirm(
    *,
    order_id: uuid.UUID | str,
    source: str = TransitionSource.REDIRECT,
    stripe_event_id: str | None = None,
    payment_intent_id: str = "",
    customer_email: str = "",
    charged: Charged | None = None,
) -> TransitionResult:
    """Move a pending order to confirmed, keeping the payment details and the amounts Stripe gave."""
    changes = _paid(payment_intent_id, customer_email, charged)
    return _apply(CONFIRM, order_id=order_id, source=source, stripe_event_id=stripe_event_id, changes=changes)


def order_fulfill(
    *,
    order_id: uuid.UUID | str,
    source: str,
    stripe_event_id: str | None = None,
    payment_intent_id: str = "",
    customer_email: str = "",
    charged: Charged | None = None,
) -> TransitionResult:
    """Move a pending or confirmed order to fulfilled, making `order_fulfilled` owed (the worker sends it)."""
    changes = {"payment_pending": False, **_paid(payment_intent_id, customer_email, charged)}
    return _apply(FULFILL, order_id=order_id, source=source, stripe_event_id=stripe_event_id, changes=changes)


def order_fail(
    *, order_id: uuid.UUID | str, source: str, reason: str, stripe_event_id: str | None = None
) -> TransitionResult:
    """Move a pending or confirmed order to failed, recording why."""
    return _apply(
        FAIL,
        order_id=order_id,
        source=source,
        stripe_event_id=stripe_event_id,
        note=reason,
        changes={"failure_reason": reason, "payment_pending": False},
    )


def order_expire(
    *, order_id: uuid.UUID | str, source: str, stripe_event_id: str | None = None
) -> TransitionResult:
    """Move a pending order to expired; never a confirmed one, whose money is on its way."""
    return _apply(EXPIRE, order_id=order_id, source=source, stripe_event_id=stripe_event_id)


def order_refund(
    *, order_id: uuid.UUID | str, source: str, stripe_event_id: str | None = None, note: str = ""
) -> TransitionResult:
    """Move a fulfilled order to refunded (`orders.refunds` asks, when refunds cover the total)."""
    return _apply(REFUND, order_id=order_id, source=source, stripe_event_id=stripe_event_id, note=note)


def _paid(payment_intent_id: str, customer_email: str, charged: Charged | None) -> dict[str, Any]:
    """Return the columns a paid session sets: its payment details and what it charged."""
    return {
        **payment_details(payment_intent_id, customer_email),
        **(charged.order_fields() if charged else {}),
    }
