"""Admin for the Stripe event inbox: read-only events, their payloads and errors, and a replay action."""

import uuid
from collections import Counter

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from orders.admin import ADMIN_CSS, status_badge
from orders.admin_support import DistinctValuesFilter, ScaledListMixin
from orders.search import order_id_match, order_reference
from payments import admin_catalog  # noqa: F401 - registers the catalog's admin
from payments.inbox import NEEDS_A_PERSON, stripe_events_replay
from payments.models import EventStatus, StripeEvent


def event_status_badge(status: str) -> SafeString:
    """Return an event's status as a badge like an order's: colour and word (styles: orders/admin.css)."""
    label = EventStatus(status).label if status in EventStatus.values else status
    return status_badge(status, label)


class OrderFilter(admin.SimpleListFilter):
    """Filter by the order id in `?order__id__exact=`, the link each order's admin page carries."""

    title = "order"
    parameter_name = "order__id__exact"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        # Only the order being looked at: listing every order here would not scale.
        value = self.value()
        return [(value, value)] if value else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[StripeEvent]) -> QuerySet[StripeEvent]:
        value = self.value()
        if not value:
            return queryset
        try:
            order_id = uuid.UUID(value)
        except ValueError:
            raise IncorrectLookupParameters(f"{value!r} is not an order id.") from None
        return queryset.filter(order_id=order_id)


class EventTypeFilter(DistinctValuesFilter):
    """The event types stored, read from the type's index rather than from every event."""

    title = "type"
    parameter_name = "type"


@admin.register(StripeEvent)
class StripeEventAdmin(ScaledListMixin, admin.ModelAdmin):
    list_display = ("stripe_id", "type", "status_badge", "order_link", "attempts", "received_at")
    list_filter = (
        "status",
        EventTypeFilter,
        ("received_at", admin.DateFieldListFilter),
        "source",
        OrderFilter,
    )
    # Declared so the search box shows; get_search_results routes a term by its shape, through an index.
    search_fields = ("stripe_id",)
    search_help_text = (
        "Search by event id (evt_...), Checkout Session (cs_...), or the order id or its first 8 characters."
    )
    date_hierarchy = "received_at"
    actions = ["replay_selected"]
    fields = (
        "stripe_id",
        "type",
        "status_badge",
        "outcome",
        "order_link",
        "attempts",
        "source",
        "livemode",
        "api_version",
        "stripe_created",
        "received_at",
        "processed_at",
        "last_error_display",
        "payload_display",
    )
    readonly_fields = fields

    class Media:
        css = ADMIN_CSS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: StripeEvent | None = None) -> bool:
        # What Stripe sent is a record, never edited; the replay action has its own permission.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: StripeEvent | None = None) -> bool:
        return False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[StripeEvent], search_term: str
    ) -> tuple[QuerySet[StripeEvent], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.startswith("evt_"):
            return queryset.filter(stripe_id=term), False
        if term.startswith("cs_"):
            return queryset.filter(order__stripe_checkout_session_id=term), False
        condition = order_id_match(term, field="order_id")
        return (queryset.filter(condition) if condition is not None else queryset.none()), False

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payments.change_stripeevent")

    @admin.display(description="Status", ordering="status")
    def status_badge(self, event: StripeEvent) -> SafeString:
        return event_status_badge(event.status)

    @admin.display(description="Order", ordering="order")
    def order_link(self, event: StripeEvent) -> str:
        if event.order_id is None:
            return "-"
        url = reverse("admin:orders_order_change", args=[event.order_id])
        return format_html(
            '<a href="{}" title="{}"><code>{}</code></a>',
            url,
            event.order_id,
            order_reference(event.order_id),
        )

    @admin.display(description="Payload")
    def payload_display(self, event: StripeEvent) -> str:
        return format_html("<pre>{}</pre>", event.payload_text)

    @admin.display(description="Last error")
    def last_error_display(self, event: StripeEvent) -> str:
        return format_html("<pre>{}</pre>", event.last_error) if event.last_error else "-"

    @admin.action(description="Replay selected events", permissions=["replay"])
    def replay_selected(self, request: HttpRequest, queryset: QuerySet[StripeEvent]) -> None:
        counts: Counter[str] = Counter()
        for outcome in stripe_events_replay(events=queryset):
            counts["errors" if outcome.error else "duplicate" if outcome.duplicate else outcome.status] += 1
        total = sum(counts.values())
        details = ", ".join(f"{count} {key}" for key, count in sorted(counts.items()))
        needs_a_person = counts["errors"] or any(counts[status] for status in NEEDS_A_PERSON)
        level = messages.WARNING if needs_a_person else messages.SUCCESS
        self.message_user(request, f"Replayed {total} event(s): {details}.", level)


# The order admin with actions that ask Stripe first replaces the orders app's own registration.
from payments import admin_orders  # noqa: E402, F401
