"""The buyer's side of a payment: open a Checkout Session for an order, then verify the buyer's return."""

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.utils import timezone

from orders.exceptions import ProductUnavailable
from orders.logs import log_bind, log_fields
from orders.models import Order, OrderStatus, Product, TransitionSource
from orders.selectors import (
    order_get,
    order_get_by_session,
    order_get_for_payment,
    order_status_get,
    products_get_for_sale,
)
from orders.services import (
    order_attach_checkout_session,
    order_create,
    order_get_or_create,
    order_lines_merge,
)
from orders.transitions import order_fail
from payments import gateway
from payments.exceptions import PaymentProviderError, PaymentProviderNotConfigured, StripeResourceMissing
from payments.order_actions import order_close, order_session_expire
from payments.sessions import (
    PaidTransition,
    SessionDecision,
    checkout_session_apply,
    checkout_session_charge_mismatch,
)

logger = logging.getLogger(__name__)

# Replaced by the order's id in the success and cancel URLs, as Stripe replaces {CHECKOUT_SESSION_ID}.
ORDER_ID_PLACEHOLDER = "{ORDER_ID}"
# A repeated submit gets the first submit's session back (by its idempotency key), expiring when it does;
# with less time left than this the buyer could hardly pay, so they start again.
MIN_SECONDS_LEFT_TO_PAY = 5 * 60


class CheckoutRefused(Exception):
    """A checkout refused because of the order its token already made; `order` is that order."""

    def __init__(self, message: str, *, order: Order):
        super().__init__(message)
        self.order = order


class CheckoutTokenReused(CheckoutRefused):
    """The checkout token (form token or Idempotency-Key) was already used for other items or quantities."""


class CheckoutAlreadySubmitted(CheckoutRefused):
    """The checkout token's order is past paying for: it was paid, failed or expired, or its time ran out."""


class CheckoutPriceMismatch(PaymentProviderError):
    """Stripe's price for the item differs from the catalog's: the buyer would be charged another amount."""


@dataclass(frozen=True)
class CheckoutStart:
    order: Order
    session: gateway.CheckoutSession
    created: bool  # False when a repeated submit found the order of the first one


class ReturnOutcome(StrEnum):
    """What Stripe says about the session the buyer came back from."""

    PAID = "paid"
    PROCESSING = "processing"  # complete, but a delayed payment method has not settled
    OPEN = "open"  # the buyer has not paid yet
    EXPIRED = "expired"
    MISMATCH = "mismatch"  # the session is not the one we created for this order
    UNKNOWN = "unknown"  # Stripe has no such session (other keys, a restarted emulator): a stranded order
    UNVERIFIED = "unverified"  # Stripe could not be asked; only the stored state is known


# The redirect never says a delayed payment failed (only the async_payment_failed event can).
RETURN_OUTCOMES = {
    SessionDecision.PAID: ReturnOutcome.PAID,
    SessionDecision.PAYMENT_PENDING: ReturnOutcome.PROCESSING,
    SessionDecision.OPEN: ReturnOutcome.OPEN,
    SessionDecision.EXPIRED: ReturnOutcome.EXPIRED,
    SessionDecision.NOT_OURS: ReturnOutcome.MISMATCH,
    SessionDecision.AMOUNT_MISMATCH: ReturnOutcome.MISMATCH,
    # Paid, for an order already closed: the page tells the buyer they were charged and are refunded.
    SessionDecision.LATE_PAYMENT: ReturnOutcome.PAID,
}


@dataclass(frozen=True)
class CheckoutReturn:
    """The order after the buyer's return, and what Stripe said about its session."""

    order: Order
    outcome: ReturnOutcome
    session: gateway.CheckoutSession | None = None


def checkout_start(
    *, items: list[tuple[str, int]], checkout_token: str | None, success_url: str, cancel_url: str
) -> CheckoutStart:
    """Create (or find again, for a repeated token) a pending order of (sku, quantity) items and open its
    Checkout Session; raise CartRefused naming the item at fault. `{ORDER_ID}` in either URL becomes the
    order's id; Stripe fills in `{CHECKOUT_SESSION_ID}` itself."""
    # Fail before writing an order when Stripe is not configured at all: there is nothing to retry.
    gateway.client()
    products = products_get_for_sale(skus=[sku for sku, _ in items])
    for product in products.values():
        if not product.stripe_price_id:
            raise ProductUnavailable(
                f"Item {product.sku!r} cannot be paid for yet: it has no Stripe price. "
                "(Shop owner: run `python manage.py sync_catalog`.)",
                sku=product.sku,
            )
    lines = order_lines_merge((products[sku], quantity) for sku, quantity in items)
    order, created = _order_for_token(lines, checkout_token)
    with log_fields(order_id=order.id):
        # From the order, not from now, so a repeated call sends Stripe identical parameters and its
        # idempotency key answers with the same session. An order holding stock gives it back sooner.
        ttl = settings.CHECKOUT_SESSION_TTL_SECONDS
        if order.holds_stock:
            ttl = min(ttl, settings.CHECKOUT_STOCK_HOLD_MINUTES * 60)
        expires_at = int(order.created_at.timestamp()) + ttl
        if not created and expires_at - timezone.now().timestamp() < MIN_SECONDS_LEFT_TO_PAY:
            raise CheckoutAlreadySubmitted(
                f"This checkout form has expired (order {order.id}). "
                "Choose your item again to start a new order.",
                order=order,
            )
        shipped = any(product.requires_shipping for product, _ in lines)
        session = _session_open(
            order,
            created=created,
            line_items=[(product.stripe_price_id, quantity) for product, quantity in lines],
            success_url=success_url.replace(ORDER_ID_PLACEHOLDER, str(order.id)),
            cancel_url=cancel_url.replace(ORDER_ID_PLACEHOLDER, str(order.id)),
            expires_at=expires_at,
            promotion_codes=settings.CHECKOUT_PROMOTION_CODES,
            automatic_tax=settings.CHECKOUT_AUTOMATIC_TAX,
            shipping_countries=settings.CHECKOUT_SHIPPING_COUNTRIES if shipped else None,
            shipping_rates=settings.CHECKOUT_SHIPPING_RATES,
        )
        log_bind(checkout_session_id=session.id)
        _session_store(order, session)
        _refuse_if_closed_meanwhile(order, session)
        logger.info(
            "order %s session %s opened: %s, expires_at=%d, repeat=%s",
            order.id,
            session.id,
            ", ".join(f"{product.sku} x {quantity}" for product, quantity in lines),
            expires_at,
            not created,
        )
        return CheckoutStart(order=order, session=session, created=created)


def _order_for_token(lines: list[tuple[Product, int]], checkout_token: str | None) -> tuple[Order, bool]:
    """Return the token's order (created now, or by the first submit) and whether it was created now;
    refuse a repeated token that asks for something else, or whose order is past paying for."""
    if not checkout_token:
        return order_create(lines=lines), True
    order, created = order_get_or_create(lines=lines, checkout_token=checkout_token)
    if created:
        return order, True
    ordered = {line.product.sku: line.quantity for line in order.lines.select_related("product")}
    if ordered != {product.sku: quantity for product, quantity in lines}:
        bought = ", ".join(f"{sku} x {quantity}" for sku, quantity in ordered.items())
        raise CheckoutTokenReused(
            f"This checkout token was already used for order {order.id} ({bought}); "
            "use a new one for different items or quantities.",
            order=order,
        )
    if order.status != OrderStatus.PENDING:
        raise CheckoutAlreadySubmitted(
            f"This checkout form was already submitted: order {order.id} is {order.status}. "
            "Choose your item again to start a new order.",
            order=order,
        )
    return order, False


def _session_open(order: Order, *, created: bool, **params: Any) -> gateway.CheckoutSession:
    """Open the order's Checkout Session at the catalog's prices; fail the order if Stripe refuses, or if its
    prices are not the catalog's."""
    try:
        session = gateway.checkout_session_create(order_id=str(order.id), **params)
    except PaymentProviderNotConfigured:
        raise
    except PaymentProviderError as exc:
        logger.error("order %s checkout session create failed (repeat=%s): %s", order.id, not created, exc)
        # A repeated submit leaves the order to the request that created it, which may well succeed.
        if created:
            order_fail(order_id=order.id, source=TransitionSource.SYSTEM, reason=str(exc))
        raise
    if not (mismatch := checkout_session_charge_mismatch(session=session, order=order)):
        return session
    # Stripe would charge an amount the catalog does not say: fail the order and close its session.
    reason = f"{mismatch}: Stripe's prices are not the catalog's; run `manage.py sync_catalog --fix`."
    logger.error("order %s session %s price mismatch: %s", order.id, session.id, reason)
    # Recorded first, so that closing the order expires this session at Stripe before the order fails.
    order_attach_checkout_session(order_id=order.id, session_id=session.id)
    closed = order_close(order_id=order.id, transition="fail", source=TransitionSource.SYSTEM, reason=reason)
    if not closed.moved:
        # Its session stays open (nobody was sent to it) and expires by itself; the webhook then expires it.
        logger.warning("order %s session %s not failed: %s", order.id, session.id, closed.message)
    raise CheckoutPriceMismatch(reason)


def _session_store(order: Order, session: gateway.CheckoutSession) -> None:
    """Store the session id on the order, unless it holds another (then refuse this checkout)."""
    if order_attach_checkout_session(order_id=order.id, session_id=session.id):
        return
    order.refresh_from_db(fields=["stripe_checkout_session_id"])
    if order.stripe_checkout_session_id != session.id:
        # Only possible once Stripe has forgotten the idempotency key; the order keeps its first session.
        logger.error(
            "order %s already has session %s; Stripe opened another, %s, which is not used",
            order.id,
            order.stripe_checkout_session_id,
            session.id,
        )
        raise CheckoutAlreadySubmitted(
            f"This checkout form was already used (order {order.id}). Choose your item again.",
            order=order,
        )


def _refuse_if_closed_meanwhile(order: Order, session: gateway.CheckoutSession) -> None:
    """Expire the new session of an order someone closed while Stripe was opening it, and refuse: closing
    an order without a stored session has nothing to expire at Stripe, and once the session is stored,
    anyone closing the order expires it first, so this one check after storing closes the gap."""
    status = order_status_get(order_id=order.id)
    if status == OrderStatus.PENDING:
        return
    closing = order_session_expire(
        order=order_get_for_payment(order_id=order.id), source=TransitionSource.SYSTEM
    )
    logger.warning(
        "order %s session %s: the order became %s while its session was opened: %s",
        order.id,
        session.id,
        status,
        closing.message,
    )
    raise CheckoutAlreadySubmitted(
        f"Order {order.id} was closed ({status}) while its checkout was being opened. "
        "Choose your item again to start a new order.",
        order=order,
    )


def checkout_return_verify(*, session_id: str) -> CheckoutReturn:
    """Ask Stripe about the session the buyer came back from and apply it; a paid one confirms the order.

    Raises OrderNotFound, before asking Stripe anything, when no order stores this session id.
    """
    order = order_get_by_session(session_id=session_id)
    try:
        session = gateway.checkout_session_retrieve(session_id=session_id)
    except StripeResourceMissing:
        logger.warning("order %s session %s return: Stripe does not know the session", order.id, session_id)
        return CheckoutReturn(order=order, outcome=ReturnOutcome.UNKNOWN)
    except PaymentProviderError as exc:
        logger.warning("order %s session %s return not verified: %s", order.id, session_id, exc)
        return CheckoutReturn(order=order, outcome=ReturnOutcome.UNVERIFIED)
    applied = checkout_session_apply(
        session=session, source=TransitionSource.REDIRECT, paid_transition=PaidTransition.CONFIRM, order=order
    )
    outcome = RETURN_OUTCOMES[applied.decision]
    status = f"{session.status}/{session.payment_status}"
    logger.info(
        "order %s session %s return: session %s, outcome %s", order.id, session_id, status, outcome.value
    )
    return CheckoutReturn(order=order_get(order_id=order.id), outcome=outcome, session=session)
