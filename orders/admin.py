"""Admin for orders and their transition log; an order's status changes only through the state machine.

The catalog's admin lives in payments (payments/admin_catalog.py): saving a price there changes Stripe's.
Every list here is built for a million rows: see orders/admin_support.py and orders/search.py.
"""

from collections.abc import Callable

from django.contrib import admin
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from orders.admin_refunds import OrderDisputeInline, OrderRefundInline, refund_summary, refund_url
from orders.admin_support import ReadOnlyAdminMixin, ScaledListMixin
from orders.models import Order, OrderDispute, OrderStatus, OrderTransition
from orders.money import money_format
from orders.search import order_id_match, order_reference, orders_search, term_help


def status_badge(status: str, label: str | None = None) -> SafeString:
    """Return a status as a coloured badge that also says it in words (styles: orders/admin.css).

    An order's status by default; another record's (a Stripe event's) with its own label.
    """
    if label is None:
        label = OrderStatus(status).label if status in OrderStatus.values else status
    return format_html('<span class="status-badge status-{}">{}</span>', status, label)


def order_flags(order: Order) -> SafeString:
    """Return what an operator should notice about an order beside its status, as small labelled marks."""
    marks = []
    if order.needs_attention:
        marks.append(
            format_html(
                '<span class="flag flag-attention" title="{}">Needs attention</span>', order.attention_reason
            )
        )
    # A refunded order's badge says it already; a partial refund or a dispute lost shows only here.
    if order.amount_refunded and order.status != OrderStatus.REFUNDED:
        marks.append(
            format_html(
                '<span class="flag">{} refunded</span>', money_format(order.amount_refunded, order.currency)
            )
        )
    if getattr(order, "is_disputed", False):
        marks.append(SafeString('<span class="flag flag-dispute">Disputed</span>'))
    return format_html_join(" ", "{}", ((mark,) for mark in marks)) if marks else SafeString("")


class DelayedPaymentFilter(admin.BooleanFieldListFilter):
    """The `payment_pending` filter, titled by what it means to an operator."""

    def __init__(self, *args: object, **kwargs: object):
        super().__init__(*args, **kwargs)
        self.title = "delayed payment"


def _no_dashboard_link(*, kind: str, object_id: str) -> str | None:
    return None


ADMIN_CSS = {"all": ["orders/admin.css"]}


class TransitionBadges:
    """The from and to states of a transition as badges, for the order's inline and the transitions list."""

    @admin.display(description="From")
    def from_badge(self, transition: OrderTransition) -> SafeString:
        return status_badge(transition.from_status)

    @admin.display(description="To")
    def to_badge(self, transition: OrderTransition) -> SafeString:
        return status_badge(transition.to_status)


class OrderTransitionInline(TransitionBadges, admin.TabularInline):
    model = OrderTransition
    extra = 0
    can_delete = False
    fields = ("created_at", "from_badge", "to_badge", "source", "stripe_event_id", "note")
    readonly_fields = fields
    # The true order: two transitions in one second are told apart by the order they were written in.
    ordering = ("created_at", "id")

    def has_add_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(ScaledListMixin, admin.ModelAdmin):
    # The date before the e-mail: at 1280 px beside the navigation, a long address is what gets cut.
    list_display = ("reference", "status_badge", "created_at", "item", "total", "customer_email", "flags")
    empty_value_display = "—"
    list_display_links = ("reference",)
    list_filter = (
        "status",
        ("created_at", admin.DateFieldListFilter),
        ("payment_pending", DelayedPaymentFilter),
        "product",
    )
    # Declared so the search box shows; get_search_results routes a term by its shape (orders/search.py).
    search_fields = ("id",)
    search_help_text = term_help()
    list_select_related = ("product",)
    date_hierarchy = "created_at"
    inlines = [OrderTransitionInline, OrderRefundInline, OrderDisputeInline]
    # The actions that move an order ask Stripe first, so they live in payments (payments/admin_orders.py).
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "status_badge",
                    "delayed_payment",
                    "product",
                    "quantity",
                    "unit_price",
                    "total",
                    "refunds",
                    "customer_email",
                    "failure_reason",
                )
            },
        ),
        ("Stripe", {"fields": ("checkout_session", "payment_intent", "stripe_events")}),
        (
            "Times",
            {
                "fields": (
                    "created_at",
                    "confirmed_at",
                    "fulfilled_at",
                    "fulfillment_signal",
                    "failed_at",
                    "expired_at",
                    "refunded_at",
                    "updated_at",
                )
            },
        ),
    )
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]

    # Stripe's Dashboard URL of a "checkout_session" or "payment_intent", or None for no link. Knowing
    # Stripe is the payments app's job and orders may not import it, so payments sets this when it starts.
    stripe_dashboard_url: Callable[..., str | None] = staticmethod(_no_dashboard_link)

    class Media:
        css = ADMIN_CSS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        # Read-only: the page has no Save button, and a status moves only through the actions (in payments).
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Order]:
        # One EXISTS per listed row through the disputes' order index, for the list's "Disputed" flag.
        disputed = Exists(OrderDispute.objects.filter(order_id=OuterRef("pk")))
        return super().get_queryset(request).annotate(is_disputed=disputed)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Order], search_term: str
    ) -> tuple[QuerySet[Order], bool]:
        return orders_search(queryset=queryset, term=search_term), False

    def render_change_form(
        self, request: HttpRequest, context: dict, *args: object, obj: Order | None = None, **kwargs: object
    ) -> HttpResponse:
        context["refund_url"] = refund_url(order=obj, user=request.user) if obj else None
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)

    @admin.display(description="Flags")
    def flags(self, order: Order) -> SafeString:
        return order_flags(order)

    @admin.display(description="Needs attention")
    def attention(self, order: Order) -> SafeString | str:
        if not order.needs_attention:
            return "No: nothing for a person to settle"
        return format_html(
            '<span class="flag flag-attention">Needs attention</span> {}', order.attention_reason
        )

    @admin.display(description="Order", ordering="id")
    def reference(self, order: Order) -> SafeString:
        return format_html('<code title="{}">{}</code>', order.pk, order_reference(order.pk))

    @admin.display(description="Status", ordering="status")
    def status_badge(self, order: Order) -> SafeString:
        return status_badge(order.status)

    @admin.display(description="Item", ordering="product")
    def item(self, order: Order) -> str:
        return f"{order.product.name} x {order.quantity}"

    @admin.display(description="Delayed payment")
    def delayed_payment(self, order: Order) -> str:
        return "Delayed payment: awaiting the bank" if order.payment_pending else "—"

    @admin.display(description="Unit price", ordering="unit_amount")
    def unit_price(self, order: Order) -> str:
        return money_format(order.unit_amount, order.currency)

    @admin.display(description="Total", ordering="amount_total")
    def total(self, order: Order) -> str:
        return money_format(order.amount_total, order.currency)

    @admin.display(description="Refunded")
    def refunds(self, order: Order) -> str:
        return refund_summary(order)

    @admin.display(description="Fulfilment signal sent at")
    def fulfillment_signal(self, order: Order) -> str:
        # A display method's value is printed as it is; a model field's gets the project's date format.
        signalled = order.fulfillment_signalled_at
        return formats.date_format(timezone.localtime(signalled), "DATETIME_FORMAT") if signalled else "—"

    @admin.display(description="Checkout Session")
    def checkout_session(self, order: Order) -> str:
        return self._stripe_link("checkout_session", order.stripe_checkout_session_id)

    @admin.display(description="PaymentIntent")
    def payment_intent(self, order: Order) -> str:
        return self._stripe_link("payment_intent", order.stripe_payment_intent_id)

    def _stripe_link(self, kind: str, object_id: str | None) -> str:
        if not object_id:
            return "—"
        url = self.stripe_dashboard_url(kind=kind, object_id=object_id)
        if not url:
            return object_id
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, object_id)

    @admin.display(description="Stripe events")
    def stripe_events(self, order: Order) -> str:
        # The events admin belongs to the payments app, which this app must not import: link by name.
        try:
            url = reverse("admin:payments_stripeevent_changelist")
        except NoReverseMatch:
            return "-"
        return format_html('<a href="{}?order__id__exact={}">Events of this order</a>', url, order.pk)


@admin.register(OrderTransition)
class OrderTransitionAdmin(TransitionBadges, ReadOnlyAdminMixin, ScaledListMixin, admin.ModelAdmin):
    list_display = ("created_at", "order_link", "from_badge", "to_badge", "source", "stripe_event_id")
    list_display_links = None
    list_filter = ("source", "to_status")
    search_fields = ("order__id",)
    search_help_text = "Search by the order id or its first 8 characters."
    ordering = ("-created_at", "-id")

    class Media:
        css = ADMIN_CSS

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[OrderTransition], search_term: str
    ) -> tuple[QuerySet[OrderTransition], bool]:
        if not search_term.strip():
            return queryset, False
        condition = order_id_match(search_term, field="order_id")
        return (queryset.filter(condition) if condition is not None else queryset.none()), False

    @admin.display(description="Order", ordering="order")
    def order_link(self, transition: OrderTransition) -> SafeString:
        url = reverse("admin:orders_order_change", args=[transition.order_id])
        return format_html(
            '<a href="{}" title="{}"><code>{}</code></a>',
            url,
            transition.order_id,
            order_reference(transition.order_id),
        )
