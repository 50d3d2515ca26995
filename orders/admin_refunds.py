"""Refunds and disputes in the admin: the order page's read-only inlines, who may refund, and their own
read-only lists."""

from django.contrib import admin
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from orders.admin_support import ReadOnlyAdminMixin, ScaledListMixin
from orders.models import Order, OrderDispute, OrderRefund, OrderStatus
from orders.money import money_format
from orders.refunds import order_refundable_remaining
from orders.search import order_reference


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


# Who may refund: the refund page (payments/admin_refunds.py) refuses everyone else, and the order page
# offers its button to no one else.
REFUND_PERMISSION = "orders.refund_order"


def refund_summary(order: Order) -> str:
    """Return what was refunded and, for a fulfilled order, what is left to refund."""
    refunded = money_format(order.amount_refunded, order.currency)
    if order.status != OrderStatus.FULFILLED:
        return f"{refunded} refunded"
    remaining = order_refundable_remaining(order_id=order.pk)
    if remaining <= 0:
        return f"{refunded} refunded; refunds under way cover the rest"
    return f"{refunded} refunded; {money_format(remaining, order.currency)} left."


def refund_url(*, order: Order, user: AbstractBaseUser | AnonymousUser) -> str | None:
    """Return the refund page's URL when this user may refund this order and something is left to refund."""
    if order.status != OrderStatus.FULFILLED or not user.has_perm(REFUND_PERMISSION):
        return None
    if order_refundable_remaining(order_id=order.pk) <= 0:
        return None
    # The refund page calls Stripe and belongs to the payments app, which this app must not import.
    try:
        return reverse("order-refund", args=[order.pk])
    except NoReverseMatch:
        return None


def _order_link(record: OrderRefund | OrderDispute) -> str:
    url = reverse("admin:orders_order_change", args=[record.order_id])
    return format_html(
        '<a href="{}" title="{}"><code>{}</code></a>', url, record.order_id, order_reference(record.order_id)
    )


@admin.register(OrderRefund)
class OrderRefundAdmin(ReadOnlyAdminMixin, ScaledListMixin, admin.ModelAdmin):
    """Every refund, filtered by status: the Needs attention page links to those not settled."""

    list_display = ("created_at", "order", "amount_display", "status", "requested_by", "failure_reason")
    list_display_links = None
    list_filter = ("status", "requested_by")
    ordering = ("created_at", "id")

    @admin.display(description="Order", ordering="order")
    def order(self, refund: OrderRefund) -> str:
        return _order_link(refund)

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, refund: OrderRefund) -> str:
        return money_format(refund.amount, refund.currency)


@admin.register(OrderDispute)
class OrderDisputeAdmin(ReadOnlyAdminMixin, ScaledListMixin, admin.ModelAdmin):
    """Every dispute, the evidence due soonest first: the Needs attention page links to the open ones."""

    list_display = ("evidence_due_by", "order", "amount_display", "status", "reason", "stripe_dispute_id")
    list_display_links = None
    list_filter = ("status",)
    ordering = ("evidence_due_by", "id")

    @admin.display(description="Order", ordering="order")
    def order(self, dispute: OrderDispute) -> str:
        return _order_link(dispute)

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, dispute: OrderDispute) -> str:
        return money_format(dispute.amount, dispute.currency)
