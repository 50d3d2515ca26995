"""Close or fulfil an order on request (an operator, a command, the system), asking Stripe first.

Only Stripe's lock decides between an operator's expire and a buyer's payment racing it: an order closes
once Stripe has expired its session, and a session Stripe says is complete is applied instead.
"""

import logging
import uuid
from dataclasses import dataclass
from typing import Literal

from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Concat
from django.utils import timezone

from orders import transitions
from orders.models import Order, OrderStatus
from orders.selectors import order_get_for_payment, order_status_get
from orders.services import order_clear_attention
from payments import gateway
from payments.exceptions import PaymentProviderError, PaymentProviderRefused, StripeResourceMissing
from payments.models import EventStatus, StripeEvent
from payments.sessions import (
    SessionApplied,
    SessionDecision,
    checkout_session_apply,
    checkout_session_decision,
)

logger = logging.getLogger(__name__)

CloseTransition = Literal["fail", "expire"]


@dataclass(frozen=True)
class OrderActionResult:
    """What one request to move one order did: whether it moved as asked, its status now, and why."""

    order_id: uuid.UUID
    moved: bool
    status: str
    message: str


@dataclass(frozen=True)
class SessionClosing:
    """Whether nobody can pay the order's session any more, and what Stripe said."""

    closed: bool
    message: str


def order_close(
    *, order_id: uuid.UUID | str, transition: CloseTransition, source: str, reason: str = ""
) -> OrderActionResult:
    """Expire the order's session at Stripe, then fail or expire the order; apply Stripe's word if it refuses.
    Stripe unreachable: nothing moves. Stripe not knowing the session (stranded): the order closes."""
    order = order_get_for_payment(order_id=order_id)
    if order.status == OrderStatus.FULFILLED:
        return _result(order, False, "it is fulfilled, so it was paid: refund it instead of closing it")
    if not order.stripe_checkout_session_id:
        return _close(order, transition, source, reason, "it had no Checkout Session")
    closing = order_session_expire(order=order, source=source)
    if not closing.closed:
        return _result(order, False, f"not closed: {closing.message}")
    return _close(order, transition, source, reason, closing.message)


def order_session_expire(*, order: Order, source: str) -> SessionClosing:
    """Expire the order's Checkout Session at Stripe, so nobody can pay it; apply it if Stripe says complete.
    Stripe expires open sessions only: a refusal means the buyer paid first (or a delayed payment is on)."""
    session_id = order.stripe_checkout_session_id or ""
    try:
        gateway.checkout_session_expire(session_id=session_id)
    except StripeResourceMissing:
        logger.warning("order %s session %s: Stripe does not know the session", order.pk, session_id)
        return SessionClosing(True, "Stripe does not know its session (stranded)")
    except PaymentProviderRefused as exc:
        return _expire_refused(order, source, exc)
    except PaymentProviderError as exc:
        logger.warning("order %s session %s: not expired, Stripe unavailable: %s", order.pk, session_id, exc)
        return SessionClosing(False, f"Stripe could not be asked to expire its session ({exc})")
    logger.info("order %s session %s expired at Stripe (source=%s)", order.pk, session_id, source)
    return SessionClosing(True, "its session is expired at Stripe")


def _expire_refused(order: Order, source: str, refusal: PaymentProviderRefused) -> SessionClosing:
    """Retrieve the session Stripe would not expire, and apply it if it is complete."""
    session_id = order.stripe_checkout_session_id or ""
    try:
        session = gateway.checkout_session_retrieve(session_id=session_id)
    except PaymentProviderError as exc:
        return SessionClosing(False, f"Stripe refused to expire its session ({refusal}) ({exc})")
    if session.status == "expired":
        return SessionClosing(True, "its session had already expired at Stripe")
    if session.status != "complete":
        return SessionClosing(False, f"Stripe refused to expire its session: {refusal}")
    applied = checkout_session_apply(session=session, source=source, order=order)
    logger.warning(
        "order %s session %s: not expired, the session is complete (%s): %s",
        order.pk,
        session.id,
        session.payment_status,
        applied.reason,
    )
    return SessionClosing(False, f"Stripe says the session is {_session_state(session)}: {_said(applied)}")


def _close(
    order: Order, transition: CloseTransition, source: str, reason: str, why: str
) -> OrderActionResult:
    if transition == "fail":
        moved = transitions.order_fail(order_id=order.pk, source=source, reason=reason or f"Closed: {why}.")
    else:
        moved = transitions.order_expire(order_id=order.pk, source=source)
    done = "failed" if transition == "fail" else "expired"
    status = moved.status or "missing"
    message = f"{done}: {why}" if moved.won else f"not {done}: it was already {status} ({why})"
    return OrderActionResult(order.pk, moved.won, status, message)


def order_fulfill_verified(*, order_id: uuid.UUID | str, source: str) -> OrderActionResult:
    """Fulfil the order only if Stripe says its session is paid, applying the session as Stripe holds it."""
    order = order_get_for_payment(order_id=order_id)
    if order.status == OrderStatus.FULFILLED:
        return _result(order, False, "already fulfilled")
    session_id = order.stripe_checkout_session_id
    if not session_id:
        return _result(order, False, "not fulfilled: it has no Checkout Session, so nothing was paid")
    try:
        session = gateway.checkout_session_retrieve(session_id=session_id)
    except StripeResourceMissing:
        return _result(order, False, "not fulfilled: Stripe does not know its session (stranded)")
    except PaymentProviderError as exc:
        return _result(order, False, f"not fulfilled: Stripe could not be asked about its session ({exc})")
    if checkout_session_decision(session=session) != SessionDecision.PAID:
        return _result(order, False, f"not fulfilled: Stripe says the session is {_session_state(session)}")
    applied = checkout_session_apply(session=session, source=source, order=order)
    return _result(order, applied.won, _said(applied))


def _said(applied: SessionApplied) -> str:
    if applied.won:
        return f"applied it, now {applied.transition.status}"
    if applied.decision == SessionDecision.PAYMENT_PENDING:
        return "a delayed payment is under way: the order waits for its outcome"
    return applied.reason


def _session_state(session: gateway.CheckoutSession) -> str:
    if session.status == "complete":
        paid = checkout_session_decision(session=session) == SessionDecision.PAID
        return "complete and paid" if paid else f"complete, payment {session.payment_status}"
    return session.status or "open"


def _result(order: Order, moved: bool, message: str) -> OrderActionResult:
    status = order_status_get(order_id=order.pk) or "missing"
    return OrderActionResult(order.pk, moved, status, message)


def order_settle(*, order_id: uuid.UUID | str, by: str) -> OrderActionResult:
    """Settle what put the order in front of a person: its flag and its events in review, once, saying who.
    A settled event is finished for good: no replay reopens it, so the alert on needs_review goes quiet."""
    order = order_get_for_payment(order_id=order_id)
    now = timezone.now()
    with transaction.atomic():
        cleared = order_clear_attention(order_id=order.pk, by=by)
        events = StripeEvent.objects.filter(order_id=order.pk, status=EventStatus.NEEDS_REVIEW).update(
            status=EventStatus.SETTLED,
            outcome=Concat(Value(f"settled by {by} at {now:%Y-%m-%d %H:%M}Z; "), "outcome"),
        )
    if not cleared and not events:
        return _result(order, False, "nothing to settle: no flag, no event in review")
    flag, plural = "flag cleared" if cleared else "no flag", "s" if events != 1 else ""
    return _result(order, True, f"settled by {by}: {flag}, {events} event{plural} in review settled")
