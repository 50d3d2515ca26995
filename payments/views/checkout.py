"""The checkout page, its form, and the JSON endpoint for API clients: each opens a Checkout Session."""

import logging
import uuid
from collections.abc import Callable

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_safe

from orders.exceptions import CartRefused, InvalidQuantity, OutOfStock
from orders.selectors import products_for_sale
from payments import gateway
from payments.checkout import (
    ORDER_ID_PLACEHOLDER,
    CheckoutAlreadySubmitted,
    CheckoutPriceMismatch,
    CheckoutRefused,
    CheckoutStart,
    checkout_start,
)
from payments.exceptions import PaymentProviderError, PaymentProviderNotConfigured
from payments.forms import CheckoutForm, CheckoutRequest, CheckoutRequestInvalid, checkout_request_parse
from payments.http import HttpResponseSeeOther, absolute_url, checkout_throttle, json_error, json_methods
from payments.idempotency import IdempotencyKeyTooWeak, checkout_scope_start, checkout_token_scoped

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
UNAVAILABLE_MESSAGE = "The payment provider is unavailable right now. Nothing was charged. Please try again."
# True of every mismatch: the order is failed with the reason and an error is logged for the shop to act on.
PRICE_MISMATCH_MESSAGE = (
    "This item's price has changed and our payment provider does not have the new price yet, so it "
    "cannot be paid for right now. Nothing was charged. The shop has been alerted to update it; please "
    "try again later."
)


@never_cache
@require_safe
def checkout_page(request: HttpRequest) -> HttpResponse:
    """Show the products for sale, each with a quantity and a Pay button."""
    return _page(request)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def checkout_page_or_create(request: HttpRequest) -> HttpResponse:
    """Serve /checkout/: the page for a GET; the buy-now form's POST opens its Checkout Session (303)."""
    if request.method != "POST":
        return _page(request)
    if throttled := checkout_throttle(request=request):
        return _retry_later(
            render(request, "429.html", {"message": throttled.message}, status=429), throttled.retry_after
        )
    form = CheckoutForm(request.POST)
    sku, quantity = request.POST.get("item_id", ""), request.POST.get("quantity")

    def refused(status: int, error: str) -> HttpResponse:
        return _page(request, status=status, error=error, sku=sku, quantity=quantity)

    if not form.is_valid():
        return refused(400, form.first_error()[1])
    item = (form.cleaned_data["item_id"], form.cleaned_data["quantity"])
    return checkout_redirect(
        request, items=[item], token=form.cleaned_data["checkout_token"], refused=refused
    )


def checkout_redirect(
    request: HttpRequest,
    *,
    items: list[tuple[str, int]],
    token: uuid.UUID | None,
    refused: Callable[[int, str], HttpResponse],
) -> HttpResponse:
    """Open the items' Checkout Session and send the buyer to it (303), or answer `refused(status, why)`:
    400 for items that cannot be bought, 409 for a token already used or stock run out."""
    # A form token is a UUID, 36 characters of the alphabet a strong key is written in: never too weak.
    checkout_token = checkout_token_scoped(request=request, key=str(token)) if token else None
    try:
        start = _start(request, items=items, checkout_token=checkout_token)
    except PaymentProviderNotConfigured as exc:
        return render(request, "payments/not_configured.html", {"message": str(exc)}, status=503)
    except CartRefused as exc:
        return refused(409 if isinstance(exc, OutOfStock) else 400, str(exc))
    except CheckoutRefused as exc:
        return refused(409, str(exc))
    except CheckoutPriceMismatch:
        return _unavailable(request, PRICE_MISMATCH_MESSAGE)
    except PaymentProviderError:
        return _unavailable(request, UNAVAILABLE_MESSAGE)
    return HttpResponseSeeOther(start.session.url)


@csrf_exempt  # JSON only: a cross-site form cannot send application/json without a CORS preflight.
@never_cache
@json_methods("POST")
def api_create_session(request: HttpRequest) -> HttpResponse:
    """Open a Checkout Session for {"items": [{"item_id", "quantity"}, ...]} (or one {"item_id",
    "quantity"}); answer {"order_id", "session_id", "url"}."""
    if throttled := checkout_throttle(request=request):
        response = json_error(throttled.message, status=429, retry_after=throttled.retry_after)
        return _retry_later(response, throttled.retry_after)
    try:
        checkout = checkout_request_parse(
            content_type=request.content_type or "",
            body=request.body,
            idempotency_key=request.headers.get("Idempotency-Key"),
        )
    except RequestDataTooBig:
        return json_error("The request body is too large.", status=413)
    except CheckoutRequestInvalid as exc:
        return json_error(str(exc), status=400, field=exc.field)
    key = checkout.idempotency_key
    try:
        checkout_token = checkout_token_scoped(request=request, key=key) if key else None
    except IdempotencyKeyTooWeak as exc:
        return json_error(str(exc), status=400, field="Idempotency-Key")
    try:
        start = _start(request, items=checkout.items, checkout_token=checkout_token)
    except PaymentProviderNotConfigured as exc:
        return json_error(str(exc), status=503)
    except CartRefused as exc:
        return json_error(
            str(exc), status=409 if isinstance(exc, OutOfStock) else 400, field=_line_field(checkout, exc)
        )
    except CheckoutRefused as exc:
        extra = {"order_status": exc.order.status} if isinstance(exc, CheckoutAlreadySubmitted) else {}
        return json_error(str(exc), status=409, field="Idempotency-Key", order_id=str(exc.order.id), **extra)
    except CheckoutPriceMismatch:
        return _retry_later(json_error(PRICE_MISMATCH_MESSAGE, status=503))
    except PaymentProviderError:
        return _retry_later(json_error(UNAVAILABLE_MESSAGE, status=503))
    return JsonResponse(
        {"order_id": str(start.order.id), "session_id": start.session.id, "url": start.session.url},
        status=201 if start.created else 200,
    )


def _line_field(checkout: CheckoutRequest, refused: CartRefused) -> str:
    """Return the request's field the refusal is about: the line of the item it names."""
    field = "quantity" if isinstance(refused, InvalidQuantity) else "item_id"
    if len(checkout.items) == 1 or refused.sku is None:
        return "items" if len(checkout.items) > 1 else field
    index = next(i for i, (sku, _) in enumerate(checkout.items) if sku == refused.sku)
    return f"items[{index}].{field}"


def _start(
    request: HttpRequest, *, items: list[tuple[str, int]], checkout_token: str | None
) -> CheckoutStart:
    # Stripe fills in {CHECKOUT_SESSION_ID} in the success URL only; the cancel URL names the order.
    success_url = absolute_url(request, reverse("success")) + "?session_id={CHECKOUT_SESSION_ID}"
    cancel_url = absolute_url(request, reverse("cancel")) + "?order_id=" + ORDER_ID_PLACEHOLDER
    return checkout_start(
        items=items, checkout_token=checkout_token, success_url=success_url, cancel_url=cancel_url
    )


def _page(
    request: HttpRequest, *, status: int = 200, error: str = "", sku: str = "", quantity: str | None = None
) -> HttpResponse:
    """Render the product list, every form with a fresh token, and an error next to the form it concerns."""
    checkout_scope_start(request)
    items = []
    error_placed = False
    for product in products_for_sale():
        item = {"product": product, "token": uuid.uuid4(), "quantity": 1, "error": ""}
        if error and product.sku == sku:
            item.update(error=error, quantity=quantity or 1)
            error_placed = True
        items.append(item)
    try:
        gateway.client()
        stripe_problem = ""  # why payments cannot work at all
    except PaymentProviderNotConfigured as exc:
        stripe_problem = str(exc)
    context = {"items": items, "error": "" if error_placed else error, "stripe_problem": stripe_problem}
    return render(request, "payments/checkout.html", context, status=status)


def _unavailable(request: HttpRequest, message: str) -> HttpResponse:
    return _retry_later(render(request, "payments/unavailable.html", {"message": message}, status=503))


def _retry_later(response: HttpResponse, seconds: int = RETRY_AFTER_SECONDS) -> HttpResponse:
    response["Retry-After"] = str(seconds)
    return response
