"""The audit's money going back: an order's refund and dispute rows against the ones Stripe lists.

Asked only of orders whose session Stripe says is paid (nothing else can have been refunded or
disputed): two list calls per such order, the payment's refunds and its disputes, each one page (Stripe
caps a payment's refunds at its amount, and a charge has at most one dispute).

Repairs go through the one upsert the webhook handlers use (`payments.services.refunds`) and the one
recompute (`orders.refunds.order_refunds_recompute`), so an order ends where Stripe's money says, as if
the lost webhooks had arrived. Nothing here asks Stripe to refund. An order that is `refunded` while
Stripe returned less stays so (states never move back) and is left to a person, as are rows Stripe does
not list and rows that are further on here than at Stripe.
"""

import uuid
from dataclasses import dataclass

from orders.models import Order, OrderDispute, OrderRefund, OrderStatus, TransitionSource
from orders.money import money_format
from orders.refunds import (
    money_returned,
    order_refunds_recompute,
    refund_status_from_stripe,
)
from payments import gateway
from payments.services.audit_findings import Disagreement, Finding
from payments.services.refunds import stripe_dispute_apply, stripe_refund_apply


@dataclass(frozen=True)
class _AtStripe:
    """A payment's refunds and disputes as Stripe lists them."""

    refunds: list[gateway.StripeRefund]
    disputes: list[gateway.StripeDispute]


@dataclass(frozen=True)
class _Found:
    """A finding and what it is about (a refund or dispute id; '' for the order), to match after a fix."""

    subject: str
    finding: Finding
    refund: gateway.StripeRefund | None = None
    dispute: gateway.StripeDispute | None = None


def order_money_audit(*, order_id: uuid.UUID, payment_intent_id: str, fix: bool) -> list[Finding]:
    """Compare the order's refunds, disputes and refunded amount with Stripe's; with `fix`, repair them."""
    stripe = _AtStripe(
        refunds=gateway.refunds_list(payment_intent_id=payment_intent_id),
        disputes=gateway.disputes_list(payment_intent_id=payment_intent_id),
    )
    found = _compare(_order(order_id), stripe)
    if not found or not fix:
        return [f.finding for f in found]
    _repair(order_id, found)
    left = {(f.subject, f.finding.kind): f.finding for f in _compare(_order(order_id), stripe)}
    return [_outcome(f, left, order_id) for f in found]


def _order(order_id: uuid.UUID) -> Order:
    return Order.objects.only(
        "pk", "status", "amount_total", "amount_refunded", "currency", "stripe_payment_intent_id"
    ).get(pk=order_id)


def _compare(order: Order, stripe: _AtStripe) -> list[_Found]:
    found = [*_refunds_compare(order, stripe.refunds), *_disputes_compare(order, stripe.disputes)]
    returned = min(
        money_returned(
            refunds=[(refund_status_from_stripe(r.status), r.amount) for r in stripe.refunds],
            disputes=[(d.status, d.amount) for d in stripe.disputes],
        ),
        order.amount_total,
    )
    total = money_format(order.amount_total, order.currency)
    says = (
        f"Stripe returned {money_format(returned, order.currency)} of {total}, "
        f"the order counts {money_format(order.amount_refunded, order.currency)}"
    )
    if order.status == OrderStatus.REFUNDED and returned < order.amount_total:
        found.append(_Found("", Finding(Disagreement.REFUNDED_NOT_RETURNED, says)))
    elif order.status == OrderStatus.FULFILLED and returned >= order.amount_total:
        found.append(_Found("", Finding(Disagreement.RETURNED_NOT_REFUNDED, f"{says}; it is fulfilled")))
    elif order.amount_refunded != returned:
        found.append(_Found("", Finding(Disagreement.REFUNDED_AMOUNT_DIFFERS, says)))
    return found


def _refunds_compare(order: Order, refunds: list[gateway.StripeRefund]) -> list[_Found]:
    rows = list(OrderRefund.objects.filter(order_id=order.pk).only("pk", "stripe_refund_id", "status"))
    by_stripe_id = {row.stripe_refund_id: row for row in rows if row.stripe_refund_id}
    by_request_id = {str(row.pk): row for row in rows}
    found = []
    for refund in refunds:
        amount = money_format(refund.amount, refund.currency or order.currency)
        # Our own request whose answer was never recorded is known by the row id in the refund's metadata.
        row = by_stripe_id.get(refund.id) or by_request_id.get(refund.metadata.get("refund_request_id", ""))
        status = refund_status_from_stripe(refund.status)
        if row is None:
            detail = f"{refund.id} of {amount}, {refund.status} at Stripe (its webhook was lost?)"
            found.append(_Found(refund.id, Finding(Disagreement.REFUND_UNKNOWN, detail), refund=refund))
        elif row.status != status:
            detail = f"{refund.id} of {amount} is {row.status} here, {refund.status} at Stripe"
            finding = Finding(Disagreement.REFUND_STATUS_DIFFERS, detail)
            found.append(_Found(refund.id, finding, refund=refund))
    listed = {refund.id for refund in refunds}
    for stripe_id, row in by_stripe_id.items():
        if stripe_id not in listed:
            detail = f"refund {stripe_id} ({row.status} here) is not among the payment's refunds at Stripe"
            found.append(_Found(stripe_id, Finding(Disagreement.NOT_AT_STRIPE, detail)))
    return found


def _disputes_compare(order: Order, disputes: list[gateway.StripeDispute]) -> list[_Found]:
    rows = {
        row.stripe_dispute_id: row
        for row in OrderDispute.objects.filter(order_id=order.pk).only("stripe_dispute_id", "status")
    }
    found = []
    for dispute in disputes:
        amount = money_format(dispute.amount, dispute.currency or order.currency)
        row = rows.get(dispute.id)
        if row is None:
            detail = f"{dispute.id} of {amount}, {dispute.status} at Stripe (its webhook was lost?)"
            found.append(_Found(dispute.id, Finding(Disagreement.DISPUTE_UNKNOWN, detail), dispute=dispute))
        elif row.status != dispute.status:
            detail = f"{dispute.id} of {amount} is {row.status} here, {dispute.status} at Stripe"
            found.append(
                _Found(dispute.id, Finding(Disagreement.DISPUTE_STATUS_DIFFERS, detail), dispute=dispute)
            )
    listed = {dispute.id for dispute in disputes}
    for stripe_id, row in rows.items():
        if stripe_id not in listed:
            detail = f"dispute {stripe_id} ({row.status} here) is not among the payment's disputes at Stripe"
            found.append(_Found(stripe_id, Finding(Disagreement.NOT_AT_STRIPE, detail)))
    return found


def _repair(order_id: uuid.UUID, found: list[_Found]) -> None:
    for item in found:
        if item.refund is not None:
            stripe_refund_apply(refund=item.refund, source=TransitionSource.RECONCILE)
        elif item.dispute is not None:
            stripe_dispute_apply(dispute=item.dispute, source=TransitionSource.RECONCILE)
    # The upserts recompute too; this one covers a refunded amount that drifted while every row agreed.
    order_refunds_recompute(order_id=order_id, source=TransitionSource.RECONCILE)


def _outcome(item: _Found, left: dict[tuple[str, Disagreement], Finding], order_id: uuid.UUID) -> Finding:
    finding = item.finding
    still = left.get((item.subject, finding.kind))
    if still is not None:
        why = {
            Disagreement.NOT_AT_STRIPE: "a person must look",
            Disagreement.REFUNDED_NOT_RETURNED: "an order never moves back from refunded: a person must look",
        }.get(finding.kind, f"still so ({still.detail}): a person must look")
        return finding.fixed_as(why)
    if item.refund is not None or item.dispute is not None:
        return finding.fixed_as("recorded as Stripe has it", fixed=True)
    order = _order(order_id)
    return finding.fixed_as(
        f"recomputed: {order.status}, {money_format(order.amount_refunded, order.currency)} returned",
        fixed=True,
    )
