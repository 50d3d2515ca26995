"""The admin's Needs attention page and the index's dashboard: what a person must look at, and how the
shop is doing today.

Both are for staff who may view orders (`orders.view_order`); the Stripe event lists show only to those
who may also view events (`payments.view_stripeevent`). Every list is bounded and counted without a full
COUNT(*) (payments/selectors/attention.py), so both pages cost the same at a million orders.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from orders.admin import status_badge
from orders.admin_support import count_display
from orders.db import EXACT_COUNT_LIMIT
from orders.models import Order, OrderDispute, OrderRefund
from orders.money import money_format
from orders.search import order_reference
from orders.selectors import order_counts_created_since
from payments.admin import event_status_badge
from payments.health import event_queue, stripe_event_counts
from payments.models import StripeEvent
from payments.selectors.attention import (
    OPEN_DISPUTE_STATUSES,
    UNSETTLED_REFUND_STATUSES,
    AttentionList,
    attention_counts,
    attention_lists,
)

VIEW_ORDERS = "orders.view_order"
VIEW_EVENTS = "payments.view_stripeevent"
# A task runnable for longer than this with nobody taking it suggests no worker is running.
NO_WORKER_AFTER = timedelta(minutes=1)


# How the index and the page's summary line name each list.
SHORT_LABELS = {
    "flagged_orders": "flagged orders",
    "needs_review_events": "events to review",
    "failed_events": "failed events",
    "open_past_session": "open orders past their checkout",
    "unsettled_refunds": "refunds not settled",
    "open_disputes": "disputes to answer",
}


@dataclass(frozen=True)
class Section:
    """One list as the page shows it."""

    key: str
    title: str
    label: str
    help: str
    count: str
    empty: bool
    all_url: str | None
    headers: tuple[str, ...]
    rows: list[tuple[SafeString | str, ...]]


def _changelist(model: type, user: AbstractBaseUser | AnonymousUser, **filters: str) -> str | None:
    opts = model._meta
    if not user.has_perm(f"{opts.app_label}.view_{opts.model_name}"):
        return None
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


def _order_link(order_id: object) -> SafeString:
    url = reverse("admin:orders_order_change", args=[order_id])
    return format_html(
        '<a href="{}" title="{}"><code>{}</code></a>', url, order_id, order_reference(order_id)
    )


def _when(moment: datetime | None) -> SafeString | str:
    if not moment:
        return "—"
    return format_html(
        '<span class="when">{}</span>', formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")
    )


def _event_row(event: StripeEvent) -> tuple:
    url = reverse("admin:payments_stripeevent_change", args=[event.pk])
    # A failure's outcome is empty; the last line of its traceback names the error.
    outcome = event.outcome or (event.last_error.strip().splitlines() or [""])[-1]
    return (
        format_html('<a href="{}"><code>{}</code></a>', url, event.stripe_id),
        event.type,
        _order_link(event.order_id) if event.order_id else "—",
        _when(event.received_at),
        outcome[:200],
    )


def _order_row(order: Order, last: str) -> tuple:
    return (
        _order_link(order.pk),
        status_badge(order.status),
        _when(order.created_at),
        money_format(order.amount_total, order.currency),
        last,
    )


def _sections(lists: list[AttentionList], user: AbstractBaseUser | AnonymousUser) -> list[Section]:
    ttl_minutes = settings.CHECKOUT_SESSION_TTL_SECONDS // 60
    event_headers = ("Event", "Type", "Order", "Received", "Outcome")
    order_headers = ("Order", "Status", "Created", "Total")
    described = {
        "flagged_orders": (
            "Orders flagged for a person",
            "Stripe took money for an order that had already closed (a late payment). Check the refund, "
            "then mark the order settled (the action on the order list).",
            (*order_headers, "Why"),
            lambda o: _order_row(o, o.attention_reason),
            _changelist(Order, user, needs_attention__exact="1"),
        ),
        "needs_review_events": (
            "Stripe events to review",
            "Events processing refused and only a person can settle: a payment for another amount than "
            "the order's, or for an order already closed.",
            event_headers,
            _event_row,
            _changelist(StripeEvent, user, status__exact="needs_review"),
        ),
        "failed_events": (
            "Stripe events that failed",
            "Processing crashed; a replay may cure them (the Replay action, or replay_events --failed).",
            event_headers,
            _event_row,
            _changelist(StripeEvent, user, status__exact="failed"),
        ),
        "open_past_session": (
            "Open orders whose checkout has expired",
            f"Still pending or confirmed, though their Checkout Session expired at Stripe (created more "
            f"than {ttl_minutes} minutes ago). reconcile_orders or audit_payments --fix settles them; many "
            f"here means neither is running.",
            (*order_headers, "Buyer"),
            lambda o: _order_row(o, o.customer_email or "—"),
            _changelist(Order, user, session="expired_open"),
        ),
        "unsettled_refunds": (
            "Refunds not settled",
            "Requested but not answered by Stripe, pending at Stripe, or failed: money a buyer is still "
            "owed. A requested one can be sent again with refund_order --retry.",
            ("Order", "Amount", "Status", "Requested", "By", "Failure"),
            lambda r: (
                _order_link(r.order_id),
                money_format(r.amount, r.currency),
                r.get_status_display(),
                _when(r.created_at),
                r.requested_by_user or r.get_requested_by_display(),
                r.failure_reason or "—",
            ),
            _changelist(OrderRefund, user, status__in=",".join(UNSETTLED_REFUND_STATUSES)),
        ),
        "open_disputes": (
            "Disputes waiting for a response",
            "Answer each in Stripe's Dashboard with evidence before it is due, or the dispute is lost.",
            ("Evidence due", "Order", "Amount", "Status", "Reason"),
            lambda d: (
                format_html("<strong>{}</strong>", _when(d.evidence_due_by)),
                _order_link(d.order_id),
                money_format(d.amount, d.currency),
                d.get_status_display(),
                d.reason or "—",
            ),
            _changelist(OrderDispute, user, status__in=",".join(OPEN_DISPUTE_STATUSES)),
        ),
    }
    sections = []
    for found in lists:
        if found.key.endswith("_events") and not user.has_perm(VIEW_EVENTS):
            continue
        title, help_text, headers, row, all_url = described[found.key]
        sections.append(
            Section(
                key=found.key,
                title=title,
                label=SHORT_LABELS[found.key],
                help=help_text,
                count=count_display(found.count, is_estimate=found.count_is_estimate),
                empty=not found.count,
                all_url=all_url,
                headers=headers,
                rows=[row(item) for item in found.rows],
            )
        )
    return sections


def needs_attention_view(request: HttpRequest) -> HttpResponse:
    """List what a person must look at, each list's most urgent rows first, linked to the full lists."""
    if not request.user.has_perm(VIEW_ORDERS):
        raise PermissionDenied
    context = {
        **admin.site.each_context(request),
        "title": "Needs attention",
        "sections": _sections(attention_lists(), request.user),
    }
    return TemplateResponse(request, "admin/needs_attention.html", context)


def dashboard_context(user: AbstractBaseUser | AnonymousUser) -> dict:
    """Return what the admin index shows: the Needs attention counts, today's orders, events, the queue."""
    if not user.has_perm(VIEW_ORDERS):
        return {"show": False}
    page = reverse("needs-attention")
    counts = attention_counts()
    attention = [
        {
            "label": label,
            "count": count_display(counts[key][0], is_estimate=counts[key][1]),
            "nonzero": bool(counts[key][0]),
            "url": f"{page}#{key}",
        }
        for key, label in SHORT_LABELS.items()
        if not key.endswith("_events") or user.has_perm(VIEW_EVENTS)
    ]
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    queue = event_queue()
    waited = queue.oldest_waiting_age
    return {
        "show": True,
        "attention_url": page,
        "attention": attention,
        "attention_total": sum(count for count, _ in counts.values()),
        "orders_today": [
            {"badge": status_badge(status), "count": f"{count:,}", "url": _status_today_url(status, midnight)}
            for status, count in order_counts_created_since(since=midnight).items()
        ],
        "events": [
            {
                "badge": event_status_badge(status),
                "count": count_display(count, is_estimate=count > EXACT_COUNT_LIMIT),
            }
            for status, count in stripe_event_counts().items()
        ]
        if user.has_perm(VIEW_EVENTS)
        else None,
        "queue": {
            "waiting": queue.waiting,
            "scheduled": queue.scheduled,
            "running": queue.claimed,
            "stuck": 0,
            "oldest_waiting": _age(waited),
            "no_worker": waited is not None and waited > NO_WORKER_AFTER,
        },
    }


def _status_today_url(status: str, midnight: datetime) -> str:
    url = reverse("admin:orders_order_changelist")
    query = {
        "status__exact": status,
        "created_at__year": midnight.year,
        "created_at__month": midnight.month,
        "created_at__day": midnight.day,
    }
    return f"{url}?{urlencode(query)}"


def _age(age: timedelta | None) -> str:
    if age is None:
        return "—"
    seconds = int(age.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"
