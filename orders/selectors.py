"""Reads of the catalog and of orders."""

import uuid
from collections.abc import Iterator
from datetime import datetime

from django.db.models import QuerySet

from orders.exceptions import OrderNotFound, ProductUnavailable
from orders.models import Order, OrderStatus, Product

OPEN_STATUSES = (OrderStatus.PENDING, OrderStatus.CONFIRMED)


def products_for_sale() -> QuerySet[Product]:
    """Return the active products, cheapest first."""
    return Product.objects.filter(active=True)


def product_get_for_sale(*, sku: str) -> Product:
    """Return the active product with this sku, or raise ProductUnavailable."""
    try:
        return Product.objects.get(sku=sku, active=True)
    except Product.DoesNotExist:
        raise ProductUnavailable(f"Unknown or unavailable item: {sku!r}.") from None


# What checking a payment against an order needs, and no more: the webhook's hot path reads only these.
PAYMENT_FIELDS = ("id", "status", "amount_total", "currency", "stripe_checkout_session_id", "payment_pending")


def order_get(*, order_id: uuid.UUID | str) -> Order:
    """Return the order with this id, or raise OrderNotFound."""
    try:
        return Order.objects.select_related("product").get(pk=order_id)
    except (Order.DoesNotExist, ValueError):
        raise OrderNotFound(f"No order {order_id}.") from None


def order_get_for_payment(*, order_id: uuid.UUID | str) -> Order:
    """Return the order's payment fields only (no product), or raise OrderNotFound."""
    try:
        return Order.objects.only(*PAYMENT_FIELDS).get(pk=order_id)
    except (Order.DoesNotExist, ValueError):
        raise OrderNotFound(f"No order {order_id}.") from None


def order_get_by_session(*, session_id: str) -> Order:
    """Return the order that owns this Checkout Session id, or raise OrderNotFound."""
    try:
        return Order.objects.select_related("product").get(stripe_checkout_session_id=session_id)
    except Order.DoesNotExist:
        raise OrderNotFound(f"No order for Checkout Session {session_id}.") from None


def orders_open_created_before(*, cutoff: datetime, chunk_size: int = 500) -> Iterator[Order]:
    """Yield pending and confirmed orders created before the cutoff, in constant memory."""
    return (
        Order.objects.filter(status__in=OPEN_STATUSES, created_at__lt=cutoff)
        .order_by("created_at")
        .iterator(chunk_size=chunk_size)
    )
