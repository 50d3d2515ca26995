"""The order admin with the actions that move an order; they ask Stripe, so they live in payments.

Each action needs its own permission, so a view-only member of staff sees none and a forged POST of one
is refused by Django before it runs: closing an order (fail, expire) stops a buyer from paying, and
fulfilling sends the goods, two different trusts. Settling a flagged order (taking it off the Needs
attention list once a person has dealt with it) needs the change permission on orders; the order page
itself stays read-only. The messages count
what each call returned and name every order that did not move, with Stripe's reason.
"""

from collections.abc import Callable

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from orders import admin as orders_admin
from orders.models import Order, TransitionSource
from orders.services import order_clear_attention
from payments.order_actions import OrderActionResult, order_close, order_fulfill_verified
from payments.selectors.attention import open_past_session


class SessionExpiredFilter(admin.SimpleListFilter):
    """Open orders whose Checkout Session has expired at Stripe: the Needs attention page links here."""

    title = "checkout session"
    parameter_name = "session"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("expired_open", "Expired, order still open")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Order]) -> QuerySet[Order]:
        if self.value() != "expired_open":
            return queryset
        return queryset.filter(open_past_session())


class OrderAdmin(orders_admin.OrderAdmin):
    list_filter = ("needs_attention", SessionExpiredFilter, *orders_admin.OrderAdmin.list_filter)
    fieldsets = (
        *orders_admin.OrderAdmin.fieldsets,
        ("Needs attention", {"fields": ("attention",)}),
    )
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]
    actions = ["fulfill_selected", "fail_selected", "expire_selected", "settle_selected"]

    def has_close_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.close_order")

    def has_fulfill_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.fulfill_order")

    def has_settle_permission(self, request: HttpRequest) -> bool:
        # Not has_change_permission: the order admin answers False there so that no page offers Save.
        return request.user.has_perm("orders.change_order")

    def _run(
        self,
        request: HttpRequest,
        queryset: QuerySet[Order],
        verb: str,
        action: Callable[[object], OrderActionResult],
    ) -> None:
        # Read the ids once: the orders leave a status-filtered list as they move.
        results = [action(order_id) for order_id in queryset.values_list("pk", flat=True)]
        moved = sum(result.moved for result in results)
        problems = [f"order {r.short_id}: {r.message}" for r in results if not r.moved]
        text = f"{verb}: {moved} of {len(results)} order(s)."
        if problems:
            text += " Not moved: " + "; ".join(problems) + "."
        self.message_user(request, text, messages.WARNING if problems else messages.SUCCESS)

    @admin.action(description="Fulfill selected orders (if Stripe says paid)", permissions=["fulfill"])
    def fulfill_selected(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        self._run(
            request,
            queryset,
            "Fulfilled",
            lambda order_id: order_fulfill_verified(order_id=order_id, source=TransitionSource.ADMIN),
        )

    @admin.action(description="Fail selected orders (expires their checkout first)", permissions=["close"])
    def fail_selected(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        reason = f"Failed by {request.user} in the admin."
        self._run(
            request,
            queryset,
            "Failed",
            lambda order_id: order_close(
                order_id=order_id, transition="fail", source=TransitionSource.ADMIN, reason=reason
            ),
        )

    @admin.action(description="Expire selected orders (expires their checkout first)", permissions=["close"])
    def expire_selected(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        self._run(
            request,
            queryset,
            "Expired",
            lambda order_id: order_close(
                order_id=order_id, transition="expire", source=TransitionSource.ADMIN
            ),
        )

    @admin.action(
        description="Mark selected orders as settled (clears Needs attention)", permissions=["settle"]
    )
    def settle_selected(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        settled = sum(
            order_clear_attention(order_id=pk, by=str(request.user))
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"Settled: {settled} order(s) taken off the Needs attention list.")


admin.site.unregister(Order)
admin.site.register(Order, OrderAdmin)
