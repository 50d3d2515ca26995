"""Bring open orders in line with their Checkout Sessions at Stripe, for when webhooks were missed.

Each open order's session is retrieved and applied by `payments.services.sessions`, exactly as the
webhook would apply it, with the transition source `reconcile`. Orders are read a page at a time.
"""

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from orders.models import Order, TransitionSource
from orders.selectors import orders_open_created_before
from payments import gateway
from payments.exceptions import StripeResourceMissing
from payments.services.sessions import SessionApplied, SessionDecision, checkout_session_apply

logger = logging.getLogger(__name__)


class ReconcileAction:
    FULFILLED = "fulfilled"
    EXPIRED = "expired"
    NO_OP = "no-op"  # the order moved meanwhile: a webhook or the redirect won
    PENDING = "payment pending"
    OPEN = "left open"
    NO_SESSION = "no session"
    SESSION_MISSING = "session missing"
    MISMATCH = "mismatch"  # not this order's session, or not its amount: a person must look
    WOULD_FULFILL = "would fulfill"
    WOULD_EXPIRE = "would expire"


DONE = {SessionDecision.PAID: ReconcileAction.FULFILLED, SessionDecision.EXPIRED: ReconcileAction.EXPIRED}
WOULD = {
    SessionDecision.PAID: ReconcileAction.WOULD_FULFILL,
    SessionDecision.EXPIRED: ReconcileAction.WOULD_EXPIRE,
}


@dataclass(frozen=True)
class OrderCheck:
    """What reconciling one order found and did."""

    order_id: uuid.UUID
    session_id: str
    action: str  # one of ReconcileAction
    detail: str = ""


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
    for order in orders_open_created_before(cutoff=cutoff):
        yield _reconcile_one(order, dry_run=dry_run)


def _reconcile_one(order: Order, *, dry_run: bool) -> OrderCheck:
    session_id = order.stripe_checkout_session_id
    if not session_id:
        return OrderCheck(order.pk, "", ReconcileAction.NO_SESSION, "the order never got a Checkout Session")
    try:
        session = gateway.checkout_session_retrieve(session_id=session_id)
    except StripeResourceMissing:
        logger.warning(
            "order %s session %s: reconcile: Stripe does not know this session", order.pk, session_id
        )
        return OrderCheck(order.pk, session_id, ReconcileAction.SESSION_MISSING, "Stripe does not know it")
    applied = checkout_session_apply(
        session=session, source=TransitionSource.RECONCILE, order=order, dry_run=dry_run
    )
    return OrderCheck(order.pk, session_id, *_action(applied, session, dry_run=dry_run))


def _action(applied: SessionApplied, session: gateway.CheckoutSession, *, dry_run: bool) -> tuple[str, str]:
    """Return the reconcile action and detail for what applying the session did."""
    if applied.refused:
        return ReconcileAction.MISMATCH, applied.detail
    if applied.decision == SessionDecision.PAYMENT_PENDING:
        # Paid with a delayed method: the outcome comes later (async_payment_* or the next reconcile).
        return ReconcileAction.PENDING, f"payment_status {session.payment_status}"
    if applied.decision not in DONE:
        return ReconcileAction.OPEN, f"session is {session.status or 'open'}"
    if dry_run:
        return WOULD[applied.decision], ""
    if applied.transition is not None and applied.transition.won:
        return DONE[applied.decision], ""
    status = applied.transition.status if applied.transition else None
    return ReconcileAction.NO_OP, f"order already {status}"
