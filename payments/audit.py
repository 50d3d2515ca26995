"""The one audit of the order book against Stripe; `reconcile_orders` is this audit on open orders, fixing.

Every Stripe call for an order, repairs' included, goes through one rate limit. The only repairs, all safe:
apply a session as its lost webhook would have (refunding a late payment), store a paid total the order
missed, expire at Stripe the open session of a closed order, expire a stranded pending order once its
session is payable nowhere, record Stripe's refunds and disputes. The rest is reported for a person.
"""

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.db.models import Model, QuerySet
from django.utils import timezone

from orders.models import Order, OrderDispute, OrderRefund, OrderStatus, TransitionSource
from orders.money import money_format
from orders.refunds import money_returned, order_refunds_recompute, refund_status_from_stripe
from orders.selectors import PAYMENT_FIELDS
from orders.services import order_charged_store
from payments import gateway
from payments.exceptions import StripeResourceMissing
from payments.order_actions import order_close, order_session_expire
from payments.refunds import stripe_dispute_apply, stripe_refund_apply
from payments.sessions import (
    SessionDecision,
    checkout_session_apply,
    checkout_session_charge_mismatch,
    checkout_session_charged,
    checkout_session_decision,
)

PAGE_SIZE = 200
DEFAULT_MAX_RATE = 20.0
# Stripe's longest Checkout Session lifetime: after this, a session cannot be paid on any account.
SESSION_MAX_LIFETIME = timedelta(hours=24)
FIELDS = (*PAYMENT_FIELDS, "created_at", "amount_refunded")


class Disagreement(StrEnum):
    PAID_NOT_FULFILLED = "paid, order not fulfilled"
    PENDING_NOT_MARKED = "delayed payment, order not told"
    LATE_PAYMENT = "paid, order closed"
    FULFILLED_NOT_PAID = "fulfilled, session not paid"
    CLOSED_SESSION_OPEN = "closed, session still open"
    OPEN_SESSION_EXPIRED = "session expired, order open"
    AMOUNT_DIFFERS = "amounts differ"
    TOTAL_NOT_STORED = "paid total not stored"
    NOT_ITS_SESSION = "session names another order"
    STRANDED = "session unknown to Stripe"
    NO_SESSION = "no session"
    REFUND_UNKNOWN = "refund unknown here"
    REFUND_STATUS_DIFFERS = "refund status differs"
    DISPUTE_UNKNOWN = "dispute unknown here"
    DISPUTE_STATUS_DIFFERS = "dispute status differs"
    NOT_AT_STRIPE = "refund or dispute unknown to Stripe"
    REFUNDED_AMOUNT_DIFFERS = "refunded amount differs"
    RETURNED_NOT_REFUNDED = "money returned, order not refunded"
    REFUNDED_NOT_RETURNED = "refunded, money not returned"


# Applying the session is the repair: what its lost webhook would have done.
APPLIED_BY_THE_SESSION = frozenset(
    {
        Disagreement.PAID_NOT_FULFILLED,
        Disagreement.PENDING_NOT_MARKED,
        Disagreement.LATE_PAYMENT,
        Disagreement.OPEN_SESSION_EXPIRED,
    }
)


@dataclass(frozen=True)
class Finding:
    """A disagreement of one order with Stripe, and what the repair did about it ('' when nothing)."""

    kind: Disagreement
    detail: str
    fixed: bool = False
    fix: str = ""
    # The refund or dispute Stripe lists that the repair records, if the finding is about one.
    subject: object | None = None

    def fixed_as(self, fix: str, *, fixed: bool = False) -> "Finding":
        return Finding(self.kind, self.detail, fixed, fix, self.subject)


@dataclass(frozen=True)
class AuditedOrder:
    """One order checked: its status, its session as Stripe holds it, and its findings."""

    order_id: uuid.UUID
    status: str
    stripe_says: str
    findings: tuple[Finding, ...] = ()


class RateLimiter:
    """Space calls at least 1/rate seconds apart (a rate of 0 or less: no limit)."""

    def __init__(
        self, per_second: float, *, clock: Callable[[], float] = time.monotonic, sleep=time.sleep
    ) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._clock, self._sleep, self._next = clock, sleep, 0.0

    def wait(self) -> None:
        now = self._clock()
        if now < self._next:
            self._sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


def orders_to_audit(*, since: datetime | None, until: datetime, open_only: bool = False) -> QuerySet[Order]:
    """Return the orders an audit walks: created in [since, until), only the open ones if asked."""
    orders = Order.objects.filter(created_at__lt=until)
    if since is not None:
        orders = orders.filter(created_at__gte=since)
    return orders.filter(status__in=OrderStatus.OPEN) if open_only else orders


def orders_audit(
    *,
    since: datetime | None,
    older_than: timedelta = timedelta(0),
    fix: bool = False,
    open_only: bool = False,
    max_rate: float = DEFAULT_MAX_RATE,
    now: datetime | None = None,
    limiter: RateLimiter | None = None,
) -> Iterator[AuditedOrder]:
    """Check every order of the window against Stripe, a page at a time, and yield one result per order.
    Raises PaymentProviderNotConfigured before any work, PaymentProviderError when Stripe fails part way."""
    gateway.client()
    now = now or timezone.now()
    limiter = limiter or RateLimiter(max_rate)
    orders = orders_to_audit(since=since, until=now - older_than, open_only=open_only).only(*FIELDS)
    last_pk = None
    while True:
        page = orders if last_pk is None else orders.filter(pk__gt=last_pk)
        batch = list(page.order_by("pk")[:PAGE_SIZE])
        for order in batch:
            with gateway.calls_paced(limiter.wait):
                yield _audit_one(order, fix=fix, now=now)
        if len(batch) < PAGE_SIZE:
            return
        last_pk = batch[-1].pk


def _audit_one(order: Order, *, fix: bool, now: datetime) -> AuditedOrder:
    if not order.stripe_checkout_session_id:
        found = ()
        if order.status in OrderStatus.PAID:
            found = (Finding(Disagreement.FULFILLED_NOT_PAID, "it never got a Checkout Session"),)
        elif order.status in OrderStatus.OPEN:
            found = (
                _stranded(Finding(Disagreement.NO_SESSION, "it never got one"), order, fix=fix, now=now),
            )
        return AuditedOrder(order.pk, order.status, "no session", found)
    try:
        session = gateway.checkout_session_retrieve(session_id=order.stripe_checkout_session_id)
    except StripeResourceMissing:
        # A closed order holds no money and can take none: that Stripe forgot its session changes nothing.
        stranded = Finding(
            Disagreement.STRANDED, "Stripe does not know its session (another account's keys?)"
        )
        found = () if order.status in OrderStatus.CLOSED else (_stranded(stranded, order, fix=fix, now=now),)
        return AuditedOrder(order.pk, order.status, "unknown", found)
    finding = _compare(order, session)
    money: list[Finding] = []
    ours = finding is None or finding.kind != Disagreement.NOT_ITS_SESSION
    paid = checkout_session_decision(session=session) == SessionDecision.PAID
    if ours and paid and session.payment_intent_id:
        money = _money_audit(order, session.payment_intent_id, fix=fix)
        if any(f.fixed for f in money):
            # A refund learnt of just now may settle the session's question too (a refunded late payment).
            order = Order.objects.only(*FIELDS).get(pk=order.pk)
            finding = _compare(order, session)
    if finding is not None and fix:
        finding = _repair(order, session, finding)
    return AuditedOrder(order.pk, order.status, _says(session), tuple(filter(None, (finding, *money))))


def _compare(order: Order, session: gateway.CheckoutSession) -> Finding | None:
    """Return how the order disagrees with its session as Stripe holds it, or None when they agree."""
    owned = checkout_session_apply(
        session=session, source=TransitionSource.RECONCILE, order=order, dry_run=True
    )
    if owned.decision == SessionDecision.NOT_OURS:
        return Finding(Disagreement.NOT_ITS_SESSION, owned.detail)
    if mismatch := checkout_session_charge_mismatch(session=session, order=order):
        return Finding(Disagreement.AMOUNT_DIFFERS, mismatch)
    decision = checkout_session_decision(session=session)
    if decision == SessionDecision.PAID:
        if order.status in OrderStatus.PAID and order.amount_total != session.amount_total:
            return Finding(
                Disagreement.TOTAL_NOT_STORED,
                f"the order counts {money_format(order.amount_total, order.currency)}, "
                f"its session charged {money_format(session.amount_total or 0, order.currency)}",
            )
        if order.status in OrderStatus.OPEN:
            return Finding(Disagreement.PAID_NOT_FULFILLED, "the paid session was never applied")
        if order.status in OrderStatus.CLOSED and not order.being_refunded():
            return Finding(
                Disagreement.LATE_PAYMENT, f"paid, but the order is {order.status} and not refunded"
            )
        return None
    if order.status in OrderStatus.PAID:
        return Finding(Disagreement.FULFILLED_NOT_PAID, f"Stripe says the session is {_says(session)}")
    if (
        decision == SessionDecision.PAYMENT_PENDING
        and order.status in OrderStatus.OPEN
        and not order.payment_pending
    ):
        return Finding(Disagreement.PENDING_NOT_MARKED, "a delayed payment is under way at Stripe")
    if decision == SessionDecision.OPEN and order.status in OrderStatus.CLOSED:
        return Finding(Disagreement.CLOSED_SESSION_OPEN, "the buyer can still pay it")
    if decision == SessionDecision.EXPIRED and order.status in OrderStatus.OPEN:
        return Finding(Disagreement.OPEN_SESSION_EXPIRED, "the order still waits for a payment")
    return None


def _repair(order: Order, session: gateway.CheckoutSession, finding: Finding) -> Finding:
    """Make the safe repair for the finding, if there is one; return the finding with what was done."""
    if finding.kind in APPLIED_BY_THE_SESSION:
        applied = checkout_session_apply(session=session, source=TransitionSource.RECONCILE, order=order)
        if applied.won:
            return finding.fixed_as(f"applied it, now {applied.transition.status}", fixed=True)
        if applied.decision == SessionDecision.LATE_PAYMENT:
            return finding.fixed_as(applied.detail, fixed=Order.objects.get(pk=order.pk).being_refunded())
        return finding.fixed_as(applied.reason, fixed=applied.decision == SessionDecision.PAYMENT_PENDING)
    if finding.kind == Disagreement.TOTAL_NOT_STORED:
        order_charged_store(order_id=order.pk, charged=checkout_session_charged(session))
        return finding.fixed_as("stored what the session charged", fixed=True)
    if finding.kind == Disagreement.CLOSED_SESSION_OPEN:
        closing = order_session_expire(order=order, source=TransitionSource.RECONCILE)
        return finding.fixed_as(closing.message, fixed=closing.closed)
    return finding


def _stranded(finding: Finding, order: Order, *, fix: bool, now: datetime) -> Finding:
    """Expire a pending order whose session Stripe does not know, once that session could be paid nowhere."""
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


def _money_audit(order: Order, payment_intent_id: str, *, fix: bool) -> list[Finding]:
    """Compare the order's refunds, disputes and refunded amount with Stripe's; with `fix`, record Stripe's.
    Nothing here asks Stripe to refund; an order refunded while Stripe returned less stays so (states never
    move back) and is left to a person, as are rows Stripe does not list."""
    refunds = gateway.refunds_list(payment_intent_id=payment_intent_id)
    disputes = gateway.disputes_list(payment_intent_id=payment_intent_id)
    found = _money_compare(order, refunds, disputes)
    if not found or not fix:
        return found
    for finding in found:
        if isinstance(finding.subject, gateway.StripeRefund):
            stripe_refund_apply(refund=finding.subject, source=TransitionSource.RECONCILE)
        elif isinstance(finding.subject, gateway.StripeDispute):
            stripe_dispute_apply(dispute=finding.subject, source=TransitionSource.RECONCILE)
    # The upserts recompute too; this one covers a refunded amount that drifted while every row agreed.
    order_refunds_recompute(order_id=order.pk, source=TransitionSource.RECONCILE)
    order = Order.objects.only(*FIELDS).get(pk=order.pk)
    left = {_subject(f): f for f in _money_compare(order, refunds, disputes)}
    return [_after_repair(finding, left.get(_subject(finding)), order) for finding in found]


def _after_repair(finding: Finding, still: Finding | None, order: Order) -> Finding:
    """Return the finding with what the repair did: recorded, recomputed, or left to a person."""
    if still is None and finding.subject is not None:
        return finding.fixed_as("recorded as Stripe has it", fixed=True)
    if still is None:
        returned = money_format(order.amount_refunded, order.currency)
        return finding.fixed_as(f"recomputed: {order.status}, {returned} returned", fixed=True)
    if finding.kind == Disagreement.REFUNDED_NOT_RETURNED:
        return finding.fixed_as("an order never moves back from refunded: a person must look")
    if finding.kind == Disagreement.NOT_AT_STRIPE:
        return finding.fixed_as("a person must look")
    return finding.fixed_as(f"still so ({still.detail}): a person must look")


def _subject(finding: Finding) -> tuple[Disagreement, str]:
    """Return what a finding is about, to tell whether it is still so after a repair."""
    return finding.kind, finding.subject.id if finding.subject is not None else ""


def _money_compare(
    order: Order, refunds: list[gateway.StripeRefund], disputes: list[gateway.StripeDispute]
) -> list[Finding]:
    found = [
        *_rows_compare(order, OrderRefund, refunds, "refund", refund_status_from_stripe),
        *_rows_compare(order, OrderDispute, disputes, "dispute", str),
    ]
    returned = min(
        money_returned(
            refunds=[(refund_status_from_stripe(r.status), r.amount) for r in refunds],
            disputes=[(d.status, d.amount) for d in disputes],
        ),
        order.amount_total,
    )
    says = (
        f"Stripe returned {money_format(returned, order.currency)} of "
        f"{money_format(order.amount_total, order.currency)}, the order counts "
        f"{money_format(order.amount_refunded, order.currency)}"
    )
    if order.status == OrderStatus.REFUNDED and returned < order.amount_total:
        found.append(Finding(Disagreement.REFUNDED_NOT_RETURNED, says))
    elif order.status == OrderStatus.FULFILLED and returned >= order.amount_total:
        found.append(Finding(Disagreement.RETURNED_NOT_REFUNDED, f"{says}; it is fulfilled"))
    elif order.amount_refunded != returned:
        found.append(Finding(Disagreement.REFUNDED_AMOUNT_DIFFERS, says))
    return found


def _rows_compare(
    order: Order, model: type[Model], listed: list, kind: str, status_of: Callable
) -> list[Finding]:
    """Compare an order's refund (or dispute) rows with the ones Stripe lists for its payment."""
    id_field = f"stripe_{kind}_id"
    rows = list(model.objects.filter(order_id=order.pk))
    by_stripe_id = {getattr(row, id_field): row for row in rows if getattr(row, id_field)}
    by_request_id = {str(row.pk): row for row in rows} if model is OrderRefund else {}
    unknown, differs = Disagreement[f"{kind.upper()}_UNKNOWN"], Disagreement[f"{kind.upper()}_STATUS_DIFFERS"]
    found = []
    for item in listed:
        amount = money_format(item.amount, item.currency or order.currency)
        # Our own refund whose answer was never recorded is known by the row id in the refund's metadata.
        request_id = getattr(item, "metadata", {}).get("refund_request_id", "")
        row = by_stripe_id.get(item.id) or by_request_id.get(request_id)
        if row is None:
            detail = f"{item.id} of {amount}, {item.status} at Stripe (its webhook was lost?)"
            found.append(Finding(unknown, detail, subject=item))
        elif row.status != status_of(item.status):
            detail = f"{item.id} of {amount} is {row.status} here, {item.status} at Stripe"
            found.append(Finding(differs, detail, subject=item))
    listed_ids = {item.id for item in listed}
    for stripe_id, row in by_stripe_id.items():
        if stripe_id not in listed_ids:
            detail = f"{kind} {stripe_id} ({row.status} here) is not among the payment's {kind}s at Stripe"
            found.append(Finding(Disagreement.NOT_AT_STRIPE, detail))
    return found
