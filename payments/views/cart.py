"""The buyer's cart: items and quantities kept in the Django session until checkout, no JavaScript needed.

Every change is checked by the rule an order is made by (orders.services.order_lines_merge), so the cart
never holds what checkout would refuse, and checkout still checks again: the catalog may change meanwhile.
"""

import uuid

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from orders.exceptions import CartRefused
from orders.models import Product
from orders.selectors import products_get_for_sale
from orders.services import order_lines_merge
from payments.forms import CheckoutForm, LineForm
from payments.http import HttpResponseSeeOther, checkout_throttle
from payments.idempotency import checkout_scope_start
from payments.views.checkout import checkout_redirect

CART_KEY = "cart"


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def cart(request: HttpRequest) -> HttpResponse:
    """Show the cart; a POST adds an item, sets or removes a line, or checks the cart out."""
    if request.method != "POST":
        return _page(request)
    action = request.POST.get("action", "")
    if action == "checkout":
        return _checkout(request)
    items = dict(request.session.get(CART_KEY, {}))
    form = LineForm({"item_id": request.POST.get("item_id"), "quantity": request.POST.get("quantity", "1")})
    sku = request.POST.get("item_id", "")
    if action == "remove":
        items.pop(sku, None)
    elif action not in ("add", "set"):
        return _page(request, status=400, error="Unknown cart action: add, set, remove or checkout.")
    elif not form.is_valid():
        return _page(request, status=400, error=form.first_error()[1])
    else:
        items[sku] = form.cleaned_data["quantity"] + (items.get(sku, 0) if action == "add" else 0)
    try:
        _lines(items)
    except CartRefused as exc:
        return _page(request, status=400, error=str(exc))
    request.session[CART_KEY] = items
    return HttpResponseSeeOther(reverse("cart"))


def cart_clear(request: HttpRequest) -> None:
    """Empty the cart (its order was paid)."""
    request.session.pop(CART_KEY, None)


def _checkout(request: HttpRequest) -> HttpResponse:
    if throttled := checkout_throttle(request=request):
        response = _page(request, status=429, error=throttled.message)
        response["Retry-After"] = str(throttled.retry_after)
        return response
    form = CheckoutForm({"checkout_token": request.POST.get("checkout_token")})
    form.is_valid()
    if "checkout_token" in form.errors or not request.session.get(CART_KEY):
        return _page(request, status=400, error=form.errors.get("checkout_token", ["Your cart is empty."])[0])
    return checkout_redirect(
        request,
        items=list(request.session[CART_KEY].items()),
        token=form.cleaned_data["checkout_token"],
        refused=lambda status, error: _page(request, status=status, error=error),
    )


def _lines(items: dict[str, int]) -> list[tuple[Product, int]]:
    """Return the cart's products and quantities, or raise CartRefused as checkout would."""
    if not items:
        return []
    products = products_get_for_sale(skus=items)
    return order_lines_merge((products[sku], quantity) for sku, quantity in items.items())


def _page(request: HttpRequest, *, status: int = 200, error: str = "") -> HttpResponse:
    checkout_scope_start(request)
    items = request.session.get(CART_KEY, {})
    try:
        lines = _lines(items)
    except CartRefused as exc:
        # The catalog changed since the item was added: show what is left, and why.
        if exc.sku in items:
            items.pop(exc.sku)
        else:
            items.clear()
        request.session[CART_KEY] = items
        return _page(request, status=status, error=error or str(exc))
    rows = [
        {"product": product, "quantity": quantity, "amount": product.unit_amount * quantity}
        for product, quantity in lines
    ]
    context = {
        "lines": rows,
        "subtotal": sum(row["amount"] for row in rows),
        "currency": lines[0][0].currency if lines else "",
        "token": uuid.uuid4(),
        "error": error,
    }
    return render(request, "payments/cart.html", context, status=status)
