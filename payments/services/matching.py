"""The one check of whether what Stripe charges is what the order costs."""

from orders.models import Order
from payments.gateway import CheckoutSession


def session_charge_mismatch(*, session: CheckoutSession, order: Order) -> str:
    """Return how the session's charge differs from the order's total, or '' when they agree."""
    if session.amount_total == order.amount_total and (session.currency or "").lower() == order.currency:
        return ""
    return (
        f"session {session.id} charges {session.amount_total} {session.currency}, "
        f"order {order.pk} is {order.amount_total} {order.currency}"
    )
