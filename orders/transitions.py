"""The order state machine: every status change is one conditional UPDATE decided by the database.

    confirm  pending             -> confirmed   (success redirect, after Stripe says the session is paid)
    fulfill  pending, confirmed  -> fulfilled   (webhook, replay, reconcile)
    fail     pending, confirmed  -> failed      (async payment failed; session creation refused)
    expire   pending             -> expired     (session expired; reconcile)
    refund   fulfilled           -> refunded    (refunds and lost disputes cover the total; orders.refunds)

`UPDATE ... WHERE id = %s AND status IN (<from>)` touches one row for exactly one caller, however many
threads, processes or machines try at once; everyone else touches none and has lost, which is normal.
The winner writes the `OrderTransition` row in the same transaction, so the audit log holds exactly the
winning transitions. States only move forward, so events arriving out of order cannot corrupt an order.
A fulfilment makes `order_fulfilled` owed, by its outbox column (orders.signals); failing or expiring
gives the order's stock back, once, in the same transaction (orders.services.stock_release).
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
FULFILL = Transition(
    "fulfill",
    frozenset({OrderStatus.PENDING, OrderStatus.CONFIRMED}),
    OrderStatus.FULFILLED,
    "fulfilled_at",
)
FAIL = Transition(
    "fail", frozenset({OrderStatus.PENDING, OrderStatus.CONFIRMED}), OrderStatus.FAILED, "failed_at"
)
EXPIRE = Transition("expire", frozenset({OrderStatus.PENDING}), OrderStatus.EXPIRED, "expired_at")

REFUND = Transition("refund", frozenset({OrderStatus.FULFILLED}), OrderStatus.REFUNDED, "refunded_at")

TRANSITIONS = {t.name: t for t in (CONFIRM, FULFILL, FAIL, EXPIRE, REFUND)}


@dataclass(frozen=True)
class TransitionResult:
    """What asking for a transition did: whether this caller won, and the order's status before and now.

    A loser moved nothing, so `from_status == status`: the status the order already had, or None when
    there is no such order. Callers read this instead of the order.
    """

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
    """Move the order if its status allows; a loser (the order already moved) is a normal result."""
    source = TransitionSource(source)
    now = timezone.now()
    values: dict[str, Any] = {
        "status": transition.to_status,
        "previous_status": F("status"),
        transition.stamp_field: now,
        "updated_at": now,
        **(changes or {}),
    }
    # No savepoint: inside a caller's transaction (the worker's), an error must roll back the caller's
    # work too, and at the top level this is the transaction.
    with transaction.atomic(savepoint=False):
        # previous_status is set from the row's status in the same UPDATE, so RETURNING it tells the
        # winner where the order came from without reading the row again.
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
        logger.info(
            "order %s %s: %s -> %s (source=%s event=%s)",
            order_id,
            transition.name,
            returned[0],
            transition.to_status,
            source.value,
            stripe_event_id or "-",
            extra={"order_id": str(order_id), "transition": transition.name},
        )
        return TransitionResult(won=True, from_status=returned[0], status=str(transition.to_status))
    # The one read a loser costs: what the order already is, for the caller and this log line.
    current = order_status_get(order_id=order_id)
    logger.info(
        "order %s %s: no-op, order is %s (source=%s event=%s)",
        order_id,
        transition.name,
        current or "missing",
        source.value,
        stripe_event_id or "-",
        extra={"order_id": str(order_id), "transition": transition.name},
    )
    return TransitionResult(won=False, from_status=current, status=current)


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
    changes = {
        **payment_details(payment_intent_id, customer_email),
        **(charged.order_fields() if charged else {}),
    }
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
    """Move a pending or confirmed order to fulfilled, and send `order_fulfilled` once it commits."""
    changes = {
        "payment_pending": False,
        **payment_details(payment_intent_id, customer_email),
        **(charged.order_fields() if charged else {}),
    }
    return _apply(FULFILL, order_id=order_id, source=source, stripe_event_id=stripe_event_id, changes=changes)


def order_fail(
    *,
    order_id: uuid.UUID | str,
    source: str,
    reason: str,
    stripe_event_id: str | None = None,
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
    *,
    order_id: uuid.UUID | str,
    source: str,
    stripe_event_id: str | None = None,
) -> TransitionResult:
    """Move a pending order to expired; never a confirmed one, whose money is on its way."""
    return _apply(EXPIRE, order_id=order_id, source=source, stripe_event_id=stripe_event_id)


def order_refund(
    *,
    order_id: uuid.UUID | str,
    source: str,
    stripe_event_id: str | None = None,
    note: str = "",
) -> TransitionResult:
    """Move a fulfilled order to refunded (`orders.refunds` asks, when refunds cover the total)."""
    return _apply(REFUND, order_id=order_id, source=source, stripe_event_id=stripe_event_id, note=note)
