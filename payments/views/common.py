"""Small pieces the buyer-facing views share: absolute URLs, JSON errors, an order as the buyer sees it."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse

from orders.models import Order, OrderStatus

STATUS_MESSAGES = {
    OrderStatus.PENDING: "We are waiting for the payment provider to confirm your payment.",
    OrderStatus.CONFIRMED: "Payment received. We are finishing your order; this takes a moment.",
    OrderStatus.FULFILLED: "Your order is complete. Thank you!",
    OrderStatus.FAILED: "The payment did not go through, and nothing was charged.",
    OrderStatus.EXPIRED: "This checkout expired before it was paid. Nothing was charged.",
}
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


def json_error(message: str, *, status: int, field: str | None = None, **extra: Any) -> JsonResponse:
    """Return the API's error shape: {"error": {"message": ..., "field": ...}}."""
    return JsonResponse({"error": {"message": message, "field": field, **extra}}, status=status)


def wants_json(request: HttpRequest) -> bool:
    """Return whether the client prefers JSON to HTML (browsers prefer HTML)."""
    return request.get_preferred_type(["text/html", "application/json"]) == "application/json"


API_PATH_PREFIX = "/api/"


def answers_in_json(request: HttpRequest) -> bool:
    """Return whether errors for this request are JSON: anything under /api/, or a client asking for it."""
    return request.path.startswith(API_PATH_PREFIX) or wants_json(request)


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
    if order.payment_pending and order.status in (OrderStatus.PENDING, OrderStatus.CONFIRMED):
        return PAYMENT_PENDING_MESSAGE
    return STATUS_MESSAGES[OrderStatus(order.status)]


def order_payload(order: Order) -> dict[str, Any]:
    """Return the order as the buyer may see it, for the status endpoint and JSON clients."""
    return {
        "order_id": str(order.id),
        "status": order.status,
        "payment_pending": order.payment_pending,
        "final": order.is_final,
        "message": order_status_message(order),
        "item_id": order.product.sku,
        "item_name": order.product.name,
        "quantity": order.quantity,
        "unit_amount": order.unit_amount,
        "amount_total": order.amount_total,
        "currency": order.currency,
        "created_at": order.created_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
        "status_url": reverse("order-status", kwargs={"order_id": order.id}),
    }
