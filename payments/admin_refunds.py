"""The admin's refund page for one order: choose the amount and reason, confirm, see what Stripe said.

It lives in the payments app because it asks Stripe; the order page links to it by URL name. Only users
with `orders.refund_order` may open it or post to it. The confirmation carries a fresh token that becomes
the refund request's id, so a double-clicked "Confirm" asks Stripe once.
"""

import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from orders.admin_refunds import REFUND_PERMISSION
from orders.exceptions import OrderNotFound, RefundRefused
from orders.models import Order, RefundReason, RefundRequester
from orders.money import AmountInvalid, money_format, money_parse
from orders.refunds import (
    order_refund_amount_check,
    order_refundable_remaining,
)
from payments.exceptions import PaymentProviderError
from payments.refunds import order_refund

PERMISSION = REFUND_PERMISSION


class RefundForm(forms.Form):
    amount = forms.CharField(
        required=False,
        max_length=20,
        help_text="As a decimal, such as 12.50. Leave empty to refund everything left.",
    )
    reason = forms.ChoiceField(choices=[("", "None given"), *RefundReason.choices], required=False)
    token = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: object, order: Order, **kwargs: object):
        super().__init__(*args, **kwargs)
        self.order = order

    def clean_amount(self) -> int | None:
        text = self.cleaned_data["amount"].strip()
        if not text:
            return None
        try:
            return money_parse(text, self.order.currency)
        except AmountInvalid as exc:
            raise forms.ValidationError(str(exc)) from None


def order_refund_view(request: HttpRequest, order_id: uuid.UUID) -> HttpResponse:
    """Show the refund form, then its confirmation, then refund and go back to the order page."""
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    try:
        order = Order.objects.select_related("product").get(pk=order_id)
    except Order.DoesNotExist:
        raise Http404(f"No order {order_id}.") from None
    order_url = reverse("admin:orders_order_change", args=[order.pk])
    remaining = order_refundable_remaining(order_id=order.pk)
    form = RefundForm(request.POST or None, order=order)
    step = "choose"
    to_refund = ""
    if request.method == "POST" and form.is_valid():
        amount, reason, token = (form.cleaned_data[name] for name in ("amount", "reason", "token"))
        if "confirm" in request.POST and token:
            _refund(request, order, amount, reason, token)
            return HttpResponseRedirect(order_url)
        try:
            checked = order_refund_amount_check(
                order_id=order.pk, amount=amount, requested_by=RefundRequester.ADMIN
            )
        except RefundRefused as exc:
            form.add_error(None, str(exc))
        else:
            step = "confirm"
            to_refund = money_format(checked, order.currency) + (
                " (everything left)" if amount is None else ""
            )
            form = RefundForm(
                initial={"amount": request.POST.get("amount", ""), "reason": reason, "token": uuid.uuid4()},
                order=order,
            )
    context = {
        **admin.site.each_context(request),
        "title": f"Refund order {order.pk}",
        "opts": Order._meta,
        "order": order,
        "order_url": order_url,
        "form": form,
        "step": step,
        "total": money_format(order.amount_total, order.currency),
        "refunded": money_format(order.amount_refunded, order.currency),
        "remaining": money_format(remaining, order.currency),
        "to_refund": to_refund,
        "reason_label": dict(RefundReason.choices).get(form.initial.get("reason") or "", "None given"),
    }
    return TemplateResponse(request, "admin/orders/order/refund.html", context)


def _refund(request: HttpRequest, order: Order, amount: int | None, reason: str, token: uuid.UUID) -> None:
    try:
        outcome = order_refund(
            order_id=order.pk,
            amount=amount,
            reason=reason,
            requested_by=RefundRequester.ADMIN,
            requested_by_user=request.user.get_username(),
            request_id=token,
        )
    except (RefundRefused, OrderNotFound, PaymentProviderError) as exc:
        messages.error(request, f"Nothing was refunded: {exc}")
        return
    messages.add_message(request, messages.SUCCESS if outcome.ok else messages.ERROR, outcome.message)
