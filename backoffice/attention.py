"""The Needs attention page and the index's dashboard, from one table of what a person must see. Counts are
capped (orders.db.capped_count) and lists read through an index: both cost the same at a million orders.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from backoffice.admin import badge, order_link, permission_required, session_expired
from backoffice.lists import count_display
from orders.db import EXACT_COUNT_LIMIT, capped_count
from orders.models import DisputeStatus, Order, OrderDispute, OrderRefund, RefundStatus
from orders.money import money_format, noun
from orders.selectors import order_counts_created_since
from payments.health import event_queue, stripe_event_counts
from payments.models import CustomerEmail, EmailStatus, EventStatus, StripeEvent

VIEW_ORDERS = "orders.view_order"
VIEW_EVENTS = "payments.view_stripeevent"
ROWS_SHOWN = 20  # of each list, on the Needs attention page
# A task runnable for longer than this with nobody taking it suggests no worker is running.
NO_WORKER_AFTER = timedelta(minutes=1)


@dataclass(frozen=True)
class AttentionList:
    key: str
    title: str
    nouns: tuple[str, str]  # what a count of it says: "1 flagged order", "2 flagged orders"
    help: str
    rows: Callable[[], QuerySet]  # every row, the most urgent first
    columns: tuple[str, ...]
    row: Callable[[Any], tuple]
    filters: dict[str, str]  # the full list: the changelist of the rows' model, with these filters
    permission: str  # who may see the list


def _when(moment: datetime | None) -> SafeString | str:
    if not moment:
        return "—"
    return format_html(
        '<span class="when">{}</span>', formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")
    )


def _order_row(order: Order, last: str) -> tuple:
    total = money_format(order.amount_total, order.currency)
    return (order_link(order.pk), badge(order.status), _when(order.created_at), total, last)


def _event_row(event: StripeEvent) -> tuple:
    url = reverse("admin:payments_stripeevent_change", args=[event.pk])
    # A failure's outcome is empty; the last line of its traceback names the error.
    outcome = event.outcome or (event.last_error.strip().splitlines() or [""])[-1]
    outcome = outcome if len(outcome) <= 200 else f"{outcome[:199]}…"
    link = format_html('<a href="{}"><code>{}</code></a>', url, event.stripe_id)
    return (link, event.type, order_link(event.order_id), _when(event.received_at), outcome)


def _events(status: str) -> QuerySet[StripeEvent]:
    # The payload is kilobytes an event and not shown.
    events = StripeEvent.objects.filter(status=status).defer("payload", "payload_text")
    return events.order_by("-received_at", "-pk")


ORDER_COLUMNS = ("Order", "Status", "Created", "Total")
EVENT_COLUMNS = ("Event", "Type", "Order", "Received", "Outcome")

LISTS = (
    AttentionList(
        "flagged_orders",
        "Orders flagged for a person",
        ("flagged order", "flagged orders"),
        "Stripe took money for an order that had already closed (a late payment). Check the refund, then "
        "mark the order settled with the order list's action.",
        lambda: Order.objects.filter(needs_attention=True).order_by("-created_at", "-pk"),
        (*ORDER_COLUMNS, "Why"),
        lambda order: _order_row(order, order.attention_reason),
        {"needs_attention__exact": "1"},
        VIEW_ORDERS,
    ),
    AttentionList(
        "needs_review_events",
        "Stripe events to review",
        ("event to review", "events to review"),
        "Events that processing refused and only a person can settle: a payment for another amount than "
        "the order's, or for an order already closed.",
        lambda: _events(EventStatus.NEEDS_REVIEW),
        EVENT_COLUMNS,
        _event_row,
        {"status__exact": EventStatus.NEEDS_REVIEW},
        VIEW_EVENTS,
    ),
    AttentionList(
        "failed_events",
        "Stripe events that failed",
        ("failed event", "failed events"),
        "Processing crashed; a replay may cure them (the Replay action, or replay_events --failed).",
        lambda: _events(EventStatus.FAILED),
        EVENT_COLUMNS,
        _event_row,
        {"status__exact": EventStatus.FAILED},
        VIEW_EVENTS,
    ),
    AttentionList(
        "open_past_session",
        "Open orders whose checkout has expired",
        ("open order past its checkout", "open orders past their checkout"),
        "Still pending or confirmed, though their Checkout Session expired at Stripe (created more than "
        "{minutes} minutes ago). reconcile_orders or audit_payments --fix settles them; many here means "
        "neither is running.",
        lambda: Order.objects.filter(session_expired()).order_by("created_at", "pk"),
        (*ORDER_COLUMNS, "Buyer"),
        lambda order: _order_row(order, order.customer_email or "—"),
        {"session": "expired_open"},
        VIEW_ORDERS,
    ),
    AttentionList(
        "unsettled_refunds",
        "Refunds not settled",
        ("refund not settled", "refunds not settled"),
        "Requested but not answered by Stripe, pending at Stripe, or failed: money a buyer is still owed. "
        "A requested one can be sent again with refund_order --retry.",
        lambda: OrderRefund.objects.filter(status__in=RefundStatus.UNSETTLED).order_by("created_at", "pk"),
        ("Order", "Amount", "Status", "Requested", "By", "Failure"),
        lambda refund: (
            order_link(refund.order_id),
            money_format(refund.amount, refund.currency),
            refund.get_status_display(),
            _when(refund.created_at),
            refund.requested_by_user or refund.get_requested_by_display(),
            refund.failure_reason or "—",
        ),
        {"status__in": ",".join(sorted(RefundStatus.UNSETTLED))},
        VIEW_ORDERS,
    ),
    AttentionList(
        "open_disputes",
        "Disputes waiting for a response",
        ("dispute to answer", "disputes to answer"),
        "Answer each in Stripe's Dashboard with evidence before it is due, or the dispute is lost.",
        lambda: OrderDispute.objects.filter(status__in=DisputeStatus.AWAITING_RESPONSE).order_by(
            "evidence_due_by", "pk"
        ),
        ("Evidence due", "Order", "Amount", "Status", "Reason"),
        lambda dispute: (
            format_html("<strong>{}</strong>", _when(dispute.evidence_due_by)),
            order_link(dispute.order_id),
            money_format(dispute.amount, dispute.currency),
            dispute.get_status_display(),
            dispute.reason or "—",
        ),
        {"status__in": ",".join(sorted(DisputeStatus.AWAITING_RESPONSE))},
        VIEW_ORDERS,
    ),
    AttentionList(
        "failed_emails",
        "Customer e-mails that failed",
        ("failed e-mail", "failed e-mails"),
        "The mail server refused them on every attempt, or their worker stopped while sending them. Check "
        "that the buyer did not get one, then send it again with the e-mails list's action.",
        lambda: CustomerEmail.objects.filter(status=EmailStatus.FAILED).order_by("-pk"),
        ("Order", "E-mail", "To", "Created", "Attempts", "Error"),
        lambda email: (
            order_link(email.order_id),
            email.get_kind_display(),
            email.to_address,
            _when(email.created_at),
            email.attempts,
            email.last_error or "—",
        ),
        {"status__exact": EmailStatus.FAILED},
        "payments.view_customeremail",
    ),
)


def _counted(found: AttentionList, rows: QuerySet) -> dict:
    count, is_estimate = capped_count(rows)
    return {
        "key": found.key,
        "count": count_display(count, is_estimate=is_estimate),
        "noun": noun(count, *found.nouns, is_estimate=is_estimate),
        "empty": not count,
    }


def needs_attention_view(request: HttpRequest) -> HttpResponse:
    """List what a person must look at, each list's most urgent rows first, linked to the full lists."""
    permission_required(request, VIEW_ORDERS)
    minutes = settings.CHECKOUT_SESSION_TTL_SECONDS // 60
    sections = []
    for found in LISTS:
        if not request.user.has_perm(found.permission):
            continue
        rows = found.rows()
        section = _counted(found, rows)
        opts = rows.model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        may_view = request.user.has_perm(f"{opts.app_label}.view_{opts.model_name}")
        section.update(
            title=found.title,
            help=found.help.format(minutes=minutes),
            columns=found.columns,
            rows=[] if section["empty"] else [found.row(row) for row in rows[:ROWS_SHOWN]],
            all_url=f"{changelist}?{urlencode(found.filters)}" if may_view else None,
        )
        sections.append(section)
    context = {**admin.site.each_context(request), "title": "Needs attention", "sections": sections}
    return TemplateResponse(request, "admin/needs_attention.html", context)


def dashboard_context(user: AbstractBaseUser | AnonymousUser) -> dict:
    """Return the index's dashboard, empty for a user who may not view orders."""
    if not user.has_perm(VIEW_ORDERS):
        return {}
    attention = [_counted(found, found.rows()) for found in LISTS if user.has_perm(found.permission)]
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    today = {f"created_at__{part}": getattr(midnight, part) for part in ("year", "month", "day")}
    orders_url = reverse("admin:orders_order_changelist")
    queue = event_queue()
    waited = queue.oldest_waiting_age
    events = None
    if user.has_perm(VIEW_EVENTS):
        events = [
            (badge(status, EventStatus), count_display(count, is_estimate=count > EXACT_COUNT_LIMIT))
            for status, count in stripe_event_counts().items()
        ]
    return {
        "dashboard": {
            "attention_url": reverse("admin:needs_attention"),
            "attention": attention,
            "any_attention": any(not item["empty"] for item in attention),
            "orders_today": [
                (badge(status), f"{count:,}", f"{orders_url}?{urlencode({'status__exact': status, **today})}")
                for status, count in order_counts_created_since(since=midnight).items()
            ],
            "events": events,
            "queue": queue,
            "oldest_waiting": _age(waited),
            "no_worker": waited is not None and waited > NO_WORKER_AFTER,
        }
    }


def _age(age: timedelta | None) -> str:
    if age is None:
        return "—"
    seconds = int(age.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    return f"{seconds // 60} min" if seconds < 7200 else f"{seconds // 3600} h"
