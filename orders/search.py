"""Find orders by what an operator has in hand, each kind of term through an index of its own.

A term is routed by its shape, never matched against every column with LIKE '%...%' (a scan of every row):

| term | matches | through |
| --- | --- | --- |
| `cs_...` | the Checkout Session id, exactly | its unique index |
| `pi_...` | the PaymentIntent id, exactly | `order_payment_intent_idx` |
| anything with `@` | the e-mail, whole, in any case | `order_email_upper_idx`, on UPPER(customer_email) |
| a UUID | the order id | the primary key |
| 4 to 31 hex digits | ids starting with them (the short reference is 8) | a range on the primary key |

Anything else matches nothing: `term_help()` says what a search understands.
"""

import re
import uuid

from django.db.models import Q, QuerySet

SHORT_REFERENCE_LENGTH = 8
_HEX_PREFIX = re.compile(r"^[0-9a-f]{4,31}$")


def order_reference(order_id: uuid.UUID) -> str:
    """Return the short reference an operator reads and types: the id's first 8 hex digits."""
    return order_id.hex[:SHORT_REFERENCE_LENGTH]


def term_help() -> str:
    return (
        "Search by Checkout Session (cs_...), PaymentIntent (pi_...), the buyer's whole e-mail address, "
        f"the order id or its first {SHORT_REFERENCE_LENGTH} characters."
    )


def order_id_match(term: str, field: str = "pk") -> Q | None:
    """Return the condition on `field` for an order id or an id prefix, or None if the term is neither."""
    compact = term.strip().lower().replace("-", "")
    if len(compact) == 32:
        try:
            return Q(**{field: uuid.UUID(compact)})
        except ValueError:
            return None
    if _HEX_PREFIX.match(compact):
        # Ids starting with these digits are exactly those between the prefix padded with 0s and with fs,
        # a range the primary key's index answers (a LIKE on the id's text could not use it).
        pad = 32 - len(compact)
        low, high = uuid.UUID(compact + "0" * pad), uuid.UUID(compact + "f" * pad)
        return Q(**{f"{field}__gte": low, f"{field}__lte": high})
    return None


def orders_search(*, queryset: QuerySet, term: str) -> QuerySet:
    """Return the orders of `queryset` that the term names (see the module's table)."""
    term = term.strip()
    if not term:
        return queryset
    if term.startswith("cs_"):
        return queryset.filter(stripe_checkout_session_id=term)
    if term.startswith("pi_"):
        return queryset.filter(stripe_payment_intent_id=term)
    if "@" in term:
        return queryset.filter(customer_email__iexact=term)
    condition = order_id_match(term)
    return queryset.filter(condition) if condition is not None else queryset.none()
