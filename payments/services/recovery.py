"""Repair what webhooks missed: replay stored events, backfill from Stripe or a file, reconcile orders.

Every event goes through the inbox (`payments.services.inbox`), so an event already finished is a
no-op and order transitions stay exactly-once. Each function is a generator that yields one result
per item and reads the database in pages, so thousands of events or orders take constant memory and
the caller can show progress. Pages are keyed on the primary key rather than streamed from one open
cursor, because the rows change status while being walked (SQLite gives no isolation to that).
"""

import json
import logging
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from orders import transitions
from orders.models import Order, OrderStatus, TransitionSource
from orders.services import order_mark_payment_pending
from payments import gateway
from payments.exceptions import CheckoutSessionNotFound
from payments.models import UNFINISHED_STATUSES, EventSource, EventStatus, StripeEvent
from payments.services.inbox import (
    EventProcessingFailed,
    EventResult,
    stripe_event_process,
    stripe_event_receive,
)
from payments.services.matching import session_charge_mismatch

logger = logging.getLogger(__name__)

PAGE_SIZE = 200
_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class EventFileInvalid(Exception):
    """The events file cannot be read or does not hold Stripe events."""


@dataclass(frozen=True)
class EventRun:
    """What one replay, backfill or import did with one event."""

    stripe_id: str
    type: str
    status: str  # the event's status afterwards; "new" in a dry run for an event not stored yet
    reason: str = ""
    duplicate: bool = False  # already finished: nothing was changed
    error: bool = False  # an unexpected error: recorded as failed, to be replayed


@dataclass(frozen=True)
class OrderCheck:
    """What reconciling one order found and did."""

    order_id: uuid.UUID
    session_id: str
    action: str  # one of ReconcileAction
    detail: str = ""


class ReconcileAction:
    FULFILLED = "fulfilled"
    EXPIRED = "expired"
    NO_OP = "no-op"  # the order moved meanwhile: a webhook or the redirect won
    PENDING = "payment pending"
    OPEN = "left open"
    NO_SESSION = "no session"
    SESSION_MISSING = "session missing"
    MISMATCH = "mismatch"
    WOULD_FULFILL = "would fulfill"
    WOULD_EXPIRE = "would expire"


def age_parse(value: str) -> timedelta:
    """Return the duration written as a number and a unit: 90s, 15m, 1h, 2d, 1w."""
    match = _AGE.match(value)
    if not match:
        raise ValueError(
            f"{value!r} is not an age: write a number and a unit (s, m, h, d or w), as in 15m or 2d."
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def since_parse(value: str, *, now: datetime | None = None) -> datetime:
    """Return the moment written as an ISO 8601 date or time (UTC unless it says) or an age (2d ago)."""
    if _AGE.match(value):
        return (now or timezone.now()) - age_parse(value)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is neither an ISO 8601 time (2026-11-28T09:30:00Z, 2026-11-28) nor an age (1h, 2d)."
        ) from None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_current_timezone())
    return moment


def stripe_events_selected(
    *,
    stripe_ids: Iterable[str] = (),
    failed: bool = False,
    unfinished: bool = False,
    types: Iterable[str] = (),
    since: datetime | None = None,
) -> QuerySet[StripeEvent]:
    """Return the stored events matching every given filter."""
    events = StripeEvent.objects.all()
    stripe_ids = list(stripe_ids)
    if stripe_ids:
        events = events.filter(stripe_id__in=stripe_ids)
    if failed:
        events = events.filter(status=EventStatus.FAILED)
    if unfinished:
        events = events.filter(status__in=UNFINISHED_STATUSES)
    types = list(types)
    if types:
        events = events.filter(type__in=types)
    if since is not None:
        events = events.filter(received_at__gte=since)
    return events


def stripe_events_missing(*, stripe_ids: Iterable[str]) -> list[str]:
    """Return those of the ids that no stored event has, in the order given."""
    stripe_ids = list(dict.fromkeys(stripe_ids))
    stored = set(StripeEvent.objects.filter(stripe_id__in=stripe_ids).values_list("stripe_id", flat=True))
    return [stripe_id for stripe_id in stripe_ids if stripe_id not in stored]


def stripe_event_replay(*, stripe_event: StripeEvent) -> EventResult:
    """Process a stored event again, whatever its status, with the transition source `replay`.

    Transitions only move forward, so running an event that was already processed changes nothing
    but its attempt count and outcome. Raises EventProcessingFailed (the event is then marked failed).
    """
    status = stripe_event.status
    return stripe_event_process(
        pk=stripe_event.pk,
        event=stripe_event.payload,
        transition_source=TransitionSource.REPLAY,
        # Only a run that starts from the status it read may finish the event: a concurrent webhook
        # or replay that finished it first wins, and this run rolls back.
        from_statuses=UNFINISHED_STATUSES if status in UNFINISHED_STATUSES else (status,),
    )


def stripe_events_replay(*, events: QuerySet[StripeEvent], dry_run: bool = False) -> Iterator[EventRun]:
    """Replay the stored events, oldest first, and yield what each run did (or would do)."""
    if dry_run:
        events = events.defer("payload", "last_error")
    for stored in _pages(events):
        if dry_run:
            yield EventRun(stored.stripe_id, stored.type, stored.status, "would replay")
            continue
        try:
            result = stripe_event_replay(stripe_event=stored)
        except EventProcessingFailed as exc:
            yield EventRun(stored.stripe_id, stored.type, EventStatus.FAILED, str(exc), error=True)
            continue
        yield _run(result, stored.type)


def stripe_events_backfill(
    *,
    since: datetime | None = None,
    types: Iterable[str] = (),
    undelivered_only: bool = False,
    dry_run: bool = False,
) -> Iterator[EventRun]:
    """Fetch events from Stripe's Events API and put each through the inbox; stored ones are no-ops.

    Raises PaymentProviderNotConfigured before any work when Stripe is not configured, and
    PaymentProviderUnavailable or PaymentProviderRefused when listing fails part way.
    """
    gateway.client()
    listed = gateway.events_list(
        created_gte=int(since.timestamp()) if since else None,
        types=list(types) or None,
        undelivered_only=undelivered_only,
    )
    yield from _receive_all(listed, source=EventSource.BACKFILL, dry_run=dry_run)


def events_file_load(*, path: str | Path) -> list[dict[str, Any]]:
    """Return the events in a JSON file holding a list of events or Stripe's list object.

    The whole file is read at once: an export is one JSON document and Stripe's events are small
    (a 30-day export of 10,000 events is tens of megabytes). Every item is checked before any is used.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except FileNotFoundError:
        raise EventFileInvalid(f"No such file: {path}") from None
    except OSError as exc:
        raise EventFileInvalid(f"Cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise EventFileInvalid(f"{path} is not UTF-8 text.") from None
    except ValueError as exc:
        raise EventFileInvalid(f"{path} is not valid JSON: {exc}") from None
    if isinstance(document, dict) and document.get("object") == "list":
        document = document.get("data")
    elif isinstance(document, dict) and document.get("object") == "event":
        document = [document]
    if not isinstance(document, list):
        raise EventFileInvalid(
            f'{path} holds neither a JSON list of events nor a Stripe list object ({{"object": "list", '
            f'"data": [...]}}).'
        )
    for position, item in enumerate(document, start=1):
        problem = _not_an_event(item)
        if problem:
            raise EventFileInvalid(f"{path}: item {position} {problem}; nothing was imported.")
    return document


def stripe_events_import(*, events: Iterable[dict[str, Any]], dry_run: bool = False) -> Iterator[EventRun]:
    """Put events exported elsewhere through the inbox; stored ones are no-ops."""
    yield from _receive_all(events, source=EventSource.FILE, dry_run=dry_run)


def orders_reconcile(
    *, older_than: timedelta, dry_run: bool = False, now: datetime | None = None
) -> Iterator[OrderCheck]:
    """Ask Stripe about every order still open after `older_than` and apply what its session says.

    Paid: fulfill. Expired: expire. Open: leave. Orders that never got a session are left and reported.
    Raises PaymentProviderNotConfigured before any work, and PaymentProviderUnavailable or
    PaymentProviderRefused (other than an unknown session) when Stripe cannot answer.
    """
    gateway.client()
    cutoff = (now or timezone.now()) - older_than
    for order in _open_orders(cutoff=cutoff):
        yield _reconcile_one(order, dry_run=dry_run)


def _reconcile_one(order: Order, *, dry_run: bool) -> OrderCheck:
    session_id = order.stripe_checkout_session_id
    if not session_id:
        return OrderCheck(order.pk, "", ReconcileAction.NO_SESSION, "the order never got a Checkout Session")
    try:
        session = gateway.checkout_session_retrieve(session_id=session_id)
    except CheckoutSessionNotFound:
        logger.warning(
            "order %s session %s: reconcile: Stripe does not know this session", order.pk, session_id
        )
        return OrderCheck(order.pk, session_id, ReconcileAction.SESSION_MISSING, "Stripe does not know it")
    action, detail = _reconcile_session(order, session, dry_run=dry_run)
    return OrderCheck(order.pk, session_id, action, detail)


def _reconcile_session(order: Order, session: gateway.CheckoutSession, *, dry_run: bool) -> tuple[str, str]:
    """Apply what the session says to its order; return the action taken and a detail."""
    if session.order_id != str(order.pk):
        detail = f"the session names order {session.order_id}, not this one"
        logger.error("order %s session %s: reconcile refused: %s", order.pk, session.id, detail)
        return ReconcileAction.MISMATCH, detail
    if session.status == "expired":
        if dry_run:
            return ReconcileAction.WOULD_EXPIRE, ""
        won = transitions.order_expire(order_id=order.pk, source=TransitionSource.RECONCILE)
        return (ReconcileAction.EXPIRED, "") if won else _lost(order)
    if session.is_paid:
        mismatch = session_charge_mismatch(session=session, order=order)
        if mismatch:
            detail = f"{mismatch}; not fulfilled, a person must look"
            logger.error(
                "order %s session %s: reconcile refused: amount mismatch: %s", order.pk, session.id, detail
            )
            return ReconcileAction.MISMATCH, detail
        if dry_run:
            return ReconcileAction.WOULD_FULFILL, ""
        won = transitions.order_fulfill(
            order_id=order.pk,
            source=TransitionSource.RECONCILE,
            payment_intent_id=session.payment_intent_id,
            customer_email=session.customer_email,
        )
        return (ReconcileAction.FULFILLED, "") if won else _lost(order)
    if session.status == "complete":
        # Paid with a delayed method: the outcome comes later (async_payment_* or the next reconcile).
        if not dry_run and not order.payment_pending:
            order_mark_payment_pending(order_id=order.pk, stripe_event_id=None)
        return ReconcileAction.PENDING, f"payment_status {session.payment_status}"
    return ReconcileAction.OPEN, f"session is {session.status or 'open'}"


def _lost(order: Order) -> tuple[str, str]:
    status = Order.objects.filter(pk=order.pk).values_list("status", flat=True).first()
    return ReconcileAction.NO_OP, f"order already {status}"


def _open_orders(*, cutoff: datetime) -> Iterator[Order]:
    """Yield open orders created before the cutoff, oldest first, one page at a time."""
    orders = (
        Order.objects.filter(status__in=(OrderStatus.PENDING, OrderStatus.CONFIRMED), created_at__lt=cutoff)
        .only(
            "pk",
            "created_at",
            "status",
            "stripe_checkout_session_id",
            "amount_total",
            "currency",
            "payment_pending",
        )
        .order_by("created_at", "pk")
    )
    last: Order | None = None
    while True:
        page = orders
        if last is not None:
            page = orders.filter(
                Q(created_at__gt=last.created_at) | Q(created_at=last.created_at, pk__gt=last.pk)
            )
        batch = list(page[:PAGE_SIZE])
        yield from batch
        if len(batch) < PAGE_SIZE:
            return
        last = batch[-1]


def _pages(events: QuerySet[StripeEvent]) -> Iterator[StripeEvent]:
    """Yield the events in primary key order, one page at a time."""
    last_pk = 0
    while True:
        batch = list(events.filter(pk__gt=last_pk).order_by("pk")[:PAGE_SIZE])
        yield from batch
        if len(batch) < PAGE_SIZE:
            return
        last_pk = batch[-1].pk


def _receive_all(events: Iterable[dict[str, Any]], *, source: str, dry_run: bool) -> Iterator[EventRun]:
    for event in events:
        if dry_run:
            status = (
                StripeEvent.objects.filter(stripe_id=event["id"]).values_list("status", flat=True).first()
            )
            yield EventRun(event["id"], event["type"], status or "new", "would receive")
            continue
        try:
            result = stripe_event_receive(event=event, source=source)
        except EventProcessingFailed as exc:
            yield EventRun(event["id"], event["type"], EventStatus.FAILED, str(exc), error=True)
            continue
        yield _run(result, event["type"])


def _run(result: EventResult, event_type: str) -> EventRun:
    return EventRun(result.stripe_id, event_type, result.status, result.reason, duplicate=result.duplicate)


def _not_an_event(item: Any) -> str:
    """Return what keeps the item from being a Stripe event, or an empty string."""
    if not isinstance(item, dict) or item.get("object") != "event":
        return 'is not a Stripe event (no "object": "event")'
    if not isinstance(item.get("id"), str) or not item["id"]:
        return "has no event id"
    if not isinstance(item.get("type"), str) or not isinstance(item.get("data"), dict):
        return f"({item['id']}) has no type or no data"
    return ""
