"""Writes to orders other than status changes (those live in `orders.transitions`)."""

import logging
import uuid
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from orders.db import storable_text, text_is_storable, update_returning
from orders.exceptions import CartInvalid, InvalidQuantity, OutOfStock, ProductUnavailable
from orders.models import MAX_LINES, MAX_QUANTITY, MIN_QUANTITY, Order, OrderLine, OrderStatus, Product
from orders.money import money_format

logger = logging.getLogger(__name__)

EMAIL_MAX_LENGTH = Order._meta.get_field("customer_email").max_length


def order_lines_merge(lines: Iterable[tuple[Product, int]]) -> list[tuple[Product, int]]:
    """Return the lines with each product once (quantities added up), or raise CartRefused naming the item."""
    merged: dict[int, tuple[Product, int]] = {}
    for product, quantity in lines:
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise InvalidQuantity(f"Quantity of {product.sku!r} must be a whole number.", sku=product.sku)
        merged[product.pk] = (product, merged.get(product.pk, (product, 0))[1] + quantity)
    if not 1 <= len(merged) <= MAX_LINES:
        raise CartInvalid(f"An order holds 1 to {MAX_LINES} different items, not {len(merged)}.")
    currency = next(iter(merged.values()))[0].currency
    for product, quantity in merged.values():
        if not product.active:
            raise ProductUnavailable(f"Item {product.sku!r} is not for sale.", sku=product.sku)
        if not MIN_QUANTITY <= quantity <= MAX_QUANTITY:
            raise InvalidQuantity(
                f"Quantity of {product.sku!r} must be {MIN_QUANTITY} to {MAX_QUANTITY}, not {quantity}.",
                sku=product.sku,
            )
        if product.currency != currency:
            raise CartInvalid(
                f"Item {product.sku!r} is priced in {product.currency.upper()}, the others in "
                f"{currency.upper()}: an order is paid in one currency.",
                sku=product.sku,
            )
    return list(merged.values())


def order_create(
    *, lines: Iterable[tuple[Product, int]], customer_email: str = "", checkout_token: str | None = None
) -> Order:
    """Create a pending order priced from the catalog, never from what the buyer sent, and take its
    quantities from stock in the same transaction (OutOfStock when a product has too few left)."""
    lines = order_lines_merge(lines)
    subtotal = sum(product.unit_amount * quantity for product, quantity in lines)
    with transaction.atomic():
        holds_stock = stock_reserve(lines)
        order = Order.objects.create(
            amount_subtotal=subtotal,
            amount_total=subtotal,
            currency=lines[0][0].currency,
            customer_email=customer_email,
            checkout_token=checkout_token or None,
            holds_stock=holds_stock,
        )
        OrderLine.objects.bulk_create(
            OrderLine(order=order, product=product, quantity=quantity, unit_amount=product.unit_amount)
            for product, quantity in lines
        )
    items = ", ".join(f"{product.sku} x {quantity}" for product, quantity in lines)
    total = money_format(order.amount_total, order.currency)
    logger.info("order %s created: %s = %s", order.id, items, total, extra={"order_id": str(order.id)})
    return order


def stock_reserve(lines: list[tuple[Product, int]]) -> bool:
    """Take each line's quantity from its product's stock; return whether any product counts its stock.

    One conditional UPDATE per product, in product order so that two orders never deadlock (an unlimited
    product stays NULL). Raise OutOfStock, for the caller's transaction to undo what was taken.
    """
    counted = False
    for product, quantity in sorted(lines, key=lambda line: line[0].pk):
        enough = Product.objects.filter(Q(stock__isnull=True) | Q(stock__gte=quantity), pk=product.pk)
        left = update_returning(enough, {"stock": F("stock") - quantity}, "stock")
        if not left:
            left = Product.objects.filter(pk=product.pk).values_list("stock", flat=True).first() or 0
            raise OutOfStock(
                f"{product.name} ({product.sku}) is out of stock: {left} left, {quantity} asked for.",
                sku=product.sku,
            )
        counted = counted or left[0] is not None
    return counted


def stock_release(*, order_id: uuid.UUID | str) -> bool:
    """Give back the quantities an order took, once; return whether this call gave them back."""
    if not Order.objects.filter(pk=order_id, holds_stock=True).update(holds_stock=False):
        return False
    lines = (
        OrderLine.objects.filter(order_id=order_id)
        .order_by("product_id")
        .values_list("product_id", "quantity")
    )
    for product_id, quantity in lines:
        Product.objects.filter(pk=product_id).update(stock=F("stock") + quantity)
    logger.info("order %s gave its stock back", order_id, extra={"order_id": str(order_id)})
    return True


def order_get_or_create(
    *, lines: list[tuple[Product, int]], checkout_token: str, customer_email: str = ""
) -> tuple[Order, bool]:
    """Return the order made by this checkout token, creating it first; the bool says it was created."""
    try:
        # A savepoint, so losing the race leaves an enclosing transaction usable.
        with transaction.atomic():
            order = order_create(lines=lines, customer_email=customer_email, checkout_token=checkout_token)
        return order, True
    except IntegrityError:
        # The unique constraint, not an exists() check, decides: the first submit won, we find its order.
        order = Order.objects.filter(checkout_token=checkout_token).first()
        if order is None:
            raise  # some other constraint refused the row
    logger.info("order %s found again for checkout token %s (a repeated submit)", order.id, checkout_token)
    return order, False


def order_attach_checkout_session(*, order_id: uuid.UUID | str, session_id: str) -> bool:
    """Record the order's Checkout Session id once; False if it had one, or another order holds that id."""
    # Inside a transaction (the webhook's), a savepoint keeps a refused id from poisoning it.
    isolated = transaction.atomic() if connection.in_atomic_block else nullcontext()
    try:
        with isolated:
            unattached = Order.objects.filter(pk=order_id, stripe_checkout_session_id__isnull=True)
            attached = bool(unattached.update(stripe_checkout_session_id=session_id))
    except IntegrityError:
        attached = False
    logger.info("order %s session %s attached=%s", order_id, session_id, attached)
    return attached


def order_mark_payment_pending(*, order_id: uuid.UUID | str, stripe_event_id: str | None) -> bool:
    """Note that the buyer paid with a delayed method whose outcome is not known yet."""
    marked = bool(Order.objects.filter(pk=order_id, status__in=OrderStatus.OPEN).update(payment_pending=True))
    event = stripe_event_id or "-"
    logger.info("order %s payment pending (delayed method) marked=%s event=%s", order_id, marked, event)
    return marked


def order_flag_attention(*, order_id: uuid.UUID | str, reason: str) -> bool:
    """Put the order in front of a person; False if flagged already (a replay keeps the first reason)."""
    unflagged = Order.objects.filter(pk=order_id, needs_attention=False)
    flagged = bool(unflagged.update(needs_attention=True, attention_reason=reason))
    logger.warning("order %s needs attention (newly flagged=%s): %s", order_id, flagged, reason)
    return flagged


def order_clear_attention(*, order_id: uuid.UUID | str, by: str) -> bool:
    """Take the order off the needs-attention list, recording who and when; False when it was not on it."""
    cleared = Order.objects.filter(pk=order_id, needs_attention=True).update(
        needs_attention=False, attention_settled_at=timezone.now(), attention_settled_by=by
    )
    logger.info(
        "order %s attention settled by %s: %s", order_id, by, bool(cleared), extra={"order_id": str(order_id)}
    )
    return bool(cleared)


@dataclass(frozen=True)
class Charged:
    """What a paid Checkout Session added to the order's lines (a discount, tax, shipping), and where to."""

    discount: int = 0
    tax: int = 0
    shipping: int = 0
    promotion_code: str = ""
    shipping_rate: str = ""
    shipping_address: str = ""

    def order_fields(self) -> dict[str, Any]:
        """Return the order's columns for it; the database adds the total up from the stored subtotal."""
        return {
            "amount_discount": self.discount,
            "amount_tax": self.tax,
            "amount_shipping": self.shipping,
            "amount_total": F("amount_subtotal") - self.discount + self.tax + self.shipping,
            "promotion_code": storable_text(self.promotion_code, max_length=255, field="promotion_code"),
            "shipping_rate": storable_text(self.shipping_rate, max_length=255, field="shipping_rate"),
            "shipping_address": storable_text(self.shipping_address, field="shipping_address"),
        }


def order_charged_store(*, order_id: uuid.UUID | str, charged: Charged) -> None:
    """Store what a paid session charged on an order that did not move (a late payment), for its refund."""
    Order.objects.filter(pk=order_id).update(**charged.order_fields())


def payment_details(payment_intent_id: str, customer_email: str) -> dict[str, str]:
    """Return the payment fields Stripe gave; an e-mail that does not fit is left out, not cut (a cut
    address is another one), so the transition never fails for a detail."""
    details = {}
    if payment_intent_id:
        details["stripe_payment_intent_id"] = payment_intent_id
    if len(customer_email) > EMAIL_MAX_LENGTH or not text_is_storable(customer_email):
        logger.warning("buyer's e-mail from Stripe left out, it does not fit: %r", customer_email[:60])
    elif customer_email:
        details["customer_email"] = customer_email
    return details


def order_payment_details_store(
    *, order_id: uuid.UUID | str, payment_intent_id: str, customer_email: str = ""
) -> bool:
    """Store the buyer's e-mail and PaymentIntent where the order has none yet (for every session seen: a
    failed or late payment's buyer must be reached too); return whether any was stored."""
    updated = 0
    for field, value in payment_details(payment_intent_id, customer_email).items():
        updated += Order.objects.filter(pk=order_id, **{field: ""}).update(**{field: value})
    logger.info(
        "order %s payment details stored: %s", order_id, bool(updated), extra={"order_id": str(order_id)}
    )
    return bool(updated)
