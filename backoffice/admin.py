"""The whole Django admin. Orders and their records are never edited: an order moves only through the order
list's actions, each behind a permission of its own, which ask Stripe first (payments.order_actions).
"""

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from functools import partial

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import model_format_dict
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_permission_codename
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, F, Model, OuterRef, Q, QuerySet, Sum
from django.db.models.enums import TextChoices
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from backoffice.lists import DistinctValuesFilter, EstimatedCountPaginator, search_by_shape
from orders.exceptions import OrderNotFound, RefundRefused
from orders.models import (
    SHORT_REFERENCE_LENGTH,
    Order,
    OrderDispute,
    OrderLine,
    OrderRefund,
    OrderStatus,
    OrderTransition,
    Product,
    RefundReason,
    RefundRequester,
    TransitionSource,
    order_reference,
)
from orders.money import AmountInvalid, money_format, money_parse, noun
from orders.refunds import order_refund_amount_check, order_refundable_remaining
from payments.catalog import product_price_archive, product_price_create
from payments.emails import customer_emails_resend
from payments.exceptions import PaymentProviderError
from payments.gateway import dashboard_url
from payments.inbox import NEEDS_A_PERSON, stripe_events_replay
from payments.models import CustomerEmail, EmailStatus, EventStatus, StripeEvent
from payments.order_actions import OrderActionResult, order_close, order_fulfill_verified, order_settle
from payments.refunds import order_refund

REFUND_PERMISSION = "orders.refund_order"


def permission_words(permission: str) -> str:
    """Return a permission as a person reads it: “Can refund orders through Stripe” (orders.refund_order)."""
    app_label, codename = permission.split(".", 1)
    names = Permission.objects.filter(content_type__app_label=app_label, codename=codename)
    name = names.values_list("name", flat=True).first()
    return f"“{name}” ({permission})" if name else permission


def permission_required(request: HttpRequest, permission: str) -> None:
    """Refuse the request unless its user holds the permission; the admin's 403 page names it."""
    if not request.user.has_perm(permission):
        raise PermissionDenied(f"This page needs the permission {permission_words(permission)}.")


def permission_check(permission: str) -> Callable[[object, HttpRequest], bool]:
    """Return the `has_<name>_permission` method of an action's `permissions=[name]`: `permission` held."""

    def has_permission(self: object, request: HttpRequest) -> bool:
        return request.user.has_perm(permission)

    has_permission.permission = permission
    return has_permission


def badge(status: str, choices: type[TextChoices] = OrderStatus) -> SafeString:
    """Return a status as a coloured badge that says it in words too (styles: backoffice/admin.css)."""
    label = choices(status).label if status in choices.values else status
    return format_html('<span class="status-badge status-{}">{}</span>', status, label)


def order_link(order_id: uuid.UUID | None) -> SafeString | str:
    """Return a link to the order's page, shown as its short reference with the whole id on hover."""
    if order_id is None:
        return "—"
    url = reverse("admin:orders_order_change", args=[order_id])
    return format_html(
        '<a href="{}" title="{}"><code>{}</code></a>', url, order_id, order_reference(order_id)
    )


def money_column(field: str, description: str) -> Callable[[object, Model], str]:
    """Return a column showing the row's `field`, minor units of the row's currency, as money: 49.99 USD."""

    @admin.display(description=description, ordering=field)
    def column(self: object, row: Model) -> str:
        return money_format(getattr(row, field), row.currency)

    return column


def badge_column(field: str, description: str, choices: type[TextChoices] = OrderStatus) -> Callable:
    @admin.display(description=description, ordering=field)
    def column(self: object, row: Model) -> SafeString:
        return badge(getattr(row, field), choices)

    return column


class ReadOnly:
    """A record, in a list or an inline: every field read-only, a POST refused (actions keep their own)."""

    amount_display = money_column("amount", "Amount")
    from_badge = badge_column("from_status", "From")
    to_badge = badge_column("to_status", "To")

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    has_change_permission = has_delete_permission = has_add_permission


class BackofficeAdmin(admin.ModelAdmin):
    """Every ModelAdmin here: the styles, and an action the user may not run refused in words."""

    class Media:
        css = {"all": ["backoffice/admin.css"]}

    def action_permission(self, name: str) -> str:
        """Return the permission of an action's `permissions=[name]`: its permission_check's, or Django's."""
        default = f"{self.opts.app_label}.{get_permission_codename(name, self.opts)}"
        return getattr(getattr(self, f"has_{name}_permission"), "permission", default)

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        # Django's date hierarchy builds datetimes from ?<field>__year= (and __month, __day) and lets a year
        # past 9999 or one too big for an int through as a 500: refuse it as Django refuses other lookups.
        try:
            return super().get_changelist_instance(request)
        except (OverflowError, ValueError) as exc:
            if not any(key.startswith(f"{self.date_hierarchy}__") for key in request.GET):
                raise
            raise IncorrectLookupParameters(exc) from exc

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        # Django leaves out of the form an action the user may not run, so a forged POST of one gets
        # "No action selected." or nothing at all: say which permission it needs instead.
        for name in request.POST.getlist("action") if request.method == "POST" else ():
            action = self.get_action(name) if name else None
            needs = getattr(action[0], "allowed_permissions", ()) if action else ()
            if needs and name not in self.get_actions(request):
                what = str(action[2]) % model_format_dict(self.opts)
                permissions = " or ".join(permission_words(self.action_permission(need)) for need in needs)
                self.message_user(
                    request, f"“{what}” was not done: it needs the permission {permissions}.", messages.ERROR
                )
                return HttpResponseRedirect(request.get_full_path())
        return super().changelist_view(request, extra_context)


class RecordAdmin(ReadOnly, BackofficeAdmin):
    """A big list of records, each naming its order; a search term is routed by its shape (search_routes)."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    # "Show all" lists every row on one page: offered up to this many (an estimate is always far above).
    list_max_show_all = 200
    change_list_template = "admin/scaled_change_list.html"
    list_display_links = None
    empty_value_display = "—"
    search_fields = ("pk",)  # shows the search box; search_routes does the search
    search_help_text = "Search by the order id or its first 8 characters."
    search_routes: dict[str, str] = {}
    search_order_field = "order_id"

    def get_search_results(self, request: HttpRequest, rows: QuerySet, term: str) -> tuple[QuerySet, bool]:
        return search_by_shape(rows, term, self.search_routes, order=self.search_order_field), False

    @admin.display(description="Order", ordering="order")
    def order_column(self, row: Model) -> SafeString | str:
        return order_link(row.order_id)


class RecordInline(ReadOnly, admin.TabularInline):
    extra = 0
    # Two rows written in one second are shown in the order they were written.
    ordering = ("created_at", "id")

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> tuple[str, ...]:
        return self.fields


class TransitionInline(RecordInline):
    model = OrderTransition
    fields = ("created_at", "from_badge", "to_badge", "source", "stripe_event_id", "note")


class RefundInline(RecordInline):
    model = OrderRefund
    fields = (
        *("created_at", "amount_display", "status", "reason", "requested_by", "requested_by_user"),
        *("stripe_refund_id", "failure_reason", "updated_at"),
    )


class LineInline(RecordInline):
    model = OrderLine
    ordering = ("id",)
    fields = ("product", "quantity", "unit_price", "amount_display")
    unit_price = money_column("unit_amount", "Unit price")


class DisputeInline(RecordInline):
    model = OrderDispute
    fields = ("created_at", "stripe_dispute_id", "amount_display", "reason", "status", "evidence_due_by")


class EmailInline(RecordInline):
    model = CustomerEmail
    fields = ("created_at", "kind", "to_address", "status", "attempts", "sent_at", "last_error")


def session_expired() -> Q:
    """Return the condition of an open order whose Checkout Session has expired at Stripe."""
    cutoff = timezone.now() - timedelta(seconds=settings.CHECKOUT_SESSION_TTL_SECONDS)
    return Q(status__in=OrderStatus.OPEN, created_at__lt=cutoff)


class SessionExpiredFilter(admin.SimpleListFilter):
    title = "checkout session"
    parameter_name = "session"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("expired_open", "Expired, order still open")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Order]) -> QuerySet[Order]:
        return queryset.filter(session_expired()) if self.value() == "expired_open" else queryset


class ProductFilter(admin.SimpleListFilter):
    """Orders holding a line of the product: one EXISTS per order through the lines' index. Django's own
    filter across `lines` would make the list, its count and its date drill-down SELECT DISTINCT over every
    order (0.6 s a page at 200,000 orders)."""

    title = "product"
    parameter_name = "product"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(str(product.pk), str(product)) for product in Product.objects.order_by("name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Order]) -> QuerySet[Order]:
        if not (value := self.value()):
            return queryset
        if value not in dict(self.lookup_choices):
            raise IncorrectLookupParameters(f"{value!r} is not a product id.")
        return queryset.filter(Exists(OrderLine.objects.filter(order=OuterRef("pk"), product_id=value)))


class DelayedPaymentFilter(admin.BooleanFieldListFilter):
    def __init__(self, *args: object, **kwargs: object):
        super().__init__(*args, **kwargs)
        self.title = "delayed payment"


class RefundForm(forms.Form):
    amount = forms.CharField(
        required=False,
        max_length=20,
        help_text="In the order's currency, such as 12.50. Leave empty to refund everything left.",
    )
    reason = forms.ChoiceField(choices=[("", "None given"), *RefundReason.choices], required=False)
    token = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: object, currency: str, **kwargs: object):
        super().__init__(*args, **kwargs)
        self.currency = currency

    def clean_amount(self) -> int | None:
        text = self.cleaned_data["amount"].strip()
        try:
            return money_parse(text, self.currency) if text else None
        except AmountInvalid as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(Order)
class OrderAdmin(RecordAdmin):
    # The date before the e-mail: at 1280 px, a long address is what gets cut.
    list_display = ("reference", "status_badge", "created_at", "item", "total", "customer_email", "flags")
    list_filter = (
        "needs_attention",
        SessionExpiredFilter,
        "status",
        ("created_at", admin.DateFieldListFilter),
        ("payment_pending", DelayedPaymentFilter),
        ProductFilter,
    )
    search_help_text = (
        "Search by Checkout Session (cs_...), PaymentIntent (pi_...), the buyer's whole e-mail address, "
        f"the order id or its first {SHORT_REFERENCE_LENGTH} characters."
    )
    search_routes = {
        "cs_": "stripe_checkout_session_id",
        "pi_": "stripe_payment_intent_id",
        "@": "customer_email",
    }
    search_order_field = "pk"
    date_hierarchy = "created_at"
    inlines = [LineInline, TransitionInline, RefundInline, DisputeInline, EmailInline]
    actions = ["fulfill_selected", "fail_selected", "expire_selected", "settle_selected"]
    # Closing an order stops its buyer from paying, fulfilling sends the goods: two different trusts.
    # Settling needs the change permission, which the order page itself never uses (it has no Save).
    has_fulfill_permission = permission_check("orders.fulfill_order")
    has_close_permission = permission_check("orders.close_order")
    has_settle_permission = permission_check("orders.change_order")
    _summary = ("id", "status_badge", "delayed_payment", "subtotal", "discount", "tax", "shipping", "total")
    _times = ("created_at", "confirmed_at", "fulfilled_at", "fulfillment_signal", "failed_at", "expired_at")
    fieldsets = (
        (None, {"fields": (*_summary, "refunds", "customer_email", "failure_reason")}),
        ("Shipping", {"fields": ("shipping_address", "shipping_rate", "promotion_code")}),
        ("Stripe", {"fields": ("checkout_session", "payment_intent", "stripe_events")}),
        ("Times", {"fields": (*_times, "refunded_at", "updated_at")}),
        ("Needs attention", {"fields": ("attention",)}),
    )

    status_badge = badge_column("status", "Status")
    subtotal = money_column("amount_subtotal", "Subtotal")
    discount = money_column("amount_discount", "Discount")
    tax = money_column("amount_tax", "Tax")
    shipping = money_column("amount_shipping", "Shipping")
    total = money_column("amount_total", "Total")

    def get_urls(self) -> list[URLPattern]:
        refund = self.admin_site.admin_view(self.refund_view)
        return [path("<uuid:order_id>/refund/", refund, name="orders_order_refund"), *super().get_urls()]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Order]:
        # One EXISTS per listed row through the disputes' order index, for the list's "Disputed" flag.
        disputed = Exists(OrderDispute.objects.filter(order_id=OuterRef("pk")))
        return super().get_queryset(request).annotate(is_disputed=disputed).prefetch_related("lines__product")

    def render_change_form(
        self, request: HttpRequest, context: dict, *args: object, obj: Order | None = None, **kwargs: object
    ) -> HttpResponse:
        may_refund = obj and obj.status == OrderStatus.FULFILLED and request.user.has_perm(REFUND_PERMISSION)
        if may_refund and order_refundable_remaining(order_id=obj.pk) > 0:
            context["refund_url"] = reverse("admin:orders_order_refund", args=[obj.pk])
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)

    @admin.display(description="Order", ordering="id")
    def reference(self, order: Order) -> SafeString | str:
        return order_link(order.pk)

    @admin.display(description="Flags")
    def flags(self, order: Order) -> SafeString:
        marks = []
        if order.needs_attention:
            flag = '<span class="flag flag-attention" title="{}">Needs attention</span>'
            marks.append(format_html(flag, order.attention_reason))
        # A refunded order's badge says it already; a partial refund or a dispute lost shows only here.
        if order.amount_refunded and order.status != OrderStatus.REFUNDED:
            refunded = money_format(order.amount_refunded, order.currency)
            marks.append(format_html('<span class="flag">{} refunded</span>', refunded))
        if order.is_disputed:
            marks.append(SafeString('<span class="flag flag-dispute">Disputed</span>'))
        return format_html_join(" ", "{}", ((mark,) for mark in marks))

    @admin.display(description="Flagged for a person")
    def attention(self, order: Order) -> SafeString | str:
        if not order.needs_attention:
            return "No"
        return format_html(
            '{} <span class="help">Once settled, take it off the list with the order list\'s action “Mark '
            "selected orders as settled”.</span>",
            order.attention_reason,
        )

    @admin.display(description="Items")
    def item(self, order: Order) -> str:
        return order.summary

    @admin.display(description="Delayed payment")
    def delayed_payment(self, order: Order) -> str:
        return "Awaiting the bank" if order.payment_pending else "—"

    @admin.display(description="Refunded")
    def refunds(self, order: Order) -> str:
        refunded = money_format(order.amount_refunded, order.currency)
        if order.status != OrderStatus.FULFILLED:
            return f"{refunded} refunded"
        remaining = order_refundable_remaining(order_id=order.pk)
        if remaining <= 0:
            return f"{refunded} refunded; refunds under way cover the rest"
        return f"{refunded} refunded; {money_format(remaining, order.currency)} left."

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
        if url := object_id and dashboard_url(kind=kind, object_id=object_id):
            return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, object_id)
        return object_id or "—"

    @admin.display(description="Stripe events")
    def stripe_events(self, order: Order) -> str:
        url = reverse("admin:payments_stripeevent_changelist")
        return format_html('<a href="{}?order__id__exact={}">Events of this order</a>', url, order.pk)

    def _run(
        self, request: HttpRequest, orders: QuerySet[Order], verb: str, move: Callable[..., OrderActionResult]
    ) -> None:
        # Read the ids once: the orders leave a status-filtered list as they move.
        results = [move(order_id=order_id) for order_id in orders.values_list("pk", flat=True)]
        moved = sum(result.moved for result in results)
        text = f"{verb}: {moved} of {len(results)} {noun(len(results), 'order')}."
        problems = [f"order {order_reference(r.order_id)}: {r.message}" for r in results if not r.moved]
        if problems:
            text += " Not moved: " + "; ".join(problems) + "."
        self.message_user(request, text, messages.WARNING if problems else messages.SUCCESS)

    @admin.action(description="Fulfill selected orders (if Stripe says paid)", permissions=["fulfill"])
    def fulfill_selected(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        self._run(
            request, queryset, "Fulfilled", partial(order_fulfill_verified, source=TransitionSource.ADMIN)
        )

    @admin.action(description="Fail selected orders (expires their checkout first)", permissions=["close"])
    def fail_selected(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        reason = f"Failed by {request.user} in the admin."
        fail = partial(order_close, transition="fail", source=TransitionSource.ADMIN, reason=reason)
        self._run(request, queryset, "Failed", fail)

    @admin.action(description="Expire selected orders (expires their checkout first)", permissions=["close"])
    def expire_selected(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        expire = partial(order_close, transition="expire", source=TransitionSource.ADMIN)
        self._run(request, queryset, "Expired", expire)

    @admin.action(
        description="Mark selected orders as settled (clears Needs attention)", permissions=["settle"]
    )
    def settle_selected(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        self._run(request, queryset, "Settled", partial(order_settle, by=request.user.get_username()))

    def refund_view(self, request: HttpRequest, order_id: uuid.UUID) -> HttpResponse:
        """Refund once confirmed; the confirmation's token is the request id: a double click refunds once."""
        permission_required(request, REFUND_PERMISSION)
        order = get_object_or_404(Order.objects.prefetch_related("lines__product"), pk=order_id)
        order_url = reverse("admin:orders_order_change", args=[order.pk])
        form = RefundForm(request.POST or None, currency=order.currency)
        to_refund = ""
        if form.is_valid():
            amount, reason, token = (form.cleaned_data[name] for name in ("amount", "reason", "token"))
            if "confirm" in request.POST and token:
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
                    self.message_user(request, f"Nothing was refunded: {exc}", messages.ERROR)
                else:
                    self.message_user(
                        request, outcome.message, messages.SUCCESS if outcome.ok else messages.ERROR
                    )
                return HttpResponseRedirect(order_url)
            try:
                checked = order_refund_amount_check(
                    order_id=order.pk, amount=amount, requested_by=RefundRequester.ADMIN
                )
            except RefundRefused as exc:
                form.add_error(None, str(exc))
            else:
                everything = " (everything left)" if amount is None else ""
                to_refund = f"{money_format(checked, order.currency)}{everything}"
                initial = {"amount": request.POST.get("amount", ""), "reason": reason, "token": uuid.uuid4()}
                form = RefundForm(initial=initial, currency=order.currency)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Refund order {order.reference}",
            "opts": self.opts,
            "order": order,
            "order_url": order_url,
            "form": form,
            "to_refund": to_refund,
            "total": money_format(order.amount_total, order.currency),
            "refunded": money_format(order.amount_refunded, order.currency),
            "remaining": money_format(order_refundable_remaining(order_id=order.pk), order.currency),
            "reason_label": dict(form.fields["reason"].choices)[form.initial.get("reason") or ""],
        }
        return TemplateResponse(request, "admin/orders/order/refund.html", context)


@admin.register(OrderTransition)
class OrderTransitionAdmin(RecordAdmin):
    list_display = ("created_at", "order_column", "from_badge", "to_badge", "source", "stripe_event_id")
    list_filter = ("source", "to_status")
    ordering = ("-created_at", "-id")


@admin.register(OrderRefund)
class OrderRefundAdmin(RecordAdmin):
    list_display = (
        *("created_at", "order_column", "amount_display", "status", "requested_by", "failure_reason"),
    )
    list_filter = ("status", "requested_by")
    ordering = ("created_at", "id")


@admin.register(OrderDispute)
class OrderDisputeAdmin(RecordAdmin):
    list_display = (
        *("evidence_due_by", "order_column", "amount_display", "status", "reason", "stripe_dispute_id"),
    )
    list_filter = ("status",)
    ordering = ("evidence_due_by", "id")


@admin.register(CustomerEmail)
class CustomerEmailAdmin(RecordAdmin):
    list_display = ("created_at", "order_column", "kind", "to_address", "status_badge", "attempts", "sent_at")
    list_filter = ("status", "kind")
    ordering = ("-id",)
    actions = ["resend_selected"]
    has_resend_permission = permission_check("payments.resend_customeremail")
    status_badge = badge_column("status", "Status", EmailStatus)

    @admin.action(
        description="Send selected failed e-mails again (they did not arrive)", permissions=["resend"]
    )
    def resend_selected(self, request: HttpRequest, queryset: QuerySet[CustomerEmail]) -> None:
        count = customer_emails_resend(emails=queryset, by=request.user.get_username())
        self.message_user(
            request, f"{count} failed {noun(count, 'e-mail')} owed again; the worker sends them shortly."
        )


class EventOrderFilter(admin.SimpleListFilter):
    """The events of one order, `?order__id__exact=`: the link each order's page carries."""

    title = "order"
    parameter_name = "order__id__exact"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        # Only the order being looked at: listing every order here would not scale.
        return [(self.value(), self.value())] if self.value() else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[StripeEvent]) -> QuerySet[StripeEvent]:
        if not self.value():
            return queryset
        try:
            return queryset.filter(order_id=uuid.UUID(self.value()))
        except ValueError:
            raise IncorrectLookupParameters(f"{self.value()!r} is not an order id.") from None


class EventTypeFilter(DistinctValuesFilter):
    title = "type"
    parameter_name = "type"


@admin.register(StripeEvent)
class StripeEventAdmin(RecordAdmin):
    list_display = ("stripe_id", "type", "status_badge", "order_column", "attempts", "received_at")
    list_display_links = ("stripe_id",)
    list_filter = (
        "status",
        EventTypeFilter,
        ("received_at", admin.DateFieldListFilter),
        "source",
        EventOrderFilter,
    )
    search_help_text = (
        "Search by event id (evt_...), Checkout Session (cs_...), or the order id or its first 8 characters."
    )
    search_routes = {"evt_": "stripe_id", "cs_": "order__stripe_checkout_session_id"}
    date_hierarchy = "received_at"
    actions = ["replay_selected"]
    has_replay_permission = permission_check("payments.change_stripeevent")
    fields = (
        *("stripe_id", "type", "status_badge", "outcome_words", "order_column", "attempts", "source"),
        *("livemode", "api_version", "stripe_created", "received_at", "processed_at", "last_error_display"),
        "payload_display",
    )
    status_badge = badge_column("status", "Status", EventStatus)

    @admin.display(description="Outcome")
    def outcome_words(self, event: StripeEvent) -> str:
        return event.outcome or "—"

    @admin.display(description="Payload")
    def payload_display(self, event: StripeEvent) -> str:
        return format_html("<pre>{}</pre>", event.payload_text)

    @admin.display(description="Last error")
    def last_error_display(self, event: StripeEvent) -> str:
        return format_html("<pre>{}</pre>", event.last_error) if event.last_error else "—"

    @admin.action(description="Replay selected events", permissions=["replay"])
    def replay_selected(self, request: HttpRequest, queryset: QuerySet[StripeEvent]) -> None:
        counts: Counter[str] = Counter()
        for outcome in stripe_events_replay(events=queryset):
            status = EventStatus.FAILED if outcome.error else outcome.status
            counts["already finished" if outcome.duplicate else EventStatus(status).label.lower()] += 1
        details = ", ".join(f"{count:,} {word}" for word, count in sorted(counts.items()))
        failed = {EventStatus(status).label.lower() for status in NEEDS_A_PERSON}
        level = messages.WARNING if failed & counts.keys() else messages.SUCCESS
        self.message_user(
            request, f"Replayed {counts.total()} {noun(counts.total(), 'event')}: {details}.", level
        )


class ProductAdminForm(forms.ModelForm):
    """Create the new Stripe price while validating, so a Stripe that fails leaves the price unsaved."""

    stock = forms.IntegerField(
        min_value=0,
        required=False,
        show_hidden_initial=True,
        help_text=Product._meta.get_field("stock").help_text,
    )

    def stock_shown(self) -> int | None:
        """Return the stock count the page showed (posted back by `show_hidden_initial`)."""
        shown = self.data.get(self.add_initial_prefix("stock"))
        return self.initial.get("stock") if shown is None else self.fields["stock"].to_python(shown)

    class Meta:
        model = Product
        fields = (
            *("sku", "name", "description", "unit_amount", "currency", "active", "stock"),
            "requires_shipping",
        )

    new_price_id: str | None = None

    def clean(self) -> dict:
        cleaned = super().clean()
        product = self.instance
        changed = {"unit_amount", "currency"} & set(self.changed_data)
        if self.errors or product.pk is None or not changed or not product.stripe_price_id:
            # A new product, or one never synced, gets its Stripe price from `sync_catalog`.
            return cleaned
        try:
            self.new_price_id = product_price_create(
                product=product, unit_amount=cleaned["unit_amount"], currency=cleaned["currency"]
            )
        except PaymentProviderError as exc:
            raise forms.ValidationError(
                "The price was not changed: Stripe could not create the new price (%(error)s). "
                "The product keeps its old price; try again when Stripe answers.",
                code="stripe_unavailable",
                params={"error": exc},
            ) from exc
        return cleaned


@admin.register(Product)
class ProductAdmin(BackofficeAdmin):
    form = ProductAdminForm
    list_display = ("sku", "name", "price", "active", "stock", "reserved", "stripe_price_id", "updated_at")
    list_filter = ("active", "currency")
    search_fields = ("sku", "name", "stripe_price_id", "stripe_product_id")
    prepopulated_fields = {"sku": ("name",)}
    readonly_fields = ("stripe_product_id", "stripe_price_id", "created_at", "updated_at")
    price = money_column("unit_amount", "Price")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Product]:
        held = Q(order_lines__order__status__in=OrderStatus.OPEN, order_lines__order__holds_stock=True)
        return super().get_queryset(request).annotate(reserved=Sum("order_lines__quantity", filter=held))

    @admin.display(description="Reserved by open orders", ordering="reserved")
    def reserved(self, product: Product) -> int:
        return product.reserved or 0

    def save_model(self, request: HttpRequest, obj: Product, form: ProductAdminForm, change: bool) -> None:
        old_price_id = obj.stripe_price_id
        obj.stripe_price_id = form.new_price_id or old_price_id
        if not change:
            obj.save()
        else:
            # Checkouts take stock meanwhile: apply the change typed, never overwrite what they took.
            obj.save(
                update_fields=[f.name for f in Product._meta.concrete_fields if f.name not in ("id", "stock")]
            )
            if "stock" in form.changed_data:
                self._stock_change(request, obj, form.stock_shown())
        if not form.new_price_id:  # only ever set for a product that had a Stripe price
            return
        selling = f"{obj.sku} now sells at {money_format(obj.unit_amount, obj.currency)}"
        try:
            product_price_archive(product=obj, price_id=old_price_id)
        except PaymentProviderError as exc:
            self.message_user(
                request,
                f"{selling} (Stripe price {obj.stripe_price_id}), but the old price {old_price_id} could not "
                f"be archived: {exc}. Archive it in Stripe's Dashboard.",
                messages.WARNING,
            )
        else:
            self.message_user(
                request, f"{selling}: Stripe price {obj.stripe_price_id} created, {old_price_id} archived."
            )

    def _stock_change(self, request: HttpRequest, product: Product, before: int | None) -> None:
        rows = Product.objects.filter(pk=product.pk)
        if before is None or product.stock is None:
            rows.update(stock=product.stock)
            return
        change = product.stock - before
        if not rows.filter(stock__gte=-change).update(stock=F("stock") + change):
            left = rows.values_list("stock", flat=True).get()
            self.message_user(
                request,
                f"The stock of {product.sku} was not changed by {change}: checkouts took it down to {left} "
                "meanwhile. Look at it again and set it anew.",
                messages.WARNING,
            )
