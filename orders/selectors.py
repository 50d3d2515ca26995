"""Reads of the catalog and of orders."""

import re
import uuid
from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet

from orders.exceptions import OrderNotFound, ProductUnavailable
from orders.models import Order, OrderStatus, Product

_HEX_PREFIX = re.compile(r"[0-9a-f]{4,31}")


def products_for_sale() -> QuerySet[Product]:
    """Return the active products, cheapest first."""
    return Product.objects.filter(active=True)


def products_get_for_sale(*, skus: Iterable[str]) -> dict[str, Product]:
    """Return the active products of these skus by sku, or raise ProductUnavailable naming one that is not."""
    skus = list(dict.fromkeys(skus))
    found = {product.sku: product for product in Product.objects.filter(sku__in=skus, active=True)}
    for sku in skus:
        if sku not in found:
            raise ProductUnavailable(f"Unknown or unavailable item: {sku!r}.", sku=sku)
    return found


# What checking a payment against an order needs, and no more: the webhook's hot path reads only these.
PAYMENT_FIELDS = (
    "id",
    "status",
    "amount_subtotal",
    "amount_total",
    "currency",
    "stripe_checkout_session_id",
    "payment_pending",
    "stripe_payment_intent_id",
    "customer_email",
)


def order_get(*, order_id: uuid.UUID | str) -> Order:
    """Return the order with this id, or raise OrderNotFound."""
    try:
        return Order.objects.prefetch_related("lines__product").get(pk=order_id)
    except (Order.DoesNotExist, ValueError, ValidationError):
        raise OrderNotFound(f"No order {order_id}.") from None


def order_id_condition(term: str, *, field: str = "pk") -> Q | None:
    """Return the condition on `field` for an order id or a prefix of one (4 to 31 hex digits, such as the
    8-character reference), or None if the term is neither.

    A prefix is the range between it padded with 0s and with fs, which the primary key's index answers.
    """
    compact = term.strip().lower().replace("-", "")
    if len(compact) == 32:
        try:
            return Q(**{field: uuid.UUID(compact)})
        except ValueError:
            return None
    if not _HEX_PREFIX.fullmatch(compact):
        return None
    pad = 32 - len(compact)
    return Q(
        **{f"{field}__gte": uuid.UUID(compact + "0" * pad), f"{field}__lte": uuid.UUID(compact + "f" * pad)}
    )


def order_get_by_reference(*, reference: str) -> Order:
    """Return the order of this id or short reference, or raise OrderNotFound saying why there is none."""
    condition = order_id_condition(reference)
    if condition is None:
        raise OrderNotFound(f"{reference!r} is not an order id or reference (such as df9fac96).")
    found = list(Order.objects.filter(condition).prefetch_related("lines__product")[:2])
    if len(found) > 1:
        raise OrderNotFound(f"Several orders start with {reference!r}: give more of the order id.")
    if not found:
        raise OrderNotFound(f"No order {reference}.")
    return found[0]


def order_get_for_payment(*, order_id: uuid.UUID | str) -> Order:
    """Return the order's payment fields only (no product), or raise OrderNotFound."""
    try:
        return Order.objects.only(*PAYMENT_FIELDS).get(pk=order_id)
    except (Order.DoesNotExist, ValueError):
        raise OrderNotFound(f"No order {order_id}.") from None


def order_get_by_session(*, session_id: str) -> Order:
    """Return the order that owns this Checkout Session id, or raise OrderNotFound."""
    try:
        return Order.objects.prefetch_related("lines__product").get(stripe_checkout_session_id=session_id)
    except Order.DoesNotExist:
        raise OrderNotFound(f"No order for Checkout Session {session_id}.") from None


def order_status_get(*, order_id: uuid.UUID | str) -> str | None:
    """Return the order's status now, or None when there is no such order."""
    return Order.objects.filter(pk=order_id).values_list("status", flat=True).first()


def order_counts_created_since(*, since: datetime) -> dict[str, int]:
    """Return how many of the orders created since then are in each status now (zeros included)."""
    counts = dict.fromkeys(OrderStatus.values, 0)
    # Naming every status lets the (status, created_at) index answer with one short range per status.
    rows = (
        Order.objects.filter(status__in=OrderStatus.values, created_at__gte=since)
        .order_by()
        .values_list("status")
        .annotate(orders=Count("pk"))
    )
    counts.update(rows)
    return counts
