"""Audit the order book against Stripe: every order of a window, its session as Stripe holds it, and
every way the two disagree; with `fix`, the repairs that are safe to make without a person.

Each order's session is retrieved once; a paid session's payment costs two more calls, the list of its
refunds and of its disputes (`payments.services.audit_money`). Every call made for an order, the
repairs' included, goes through one rate limit (Stripe allows 100 reads a second in live mode and 25 in
test mode; the default stays well below). Orders are read a page at a time on the
primary key, so memory stays constant however large the window; the rows may change while being walked.

Safe repairs, and only these: a paid session is applied to its open order (the webhook was lost); a paid
session of a closed order is a late payment, refunded by `payments.services.late_payments`; an open
session of a closed order is expired at Stripe (so nobody can still pay it); an expired session's open
order is expired; a stranded pending order (Stripe no longer knows its session) is expired once the
session would have expired anyway, `SESSION_MAX_LIFETIME` after the order was created: until then it may
still be payable on the account that made it (keys from another account), so it is only reported. A
fulfilled order whose session is not paid, and amounts that differ, need a person and are only reported.
Refunds and disputes Stripe holds and the order does not (or holds otherwise) are recorded through the
webhooks' own upsert, and the refunded amount recomputed (see `audit_money`).
"""

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from orders.models import CLOSED_STATUSES, Order, OrderStatus, RefundStatus, TransitionSource
from payments import gateway
from payments.exceptions import StripeResourceMissing
from payments.services.audit_findings import Disagreement, Finding
from payments.services.audit_money import order_money_audit
from payments.services.order_actions import order_close, order_session_expire
from payments.services.sessions import (
    SessionDecision,
    checkout_session_apply,
    checkout_session_charge_mismatch,
    checkout_session_decision,
)

logger = logging.getLogger(__name__)

PAGE_SIZE = 200
DEFAULT_MAX_RATE = 20.0
# Stripe's longest Checkout Session lifetime: after this, a session cannot be paid on any account.
SESSION_MAX_LIFETIME = timedelta(hours=24)
OPEN = frozenset({OrderStatus.PENDING, OrderStatus.CONFIRMED})
PAID_FOR = frozenset({OrderStatus.FULFILLED, OrderStatus.REFUNDED})
FIELDS = (
    "pk",
    "status",
    "created_at",
    "amount_total",
    "amount_refunded",
    "currency",
    "stripe_checkout_session_id",
    "payment_pending",
    "stripe_payment_intent_id",
)


@dataclass(frozen=True)
class AuditedOrder:
    """One order checked: its status, its session as Stripe holds it ('' when unknown), and its findings."""

    order_id: uuid.UUID
    status: str
    session_id: str
    stripe_says: str
    findings: tuple[Finding, ...] = ()


class RateLimiter:
    """Space calls at least 1/rate seconds apart (a rate of 0 or less: no limit)."""

    def __init__(
        self,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0

    def wait(self) -> None:
        """Return when the next call is allowed."""
        now = self._clock()
        if now < self._next:
            self._sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


def orders_in_window(*, since: datetime, until: datetime) -> QuerySet[Order]:
    """Return the orders the audit walks: created in [since, until)."""
    return Order.objects.filter(created_at__gte=since, created_at__lt=until)


def orders_audit(
    *,
    since: datetime,
    older_than: timedelta = timedelta(0),
    fix: bool = False,
    max_rate: float = DEFAULT_MAX_RATE,
    now: datetime | None = None,
    limiter: RateLimiter | None = None,
) -> Iterator[AuditedOrder]:
    """Check every order created since `since` (and at least `older_than` ago) against Stripe.

    Yields one result per order, findings or not, so the caller can show progress. Raises
    PaymentProviderNotConfigured before any work, and PaymentProviderUnavailable or
    PaymentProviderRefused (other than an unknown session) when Stripe cannot answer.
    """
    gateway.client()
    now = now or timezone.now()
    limiter = limiter or RateLimiter(max_rate)
    orders = orders_in_window(since=since, until=now - older_than).only(*FIELDS).order_by("pk")
    last_pk = None
    while True:
        page = orders if last_pk is None else orders.filter(pk__gt=last_pk)
        batch = list(page[:PAGE_SIZE])
        for order in batch:
            # Every Stripe call made for this order, by the audit or by the services its repairs call.
            with gateway.calls_paced(limiter.wait):
                audited = _audit_one(order, fix=fix, now=now)
            yield audited
        if len(batch) < PAGE_SIZE:
            return
        last_pk = batch[-1].pk


def _audit_one(order: Order, *, fix: bool, now: datetime) -> AuditedOrder:
    session_id = order.stripe_checkout_session_id or ""
    if not session_id:
        findings = ()
        if order.status in PAID_FOR:
            findings = (Finding(Disagreement.FULFILLED_NOT_PAID, "it has no Checkout Session at all"),)
        return AuditedOrder(order.pk, order.status, "", "no session", findings)
    try:
        session = gateway.checkout_session_retrieve(session_id=session_id)
    except StripeResourceMissing:
        # A closed order holds no money and can take none: that Stripe forgot its session changes nothing.
        stranded = () if order.status in CLOSED_STATUSES else (_stranded(order, fix=fix, now=now),)
        return AuditedOrder(order.pk, order.status, session_id, "unknown", stranded)
    finding = _compare(order, session)
    money = []
    if _money_may_have_gone_back(session, finding):
        money = order_money_audit(order_id=order.pk, payment_intent_id=session.payment_intent_id, fix=fix)
        if any(f.fixed for f in money):
            # A refund learnt of just now may settle the session's question too (a refunded late payment).
            order = Order.objects.only(*FIELDS).get(pk=order.pk)
            finding = _compare(order, session)
    if finding is not None and fix:
        finding = _repair(order, session, finding)
    findings = tuple(f for f in (finding, *money) if f is not None)
    for found in findings:
        logger.warning(
            "order %s session %s audit: %s: %s%s",
            order.pk,
            session.id,
            found.kind.value,
            found.detail,
            f" (fixed: {found.fix})" if found.fixed else "",
        )
    return AuditedOrder(order.pk, order.status, session.id, _says(session), findings)


def _money_may_have_gone_back(session: gateway.CheckoutSession, finding: Finding | None) -> bool:
    """Return whether to ask Stripe for the refunds and disputes of the session's payment.

    Only a paid session's payment can have been refunded or disputed; one naming another order is not
    this order's money.
    """
    if finding is not None and finding.kind == Disagreement.NOT_ITS_SESSION:
        return False
    paid = checkout_session_decision(session=session) == SessionDecision.PAID
    return paid and bool(session.payment_intent_id)


def _compare(order: Order, session: gateway.CheckoutSession) -> Finding | None:
    """Return how the order disagrees with its session as Stripe holds it, or None when they agree.

    Whose session it is, and whether the amounts agree, are the one session service's rules.
    """
    owned = checkout_session_apply(
        session=session, source=TransitionSource.RECONCILE, order=order, dry_run=True
    )
    if owned.decision == SessionDecision.NOT_OURS:
        return Finding(Disagreement.NOT_ITS_SESSION, owned.detail)
    mismatch = checkout_session_charge_mismatch(session=session, order=order)
    if mismatch:
        return Finding(Disagreement.AMOUNT_DIFFERS, mismatch)
    decision = checkout_session_decision(session=session)
    if decision == SessionDecision.PAID:
        if order.status in OPEN:
            return Finding(Disagreement.PAID_NOT_FULFILLED, "the paid session was never applied")
        if order.status in CLOSED_STATUSES and not _refunded_at_stripe(order):
            return Finding(
                Disagreement.LATE_PAYMENT, f"paid, but the order is {order.status} and not refunded"
            )
        return None
    if order.status in PAID_FOR:
        return Finding(Disagreement.FULFILLED_NOT_PAID, f"Stripe says the session is {_says(session)}")
    if decision == SessionDecision.OPEN and order.status in CLOSED_STATUSES:
        return Finding(Disagreement.CLOSED_SESSION_OPEN, "the buyer can still pay it")
    if decision == SessionDecision.EXPIRED and order.status in OPEN:
        return Finding(Disagreement.OPEN_SESSION_EXPIRED, "the order still waits for a payment")
    return None


def _refunded_at_stripe(order: Order) -> bool:
    """Return whether the order's money went back, or Stripe has taken a refund of it (maybe pending).

    A refund row Stripe never answered (it was unreachable) does not count: the fix asks for it again.
    """
    if order.amount_refunded >= order.amount_total:
        return True
    return order.refunds.filter(status__in=(RefundStatus.PENDING, RefundStatus.SUCCEEDED)).exists()


def _repair(order: Order, session: gateway.CheckoutSession, finding: Finding) -> Finding:
    """Make the safe repair for the finding, if there is one; return the finding with what was done."""
    if finding.kind in (
        Disagreement.PAID_NOT_FULFILLED,
        Disagreement.LATE_PAYMENT,
        Disagreement.OPEN_SESSION_EXPIRED,
    ):
        applied = checkout_session_apply(session=session, source=TransitionSource.RECONCILE, order=order)
        if applied.transition is not None and applied.transition.won:
            return finding.fixed_as(f"applied it, now {applied.transition.status}", fixed=True)
        if applied.decision == SessionDecision.LATE_PAYMENT:
            return finding.fixed_as(applied.detail, fixed=_refunded_at_stripe(order))
        return finding.fixed_as(applied.reason)
    if finding.kind == Disagreement.CLOSED_SESSION_OPEN:
        closing = order_session_expire(order=order, source=TransitionSource.RECONCILE)
        return finding.fixed_as(closing.message, fixed=closing.closed)
    return finding


def _stranded(order: Order, *, fix: bool, now: datetime) -> Finding:
    finding = Finding(Disagreement.STRANDED, "Stripe does not know its session (another account's keys?)")
    if not fix or order.status != OrderStatus.PENDING:
        return finding
    payable_until = order.created_at + SESSION_MAX_LIFETIME
    if now < payable_until:
        return finding.fixed_as(
            f"left open: it may be payable elsewhere until {payable_until:%Y-%m-%d %H:%M}Z"
        )
    result = order_close(order_id=order.pk, transition="expire", source=TransitionSource.RECONCILE)
    return finding.fixed_as(result.message, fixed=result.moved)


def _says(session: gateway.CheckoutSession) -> str:
    if session.status == "complete":
        return f"complete/{session.payment_status}"
    return session.status or "open"
