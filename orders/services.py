"""Writes to orders other than status changes (those live in `orders.transitions`)."""

import logging
import uuid
from contextlib import nullcontext

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from orders.db import text_is_storable
from orders.exceptions import InvalidQuantity, ProductUnavailable
from orders.models import MAX_QUANTITY, MIN_QUANTITY, Order, OrderStatus, Product

logger = logging.getLogger(__name__)

EMAIL_MAX_LENGTH = Order._meta.get_field("customer_email").max_length


def order_create(
    *, product: Product, quantity: int, customer_email: str = "", checkout_token: str | None = None
) -> Order:
    """Create a pending order priced from the catalog, never from what the buyer sent."""
    if not product.active:
        raise ProductUnavailable(f"Product {product.sku!r} is not for sale.")
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidQuantity("Quantity must be a whole number.")
    if not MIN_QUANTITY <= quantity <= MAX_QUANTITY:
        raise InvalidQuantity(f"Quantity must be between {MIN_QUANTITY} and {MAX_QUANTITY}.")
    order = Order.objects.create(
        product=product,
        quantity=quantity,
        unit_amount=product.unit_amount,
        amount_total=product.unit_amount * quantity,
        currency=product.currency,
        customer_email=customer_email,
        checkout_token=checkout_token or None,
    )
    logger.info(
        "order %s created: %s x %d = %d %s",
        order.id,
        product.sku,
        quantity,
        order.amount_total,
        order.currency,
        extra={"order_id": str(order.id)},
    )
    return order


def order_get_or_create(
    *, product: Product, quantity: int, checkout_token: str, customer_email: str = ""
) -> tuple[Order, bool]:
    """Return the order made by this checkout token, creating it first; the bool says it was created."""
    try:
        # A savepoint, so losing the race leaves an enclosing transaction usable.
        with transaction.atomic():
            return (
                order_create(
                    product=product,
                    quantity=quantity,
                    customer_email=customer_email,
                    checkout_token=checkout_token,
                ),
                True,
            )
    except IntegrityError:
        # The unique constraint, not an exists() check, decides: the first submit won, we find its order.
        order = Order.objects.select_related("product").filter(checkout_token=checkout_token).first()
        if order is None:
            raise  # some other constraint refused the row
    logger.info("order %s found again for checkout token %s (a repeated submit)", order.id, checkout_token)
    return order, False


def order_attach_checkout_session(*, order_id: uuid.UUID | str, session_id: str) -> bool:
    """Record the order's Checkout Session id once; return False if it already had one.

    False too when another order holds that session id (the unique constraint refuses it).
    """
    # Inside a transaction (the webhook's), a savepoint keeps a refused id from poisoning it.
    isolated = transaction.atomic() if connection.in_atomic_block else nullcontext()
    try:
        with isolated:
            attached = (
                Order.objects.filter(pk=order_id, stripe_checkout_session_id__isnull=True).update(
                    stripe_checkout_session_id=session_id
                )
                == 1
            )
    except IntegrityError:
        attached = False
    logger.info("order %s session %s attached=%s", order_id, session_id, attached)
    return attached


def order_mark_payment_pending(*, order_id: uuid.UUID | str, stripe_event_id: str | None) -> bool:
    """Note that the buyer paid with a delayed method whose outcome is not known yet."""
    marked = (
        Order.objects.filter(pk=order_id, status__in=(OrderStatus.PENDING, OrderStatus.CONFIRMED)).update(
            payment_pending=True
        )
        == 1
    )
    logger.info(
        "order %s payment pending (delayed method) marked=%s event=%s",
        order_id,
        marked,
        stripe_event_id or "-",
    )
    return marked


def order_flag_attention(*, order_id: uuid.UUID | str, reason: str) -> bool:
    """Put the order in front of a person with the reason; return False if it was flagged already.

    The first reason is kept: a duplicate or replayed event must not overwrite what a person reads.
    """
    flagged = (
        Order.objects.filter(pk=order_id, needs_attention=False).update(
            needs_attention=True, attention_reason=reason
        )
        == 1
    )
    logger.warning("order %s needs attention (newly flagged=%s): %s", order_id, flagged, reason)
    return flagged


def order_clear_attention(*, order_id: uuid.UUID | str, by: str) -> bool:
    """Take the order off the needs-attention list once a person has settled it, recording who and when;
    return False when it was not on it (settled already, once is enough)."""
    cleared = Order.objects.filter(pk=order_id, needs_attention=True).update(
        needs_attention=False, attention_settled_at=timezone.now(), attention_settled_by=by
    )
    logger.info(
        "order %s attention settled by %s: %s", order_id, by, bool(cleared), extra={"order_id": order_id}
    )
    return bool(cleared)


def payment_details(payment_intent_id: str, customer_email: str) -> dict[str, str]:
    """Return the payment fields worth storing, leaving out the ones Stripe did not give.

    An e-mail address that does not fit its column is left out rather than cut (a cut address is
    another one): the transition must not fail for a detail.
    """
    details = {}
    if payment_intent_id:
        details["stripe_payment_intent_id"] = payment_intent_id
    if len(customer_email) > EMAIL_MAX_LENGTH or not text_is_storable(customer_email):
        logger.warning("buyer's e-mail from Stripe left out, it does not fit: %r", customer_email[:60])
    elif customer_email:
        details["customer_email"] = customer_email
    return details


def order_payment_details_store(
    *, order_id: uuid.UUID | str, payment_intent_id: str, customer_email: str
) -> bool:
    """Store the buyer's e-mail and the PaymentIntent Stripe gave where the order has none yet.

    Whenever the project sees a session (a delayed payment, a failed one, a late one), not only at
    fulfilment: those are the buyers an operator must reach. Return whether anything was stored.
    """
    updated = 0
    for field, value in payment_details(payment_intent_id, customer_email).items():
        updated += Order.objects.filter(pk=order_id, **{field: ""}).update(**{field: value})
    logger.info(
        "order %s payment details stored: %s", order_id, bool(updated), extra={"order_id": str(order_id)}
    )
    return bool(updated)
