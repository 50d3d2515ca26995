"""Where Stripe sends the buyer back: the verified success page, its status endpoint, and cancel."""

import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from orders.exceptions import OrderNotFound
from orders.models import Order, OrderStatus
from orders.selectors import order_get, order_get_by_session
from payments.checkout import CheckoutReturn, ReturnOutcome, checkout_return_verify
from payments.http import json_error, json_methods, wants_json
from payments.views.cart import cart_clear

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
STATUS_HEADINGS = {
    OrderStatus.FULFILLED: "Thank you, your order is complete",
    OrderStatus.FAILED: "Payment failed",
    OrderStatus.EXPIRED: "Checkout expired",
    OrderStatus.REFUNDED: "Your order was refunded",
}
OUTCOME_HEADINGS = {
    ReturnOutcome.PAID: "Payment received",
    ReturnOutcome.PROCESSING: "Payment processing",
    ReturnOutcome.OPEN: "Not paid yet",
    ReturnOutcome.EXPIRED: STATUS_HEADINGS[OrderStatus.EXPIRED],
    ReturnOutcome.MISMATCH: "We could not verify this payment",
    ReturnOutcome.UNVERIFIED: "Your order",
    ReturnOutcome.UNKNOWN: "This checkout is unknown to the payment provider",
}
LATE_PAYMENT_HEADING = "Paid after the checkout had closed"
OUTCOME_MESSAGES = {
    ReturnOutcome.OPEN: "You have not completed the payment yet, and nothing was charged.",
    ReturnOutcome.EXPIRED: STATUS_MESSAGES[OrderStatus.EXPIRED],
    ReturnOutcome.MISMATCH: (
        "The payment provider's record of this checkout does not match our order, so we have not confirmed "
        "it. Nothing more will happen to it automatically; please contact us with the order id below."
    ),
    ReturnOutcome.UNKNOWN: (
        "The payment provider has no record of this checkout (it was opened with other credentials, or "
        "the provider's test system was reset), so it can no longer be paid. Please start a new order; "
        "if you did pay, contact us with the order id below."
    ),
}
UNVERIFIED_NOTE = (
    "We could not reach the payment provider to check this payment just now, "
    "so this is what we knew before. This page checks again by itself."
)


@never_cache
@require_GET
def success(request: HttpRequest) -> HttpResponse:
    """Verify the session the buyer returned from with Stripe and show the order's state."""
    as_json = wants_json(request)

    def refused(status: int, title: str, message: str) -> HttpResponse:
        if as_json:
            return json_error(message, status=status, field="session_id")
        return render(request, "payments/error.html", {"title": title, "message": message}, status=status)

    session_id = request.GET.get("session_id", "").strip()
    if not session_id:
        return refused(
            400,
            "Missing session id",
            "Missing session_id: this page is where the payment provider sends you back after paying.",
        )
    try:
        result = checkout_return_verify(session_id=session_id)
    except OrderNotFound:
        return refused(404, "Order not found", f"No order of ours has the checkout session {session_id!r}.")
    if result.outcome in (ReturnOutcome.PAID, ReturnOutcome.PROCESSING):
        cart_clear(request)
    # 409: our order and Stripe's session contradict each other; nothing the buyer sends can fix that.
    status = 409 if result.outcome == ReturnOutcome.MISMATCH else 200
    if as_json:
        return JsonResponse(_result_payload(result), status=status)
    return render(request, "payments/success.html", _result_context(request, result), status=status)


@never_cache
@json_methods("GET")
def order_status(request: HttpRequest, order_id: uuid.UUID) -> JsonResponse:
    """Return the order's current state as JSON, for the success page to poll."""
    try:
        order = order_get(order_id=order_id)
    except OrderNotFound:
        return json_error(f"No order {order_id}.", status=404, field="order_id")
    return JsonResponse(order_payload(order))


@never_cache
@require_GET
def cancel(request: HttpRequest) -> HttpResponse:
    """Tell the buyer where the order stands (never that nothing was charged when it was); change nothing."""
    order = _order_from_query(request)
    context = {"order": order, "late_payment": late_payment_message(order) if order else ""}
    if order is not None:
        context.update(paid=order.status in OrderStatus.PAID, message=order_status_message(order))
    return render(request, "payments/cancel.html", context)


def _order_from_query(request: HttpRequest) -> Order | None:
    """Return the order named by ?order_id= or ?session_id=, or None; the page works without one."""
    try:
        if order_id := request.GET.get("order_id"):
            return order_get(order_id=uuid.UUID(order_id))
        if session_id := request.GET.get("session_id"):
            return order_get_by_session(session_id=session_id)
    except (OrderNotFound, ValueError):
        pass
    return None


def order_status_message(order: Order) -> str:
    """Return one sentence telling the buyer where the order stands."""
    if late := late_payment_message(order):
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
        **{
            f"amount_{part}": getattr(order, f"amount_{part}")
            for part in ("subtotal", "discount", "tax", "shipping", "total", "refunded")
        },
        "currency": order.currency,
        "created_at": order.created_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
        "status_url": reverse("order-status", kwargs={"order_id": order.id}),
    }


def _result_payload(result: CheckoutReturn) -> dict:
    session = result.session
    return {
        "order": order_payload(result.order),
        "outcome": result.outcome.value,
        "verified": result.outcome != ReturnOutcome.UNVERIFIED,
        "note": {
            ReturnOutcome.MISMATCH: OUTCOME_MESSAGES[ReturnOutcome.MISMATCH],
            ReturnOutcome.UNKNOWN: OUTCOME_MESSAGES[ReturnOutcome.UNKNOWN],
            ReturnOutcome.UNVERIFIED: UNVERIFIED_NOTE,
        }.get(result.outcome, ""),
        "session": (
            {"id": session.id, "status": session.status, "payment_status": session.payment_status}
            if session
            else None
        ),
    }


def _result_context(request: HttpRequest, result: CheckoutReturn) -> dict:
    order, outcome = result.order, result.outcome
    stuck = outcome in (ReturnOutcome.MISMATCH, ReturnOutcome.UNKNOWN)
    if (late := late_payment_message(order)) and outcome != ReturnOutcome.MISMATCH:
        heading, message = LATE_PAYMENT_HEADING, late
    elif order.is_final and not stuck:
        heading, message = STATUS_HEADINGS[OrderStatus(order.status)], order_status_message(order)
    else:
        heading = OUTCOME_HEADINGS[outcome]
        message = OUTCOME_MESSAGES.get(outcome) or order_status_message(order)
    # An open session waits for the buyer, not for us, and an unknown one can never move; the rest may.
    poll = not order.is_final and not stuck and outcome != ReturnOutcome.OPEN
    return {
        "order": order,
        "outcome": outcome.value,
        "heading": heading,
        "message": message,
        "note": UNVERIFIED_NOTE if outcome == ReturnOutcome.UNVERIFIED else "",
        "pay_url": result.session.url if outcome == ReturnOutcome.OPEN and result.session else "",
        "poll": poll,
        "poll_config": {
            "poll": poll,
            "url": reverse("order-status", kwargs={"order_id": order.id}),
            "payment_pending": order.payment_pending,
            "headings": STATUS_HEADINGS,
        },
    }
