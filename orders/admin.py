"""Admin for the catalog and for orders; an order's status changes only through the state machine."""

from django.contrib import admin
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from orders.admin_refunds import OrderDisputeInline, OrderRefundInline, refund_summary
from orders.models import Order, OrderTransition, Product
from orders.money import money_format


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("sku", "name", "price", "active", "stripe_price_id", "updated_at")
    list_filter = ("active", "currency")
    search_fields = ("sku", "name", "stripe_price_id", "stripe_product_id")
    prepopulated_fields = {"sku": ("name",)}
    readonly_fields = ("created_at", "updated_at")

    @admin.display(description="Price", ordering="unit_amount")
    def price(self, product: Product) -> str:
        return money_format(product.unit_amount, product.currency)


class OrderTransitionInline(admin.TabularInline):
    model = OrderTransition
    extra = 0
    can_delete = False
    fields = ("created_at", "from_status", "to_status", "source", "stripe_event_id", "note")
    readonly_fields = fields
    ordering = ("created_at", "id")

    def has_add_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "product", "quantity", "total", "customer_email", "created_at")
    list_filter = ("status", ("created_at", admin.DateFieldListFilter), "payment_pending", "product")
    search_fields = ("=id", "stripe_checkout_session_id", "stripe_payment_intent_id", "customer_email")
    list_select_related = ("product",)
    date_hierarchy = "created_at"
    inlines = [OrderTransitionInline, OrderRefundInline, OrderDisputeInline]
    # The actions that move an order ask Stripe first, so they live in payments (payments/admin_orders.py).
    fields = (
        "id",
        "status",
        "payment_pending",
        "product",
        "quantity",
        "unit_amount",
        "amount_total",
        "currency",
        "refunds",
        "customer_email",
        "stripe_checkout_session_id",
        "stripe_payment_intent_id",
        "failure_reason",
        "stripe_events",
        "created_at",
        "confirmed_at",
        "fulfilled_at",
        "failed_at",
        "expired_at",
        "refunded_at",
        "updated_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False

    @admin.display(description="Total", ordering="amount_total")
    def total(self, order: Order) -> str:
        return money_format(order.amount_total, order.currency)

    @admin.display(description="Refunded")
    def refunds(self, order: Order) -> str:
        return refund_summary(order)

    @admin.display(description="Stripe events")
    def stripe_events(self, order: Order) -> str:
        # The events admin belongs to the payments app, which this app must not import: link by name.
        try:
            url = reverse("admin:payments_stripeevent_changelist")
        except NoReverseMatch:
            return "-"
        return format_html('<a href="{}?order__id__exact={}">Events of this order</a>', url, order.pk)
