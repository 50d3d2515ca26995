"""What the buyer-facing views share: absolute URLs, JSON-only methods, and an order as the buyer sees it."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from orders.models import Order, OrderStatus
from payments.http import json_error

STATUS_MESSAGES = {
    OrderStatus.PENDING: "We are waiting for the payment provider to confirm your payment.",
    OrderStatus.CONFIRMED: "Payment received. We are finishing your order; this takes a moment.",
    OrderStatus.FULFILLED: "We have your payment, and your order is being sent.",
    OrderStatus.FAILED: "The payment did not go through, and nothing was charged.",
    OrderStatus.EXPIRED: "This checkout expired before it was paid. Nothing was charged.",
    OrderStatus.REFUNDED: "This order was refunded: the payment went back to your payment method.",
}
# A payment that reached an order already closed (see payments.sessions).
LATE_PAYMENT_REFUNDED = "You were charged after this checkout had closed, and the payment has been refunded."
LATE_PAYMENT_REFUNDING = "You were charged after this checkout had closed; the payment is being refunded."
LATE_PAYMENT_WAITING = "You were charged after this checkout had closed; our team will contact you."
PAYMENT_PENDING_MESSAGE = (
    "Your payment is processing: your bank has not confirmed it yet. This page updates when it does."
)


class HttpResponseSeeOther(HttpResponseRedirect):
    """A 303: after a POST, the browser follows with a GET."""

    status_code = 303


def absolute_url(request: HttpRequest, path: str) -> str:
    """Return the public URL of a path: SITE_URL when set, else the host the request came to."""
    if settings.SITE_URL:
        return settings.SITE_URL + path
    return request.build_absolute_uri(path)


def json_methods(*methods: str) -> Callable:
    """Allow only these methods, refusing others with a JSON 405; answer OPTIONS with Allow alone.

    OPTIONS gets no Access-Control-Allow-* header: a CORS preflight from another origin is granted
    nothing, so the browser never sends the request it asked about.
    """
    allow = ", ".join([*methods, "OPTIONS"])

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method in methods:
                return view(request, *args, **kwargs)
            if request.method == "OPTIONS":
                response = HttpResponse(status=204)
            else:
                response = json_error(
                    f"This endpoint answers {' and '.join(methods)} only, not {request.method}.", status=405
                )
            response["Allow"] = allow
            return response

        return wrapper

    return decorator


def order_status_message(order: Order) -> str:
    """Return one sentence telling the buyer where the order stands."""
    late = late_payment_message(order)
    if late:
        return late
    if order.payment_pending and order.status in OrderStatus.OPEN:
        return PAYMENT_PENDING_MESSAGE
    return STATUS_MESSAGES[OrderStatus(order.status)]


def late_payment_message(order: Order) -> str:
    """Return what to tell a buyer whose money reached the order after it closed, or '' when none did."""
    if order.status not in OrderStatus.CLOSED or not (order.needs_attention or order.amount_refunded):
        return ""
    if order.fully_refunded:
        return LATE_PAYMENT_REFUNDED
    return LATE_PAYMENT_REFUNDING if order.being_refunded() else LATE_PAYMENT_WAITING


AMOUNT_PARTS = ("subtotal", "discount", "tax", "shipping", "total")


def order_payload(order: Order) -> dict[str, Any]:
    """Return the order as the buyer may see it, for the status endpoint and JSON clients."""
    return {
        "order_id": str(order.id),
        "status": order.status,
        "payment_pending": order.payment_pending,
        "final": order.is_final,
        "message": order_status_message(order),
        "lines": [
            {
                "item_id": line.product.sku,
                "item_name": line.product.name,
                "quantity": line.quantity,
                "unit_amount": line.unit_amount,
                "amount": line.amount,
            }
            for line in order.lines.all()
        ],
        **{f"amount_{part}": getattr(order, f"amount_{part}") for part in AMOUNT_PARTS},
        "currency": order.currency,
        "created_at": order.created_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
        "status_url": reverse("order-status", kwargs={"order_id": order.id}),
    }
