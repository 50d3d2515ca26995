"""The order page's refunds and disputes: read-only inlines, and the link to the refund page."""

from django.contrib import admin
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from orders.models import Order, OrderDispute, OrderRefund, OrderStatus
from orders.money import money_format
from orders.refunds import order_refundable_remaining


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False


class OrderRefundInline(_ReadOnlyInline):
    """Every refund of the order, failed and pending ones included."""

    model = OrderRefund
    fields = (
        "created_at",
        "amount_display",
        "status",
        "reason",
        "requested_by",
        "requested_by_user",
        "stripe_refund_id",
        "failure_reason",
        "updated_at",
    )
    readonly_fields = fields
    ordering = ("created_at",)

    @admin.display(description="Amount")
    def amount_display(self, refund: OrderRefund) -> str:
        return money_format(refund.amount, refund.currency)


class OrderDisputeInline(_ReadOnlyInline):
    """Every dispute of the order's payment, with Stripe's status and when evidence is due."""

    model = OrderDispute
    fields = ("created_at", "stripe_dispute_id", "amount_display", "reason", "status", "evidence_due_by")
    readonly_fields = fields
    ordering = ("created_at",)

    @admin.display(description="Amount")
    def amount_display(self, dispute: OrderDispute) -> str:
        return money_format(dispute.amount, dispute.currency)


def refund_summary(order: Order) -> str:
    """Return what was refunded, what is left, and the link to the refund page when there is any."""
    refunded = money_format(order.amount_refunded, order.currency)
    if order.status != OrderStatus.FULFILLED:
        return f"{refunded} refunded"
    remaining = order_refundable_remaining(order_id=order.pk)
    # The refund page calls Stripe and belongs to the payments app, which this app must not import.
    try:
        url = reverse("order-refund", args=[order.pk])
    except NoReverseMatch:
        return f"{refunded} refunded"
    if remaining <= 0:
        return f"{refunded} refunded; refunds under way cover the rest"
    return format_html(
        '{} refunded; {} left. <a class="button" href="{}">Refund…</a>',
        refunded,
        money_format(remaining, order.currency),
        url,
    )
