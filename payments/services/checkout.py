"""The buyer's side of a payment: open a Checkout Session for an order, then verify the buyer's return."""

import logging
from dataclasses import dataclass
from enum import Enum

from django.conf import settings
from django.utils import timezone

from orders.exceptions import ProductUnavailable
from orders.models import Order, OrderStatus, TransitionSource
from orders.selectors import order_get, order_get_by_session, product_get_for_sale
from orders.services import (
    order_attach_checkout_session,
    order_create,
    order_get_or_create,
    order_mark_payment_pending,
)
from orders.transitions import order_confirm, order_fail
from payments import gateway
from payments.exceptions import CheckoutSessionNotFound, PaymentProviderError, PaymentProviderNotConfigured
from payments.services.matching import session_charge_mismatch

logger = logging.getLogger(__name__)

# Replaced by the order's id in the success and cancel URLs, as Stripe replaces {CHECKOUT_SESSION_ID}.
ORDER_ID_PLACEHOLDER = "{ORDER_ID}"
# A session must stay open long enough for the buyer to pay; Stripe refuses an expiry this close anyway.
MIN_SECONDS_LEFT_TO_PAY = 5 * 60


class CheckoutTokenReused(Exception):
    """The checkout token (form token or Idempotency-Key) was already used for another item or quantity."""

    def __init__(self, message: str, *, order: Order):
        super().__init__(message)
        self.order = order


class CheckoutAlreadySubmitted(Exception):
    """The checkout token's order is past paying for: it was paid, failed or expired, or its time ran out."""

    def __init__(self, message: str, *, order: Order):
        super().__init__(message)
        self.order = order


class CheckoutPriceMismatch(PaymentProviderError):
    """Stripe's price for the item differs from the catalog's: the buyer would be charged another amount."""


@dataclass(frozen=True)
class CheckoutStart:
    """An order and the Checkout Session the buyer pays it on."""

    order: Order
    session: gateway.CheckoutSession
    created: bool  # False when a repeated submit found the order of the first one


class ReturnOutcome(str, Enum):
    """What Stripe says about the session the buyer came back from."""

    PAID = "paid"
    PROCESSING = "processing"  # complete, but a delayed payment method has not settled
    OPEN = "open"  # the buyer has not paid yet
    EXPIRED = "expired"
    MISMATCH = "mismatch"  # the session is not the one we created for this order
    UNKNOWN = "unknown"  # Stripe has no such session (other keys, a restarted emulator): a stranded order
    UNVERIFIED = "unverified"  # Stripe could not be asked; only the stored state is known


@dataclass(frozen=True)
class CheckoutReturn:
    """The order after the buyer's return, and what Stripe said about its session."""

    order: Order
    outcome: ReturnOutcome
    session: gateway.CheckoutSession | None = None
    note: str = ""


def checkout_start(
    *,
    sku: str,
    quantity: int,
    checkout_token: str | None,
    success_url: str,
    cancel_url: str,
    customer_email: str = "",
) -> CheckoutStart:
    """Create (or find again, for a repeated token) a pending order and open its Checkout Session.

    `{ORDER_ID}` in either URL becomes the order's id; Stripe fills in `{CHECKOUT_SESSION_ID}` itself.
    """
    # Fail before writing an order when Stripe is not configured at all: there is nothing to retry.
    gateway.client()
    product = product_get_for_sale(sku=sku)
    if not product.stripe_price_id:
        raise ProductUnavailable(
            f"Item {sku!r} cannot be paid for yet: it has no Stripe price. "
            "(Shop owner: run `python manage.py sync_catalog`.)"
        )
    if checkout_token:
        order, created = order_get_or_create(
            product=product, quantity=quantity, checkout_token=checkout_token, customer_email=customer_email
        )
    else:
        order, created = order_create(product=product, quantity=quantity, customer_email=customer_email), True
    if not created:
        _check_repeat_matches(order, product_id=product.pk, quantity=quantity)

    # From the order, not from now, so a repeated call sends Stripe identical parameters and its
    # idempotency key answers with the same session.
    expires_at = int(order.created_at.timestamp()) + settings.CHECKOUT_SESSION_TTL_SECONDS
    if not created and expires_at - timezone.now().timestamp() < MIN_SECONDS_LEFT_TO_PAY:
        raise CheckoutAlreadySubmitted(
            f"This checkout form has expired (order {order.id}). "
            "Choose your item again to start a new order.",
            order=order,
        )
    try:
        session = gateway.checkout_session_create(
            order_id=str(order.id),
            price_id=product.stripe_price_id,
            quantity=quantity,
            success_url=success_url.replace(ORDER_ID_PLACEHOLDER, str(order.id)),
            cancel_url=cancel_url.replace(ORDER_ID_PLACEHOLDER, str(order.id)),
            expires_at=expires_at,
            customer_email=customer_email,
        )
    except PaymentProviderNotConfigured:
        raise
    except PaymentProviderError as exc:
        logger.error("order %s checkout session create failed (repeat=%s): %s", order.id, not created, exc)
        # A repeated submit leaves the order to the request that created it, which may well succeed.
        if created:
            order_fail(order_id=order.id, source=TransitionSource.SYSTEM, reason=str(exc))
        raise

    if session.amount_total is not None and session_charge_mismatch(session=session, order=order):
        _refuse_mismatched_price(order, session)

    if not order_attach_checkout_session(order_id=order.id, session_id=session.id):
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
    logger.info(
        "order %s session %s opened: %s x %d, expires_at=%d, repeat=%s",
        order.id,
        session.id,
        product.sku,
        quantity,
        expires_at,
        not created,
    )
    return CheckoutStart(order=order, session=session, created=created)


def _check_repeat_matches(order: Order, *, product_id: int, quantity: int) -> None:
    """Refuse a repeated token that asks for something else, or whose order is past paying for."""
    if order.product_id != product_id or order.quantity != quantity:
        raise CheckoutTokenReused(
            f"This checkout token was already used for order {order.id} "
            f"({order.product.sku} x {order.quantity}); use a new one for a different item or quantity.",
            order=order,
        )
    if order.status != OrderStatus.PENDING:
        raise CheckoutAlreadySubmitted(
            f"This checkout form was already submitted: order {order.id} is {order.status}. "
            "Choose your item again to start a new order.",
            order=order,
        )


def _refuse_mismatched_price(order: Order, session: gateway.CheckoutSession) -> None:
    """Fail the order and close its session: Stripe would charge an amount the catalog does not say."""
    reason = (
        f"Stripe would charge {session.amount_total} {session.currency} but the catalog says "
        f"{order.amount_total} {order.currency}; run `manage.py sync_catalog --fix`."
    )
    logger.error("order %s session %s price mismatch: %s", order.id, session.id, reason)
    try:
        gateway.checkout_session_expire(session_id=session.id)
    except PaymentProviderError as exc:
        logger.warning("order %s session %s could not be expired: %s", order.id, session.id, exc)
    order_fail(order_id=order.id, source=TransitionSource.SYSTEM, reason=reason)
    raise CheckoutPriceMismatch(reason)


def checkout_return_verify(*, session_id: str) -> CheckoutReturn:
    """Ask Stripe about the session the buyer came back from, confirm the order if it is paid."""
    order = order_get_by_session(session_id=session_id)
    try:
        session = gateway.checkout_session_retrieve(session_id=session_id)
    except CheckoutSessionNotFound:
        logger.warning("order %s session %s return: Stripe does not know the session", order.id, session_id)
        return CheckoutReturn(order=order, outcome=ReturnOutcome.UNKNOWN)
    except PaymentProviderError as exc:
        logger.warning("order %s session %s return not verified: %s", order.id, session_id, exc)
        return CheckoutReturn(
            order=order,
            outcome=ReturnOutcome.UNVERIFIED,
            note="We could not reach the payment provider to check this payment just now, "
            "so this is what we knew before. This page checks again by itself.",
        )

    problems = _ownership_problems(order, session)
    if problems:
        logger.error(
            "order %s session %s does not match the order, not confirming: %s",
            order.id,
            session_id,
            "; ".join(problems),
        )
        return CheckoutReturn(order=order, outcome=ReturnOutcome.MISMATCH, session=session)

    if session.is_paid:
        order_confirm(
            order_id=order.id,
            source=TransitionSource.REDIRECT,
            payment_intent_id=session.payment_intent_id,
            customer_email=session.customer_email,
        )
        outcome = ReturnOutcome.PAID
    elif session.status == "complete":
        order_mark_payment_pending(order_id=order.id, stripe_event_id=None)
        outcome = ReturnOutcome.PROCESSING
    elif session.status == "expired":
        outcome = ReturnOutcome.EXPIRED
    else:
        outcome = ReturnOutcome.OPEN
    logger.info(
        "order %s session %s return: session %s/%s, outcome %s",
        order.id,
        session_id,
        session.status,
        session.payment_status,
        outcome.value,
    )
    return CheckoutReturn(order=order_get(order_id=order.id), outcome=outcome, session=session)


def _ownership_problems(order: Order, session: gateway.CheckoutSession) -> list[str]:
    """Return why the session is not the one created for this order (empty when it is)."""
    order_id = str(order.id)
    problems = []
    if session.metadata.get("order_id") != order_id:
        problems.append(f"metadata order_id is {session.metadata.get('order_id')!r}")
    if session.client_reference_id != order_id:
        problems.append(f"client_reference_id is {session.client_reference_id!r}")
    mismatch = session_charge_mismatch(session=session, order=order)
    if mismatch:
        problems.append(mismatch)
    return problems
