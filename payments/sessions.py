"""Apply a Checkout Session to its order: the one path the webhook, the success redirect, the audit and
replay share, as Stripe's fulfilment guide asks (one `fulfill_checkout(session)` for every caller).
"""

import logging
import uuid
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.db import transaction

from orders import transitions
from orders.exceptions import OrderNotFound, RefundRefused
from orders.logs import log_fields
from orders.models import Order, OrderRefund, OrderStatus, RefundRequester
from orders.money import money_format
from orders.selectors import order_get_for_payment, order_status_get
from orders.services import (
    Charged,
    order_attach_checkout_session,
    order_charged_store,
    order_flag_attention,
    order_mark_payment_pending,
    order_payment_details_store,
)
from orders.transitions import TransitionResult
from payments.emails import customer_email_owe
from payments.exceptions import NotOurs
from payments.gateway import CheckoutSession
from payments.models import EmailKind
from payments.refunds import order_refund

logger = logging.getLogger(__name__)

PAID_STATUSES = frozenset({"paid", "no_payment_required"})


class SessionDecision(StrEnum):
    PAID = "paid"
    PAYMENT_PENDING = "payment pending"
    PAYMENT_FAILED = "payment failed"
    EXPIRED = "expired"
    OPEN = "open"
    NOT_OURS = "not ours"
    AMOUNT_MISMATCH = "amount mismatch"
    LATE_PAYMENT = "late payment"  # paid, but the order had already closed


class PaidTransition(StrEnum):
    """What a paid session asks of its order: the webhook fulfils, the success redirect confirms."""

    FULFILL = "fulfill"
    CONFIRM = "confirm"


PAID_TRANSITIONS = {
    PaidTransition.FULFILL: transitions.order_fulfill,
    PaidTransition.CONFIRM: transitions.order_confirm,
}
_REASON_PREFIXES = {
    SessionDecision.NOT_OURS: "session not created by this project: ",
    SessionDecision.AMOUNT_MISMATCH: "amount mismatch: ",
    SessionDecision.LATE_PAYMENT: "late payment: ",
}


@dataclass(frozen=True)
class SessionApplied:
    """What applying a session did. `transition` is None when none was asked for (a refusal, an open or
    pending session, a dry run); `detail` is what a person reads, `reason` leads with the decision."""

    decision: SessionDecision
    session_id: str
    order_id: uuid.UUID | None
    detail: str
    transition: TransitionResult | None = None

    @property
    def reason(self) -> str:
        return _REASON_PREFIXES.get(self.decision, "") + self.detail

    @property
    def won(self) -> bool:
        """Return whether this call moved the order (a loser is normal: another caller moved it first)."""
        return self.transition is not None and self.transition.won


def checkout_session_apply(
    *,
    session: CheckoutSession,
    source: str,
    paid_transition: PaidTransition = PaidTransition.FULFILL,
    stripe_event_id: str | None = None,
    payment_failed: bool = False,
    order: Order | None = None,
    dry_run: bool = False,
) -> SessionApplied:
    """Find the session's order by the ownership rule and move it as the session's state says. `order`: the
    caller's copy, used if the session names it; `payment_failed`: this complete, unpaid session's delayed
    payment failed (only `async_payment_failed` can tell); `dry_run` changes nothing."""
    try:
        owner = _owner(session, known=order, dry_run=dry_run)
    except NotOurs as exc:
        refused = SessionApplied(SessionDecision.NOT_OURS, session.id, None, str(exc))
        return _refused(refused, logging.WARNING, source, stripe_event_id)
    decision = checkout_session_decision(session=session, payment_failed=payment_failed)
    if decision == SessionDecision.PAID and (
        mismatch := checkout_session_charge_mismatch(session=session, order=owner)
    ):
        done = transitions.TRANSITIONS[paid_transition].to_status
        detail = f"{mismatch}; not {done}, a person must look"
        refused = SessionApplied(SessionDecision.AMOUNT_MISMATCH, session.id, owner.pk, detail)
        return _refused(refused, logging.ERROR, source, stripe_event_id)
    if dry_run:
        if decision == SessionDecision.PAID and owner.status in OrderStatus.CLOSED:
            detail = f"would refund: paid, but the order is {owner.status}"
            return SessionApplied(SessionDecision.LATE_PAYMENT, session.id, owner.pk, detail)
        return SessionApplied(decision, session.id, owner.pk, f"would apply: {decision}")
    with log_fields(order_id=owner.pk, checkout_session_id=session.id):
        return _act(decision, session, owner, source, paid_transition, stripe_event_id)


def checkout_session_decision(*, session: CheckoutSession, payment_failed: bool = False) -> SessionDecision:
    """Return what the session's state asks of its order, ownership and amount aside: complete and paid
    (or nothing owed), the caller's paid transition; complete and unpaid, a delayed payment."""
    if session.status == "complete":
        if session.payment_status in PAID_STATUSES:
            return SessionDecision.PAID
        return SessionDecision.PAYMENT_FAILED if payment_failed else SessionDecision.PAYMENT_PENDING
    if session.status == "expired":
        return SessionDecision.EXPIRED
    return SessionDecision.OPEN


def checkout_session_charge_mismatch(*, session: CheckoutSession, order: Order) -> str:
    """Return how the session's charge disagrees with the order, or '' when its items come to the order's
    subtotal in its currency and its total to that less its discount plus tax and shipping, none negative:
    the items' prices are the catalog's, the rest is Stripe's to add."""
    currency = (session.currency or "").lower()
    # A session of an API version without amount_subtotal has no discount, tax or shipping either.
    subtotal = session.amount_total if session.amount_subtotal is None else session.amount_subtotal
    if subtotal != order.amount_subtotal or currency != order.currency:
        return (
            f"session {session.id}'s items come to {_money(subtotal, session.currency)}, "
            f"order {order.pk}'s to {money_format(order.amount_subtotal, order.currency)}"
        )
    added = (session.amount_discount, session.amount_tax, session.amount_shipping)
    if min(added) < 0 or session.amount_total != subtotal - added[0] + added[1] + added[2]:
        return (
            f"session {session.id} charges {_money(session.amount_total, currency)}, not its items' "
            f"{_money(subtotal, currency)} less {_money(added[0], currency)} discount plus "
            f"{_money(added[1], currency)} tax and {_money(added[2], currency)} shipping"
        )
    return ""


def checkout_session_charged(session: CheckoutSession) -> Charged:
    """Return what the (agreeing) session added to the order's lines, for the order to store."""
    return Charged(
        discount=session.amount_discount,
        tax=session.amount_tax,
        shipping=session.amount_shipping,
        promotion_code=session.promotion_code,
        shipping_rate=session.shipping_rate,
        shipping_address=session.shipping_address,
    )


def _money(amount: int | None, currency: str | None) -> str:
    return "nothing" if amount is None else money_format(amount, currency or "")


def _owner(session: CheckoutSession, *, known: Order | None, dry_run: bool) -> Order:
    """Return the order the session names if it stores this session's id, or raise NotOurs. One storing
    none yet (storing it failed) gets it attached: the session came from Stripe itself, in a signed event
    or the answer to our own call."""
    order_id = session.named_order_id()
    if known is not None and known.pk == order_id:
        order = known
    else:
        try:
            order = order_get_for_payment(order_id=order_id)
        except OrderNotFound:
            raise NotOurs(f"no order {order_id}") from None
    if order.stripe_checkout_session_id is None and not dry_run:
        if order_attach_checkout_session(order_id=order.pk, session_id=session.id):
            order.stripe_checkout_session_id = session.id
        else:
            order = order_get_for_payment(order_id=order_id)
    stored = order.stripe_checkout_session_id
    if stored is None and not dry_run:
        raise NotOurs(f"order {order.pk} has no session, and {session.id} is stored on another order")
    if stored not in (None, session.id):
        raise NotOurs(f"order {order.pk} belongs to session {stored}")
    return order


def _act(
    decision: SessionDecision,
    session: CheckoutSession,
    owner: Order,
    source: str,
    paid_transition: PaidTransition,
    stripe_event_id: str | None,
) -> SessionApplied:
    if decision == SessionDecision.PAID:
        result = PAID_TRANSITIONS[paid_transition](
            order_id=owner.pk,
            source=source,
            stripe_event_id=stripe_event_id,
            payment_intent_id=session.payment_intent_id,
            customer_email=session.customer_email,
            charged=checkout_session_charged(session),
        )
        if not result.won:
            _remember_buyer(session, owner)
        if result.won or result.status not in OrderStatus.CLOSED:
            return _moved(decision, session, owner, result, done=result.status or "")
        # What it charged is what its refund must return.
        order_charged_store(order_id=owner.pk, charged=checkout_session_charged(session))
        late = late_payment_settle(
            order_id=owner.pk, order_status=result.status, session=session, stripe_event_id=stripe_event_id
        )
        refused = SessionApplied(SessionDecision.LATE_PAYMENT, session.id, owner.pk, late.summary, result)
        return _refused(refused, logging.ERROR, source, stripe_event_id)
    _remember_buyer(session, owner)
    if decision == SessionDecision.PAYMENT_FAILED:
        # The buyer's notice is owed by the winner of the transition, in its transaction: once.
        with transaction.atomic(savepoint=False):
            reason = f"The delayed payment failed (Checkout Session {session.id})."
            result = transitions.order_fail(
                order_id=owner.pk, source=source, reason=reason, stripe_event_id=stripe_event_id
            )
            if result.won:
                customer_email_owe(order_id=owner.pk, kind=EmailKind.PAYMENT_FAILED)
        return _moved(decision, session, owner, result, done="failed: the delayed payment failed")
    if decision == SessionDecision.EXPIRED:
        result = transitions.order_expire(order_id=owner.pk, source=source, stripe_event_id=stripe_event_id)
        return _moved(decision, session, owner, result, done="expired")
    if decision == SessionDecision.PAYMENT_PENDING:
        return SessionApplied(decision, session.id, owner.pk, _mark_pending(session, owner, stripe_event_id))
    return SessionApplied(decision, session.id, owner.pk, "session is open: the buyer has not paid yet")


def _remember_buyer(session: CheckoutSession, order: Order) -> None:
    """Store the buyer's e-mail and the payment where the order lacks them (no write when it has both)."""
    if (session.customer_email and not order.customer_email) or (
        session.payment_intent_id and not order.stripe_payment_intent_id
    ):
        order_payment_details_store(
            order_id=order.pk,
            payment_intent_id=session.payment_intent_id,
            customer_email=session.customer_email,
        )


def _moved(
    decision: SessionDecision, session: CheckoutSession, order: Order, result: TransitionResult, *, done: str
) -> SessionApplied:
    detail = done if result.won else f"no-op: order already {result.status or 'missing'}"
    return SessionApplied(decision, session.id, order.pk, detail, result)


def _mark_pending(session: CheckoutSession, order: Order, stripe_event_id: str | None) -> str:
    payment = f"payment {session.payment_status or 'unknown'}"
    if order.payment_pending and order.status in OrderStatus.OPEN:
        return f"{payment}: already marked as pending, no transition"
    if order_mark_payment_pending(order_id=order.pk, stripe_event_id=stripe_event_id):
        return f"{payment}: marked as pending, no transition"
    return f"no-op: order already {order_status_get(order_id=order.pk) or 'missing'}"


def _refused(applied: SessionApplied, level: int, source: str, stripe_event_id: str | None) -> SessionApplied:
    logger.log(
        level,
        "order %s session %s not applied: %s (source=%s event=%s)",
        applied.order_id or "-",
        applied.session_id,
        applied.reason,
        source,
        stripe_event_id or "-",
        extra={"order_id": str(applied.order_id or ""), "checkout_session_id": applied.session_id},
    )
    return applied


@dataclass(frozen=True)
class LatePayment:
    """What was done about a payment for a closed order."""

    order_id: uuid.UUID
    refund: OrderRefund | None
    summary: str


def late_payment_settle(
    *,
    order_id: uuid.UUID | str,
    order_status: str,
    session: CheckoutSession,
    stripe_event_id: str | None = None,
) -> LatePayment:
    """Flag the closed order that was paid, and refund the whole payment if REFUND_LATE_PAYMENTS, once
    whoever notices: the refund row's id, and so its idempotency key, is derived from the order."""
    order_id = uuid.UUID(str(order_id))
    paid = _money(session.amount_total, session.currency)
    refund = None
    if not session.payment_intent_id:
        action = "nothing to refund (no payment intent)"
    elif not settings.REFUND_LATE_PAYMENTS:
        action = "automatic refunds are off (REFUND_LATE_PAYMENTS): refund it, or fulfill it, by hand"
    else:
        order_payment_details_store(
            order_id=order_id,
            payment_intent_id=session.payment_intent_id,
            customer_email=session.customer_email,
        )
        try:
            outcome = order_refund(
                order_id=order_id,
                amount=None,
                requested_by=RefundRequester.AUTOMATIC,
                request_id=uuid.uuid5(uuid.NAMESPACE_URL, f"late-payment-refund:{order_id}"),
            )
        except RefundRefused as exc:
            action = f"not refunded automatically: {exc}"
        else:
            refund = outcome.refund
            asked = (
                "refund asked of Stripe automatically"
                if outcome.ok
                else "the automatic refund did not go through"
            )
            action = f"{asked}: {outcome.message}"
    summary = f"paid {paid} on session {session.id} after the order was {order_status}; {action}"
    order_flag_attention(order_id=order_id, reason=f"Late payment: {summary}")
    event = stripe_event_id or "-"
    logger.warning("order %s session %s event %s: late payment: %s", order_id, session.id, event, summary)
    return LatePayment(order_id=order_id, refund=refund, summary=summary)
