"""Reads of the catalog and of orders."""

import re
import uuid
from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet

from orders.exceptions import OrderNotFound, ProductUnavailable
from orders.models import Order, OrderStatus, Product

_HEX_PREFIX = re.compile(r"[0-9a-f]{4,32}")


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
    return _get(Order.objects.prefetch_related("lines__product"), f"No order {order_id}.", pk=order_id)


def order_id_condition(term: str, *, field: str = "pk") -> Q | None:
    """Return the condition on `field` for an order id or a prefix of one (4 hex digits or more, such as the
    8-character reference), or None if the term is neither.

    A prefix is the range between it padded with 0s and with fs, which the primary key's index answers.
    """
    compact = term.strip().lower().replace("-", "")
    if not _HEX_PREFIX.fullmatch(compact):
        return None
    if len(compact) == 32:
        return Q(**{field: uuid.UUID(compact)})
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
    """Return the order with its payment fields only."""
    return _get(Order.objects.only(*PAYMENT_FIELDS), f"No order {order_id}.", pk=order_id)


def order_get_by_session(*, session_id: str) -> Order:
    lines = Order.objects.prefetch_related("lines__product")
    return _get(lines, f"No order for Checkout Session {session_id}.", stripe_checkout_session_id=session_id)


def order_status_get(*, order_id: uuid.UUID | str) -> str | None:
    return Order.objects.filter(pk=order_id).values_list("status", flat=True).first()


def order_counts_created_since(*, since: datetime) -> dict[str, int]:
    """Return how many of the orders created since then are in each status now (zeros included)."""
    # Naming every status lets the (status, created_at) index answer with one short range per status.
    rows = (
        Order.objects.filter(status__in=OrderStatus.values, created_at__gte=since)
        .order_by()
        .values_list("status")
        .annotate(orders=Count("pk"))
    )
    return {**dict.fromkeys(OrderStatus.values, 0), **dict(rows)}


def _get(orders: QuerySet[Order], missing: str, **lookup: object) -> Order:
    """Return the one order of the lookup, or raise OrderNotFound with the message (a malformed id too)."""
    try:
        return orders.get(**lookup)
    except (Order.DoesNotExist, ValueError, ValidationError):
        raise OrderNotFound(missing) from None
