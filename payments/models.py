"""The inbox of Stripe events (stored once, processed, outcome kept) and the e-mails owed to buyers."""

import json

from django.db import models
from django.db.models import Q
from django.utils import timezone

# As long as a request id can be (checkout_demo.logs takes a proxy's X-Request-ID of up to 128).
REQUEST_ID_MAX_LENGTH = 128


class EventStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Ignored"
    FAILED = "failed", "Failed"
    NEEDS_REVIEW = "needs_review", "Needs review"
    SETTLED = "settled", "Settled by a person"


class EventSource(models.TextChoices):
    WEBHOOK = "webhook", "Webhook delivery"
    BACKFILL = "backfill", "Backfill from Stripe's Events API"
    FILE = "file", "Imported from a file"


# Unfinished is work for a worker (failed: an error a retry may cure). needs_review is a refusal only a
# person can settle (charged is not what the order costs): run again only by id; a replay leaves settled so.
UNFINISHED_STATUSES = (EventStatus.RECEIVED, EventStatus.FAILED)
FINISHED_STATUSES = tuple(status for status in EventStatus if status not in UNFINISHED_STATUSES)


class StripeEvent(models.Model):
    """One Stripe event, stored before it is processed so that no delivered event is ever lost."""

    # The unique index, not a prior exists() check, settles two copies of one event arriving at once.
    stripe_id = models.CharField("Stripe event id", max_length=255, unique=True)
    type = models.CharField(max_length=128, db_index=True)
    api_version = models.CharField(max_length=64, blank=True, default="")
    livemode = models.BooleanField(default=False)
    stripe_created = models.DateTimeField("created at Stripe", null=True, blank=True)
    payload_text = models.TextField(
        help_text="The body exactly as Stripe sent and signed it (an event from the Events API or a file: as "
        "serialised here)."
    )
    # Queries only; null where jsonb cannot hold the event (a \u0000, a lone surrogate): stored all the same.
    payload = models.JSONField(null=True, blank=True, help_text="A queryable copy of the event.")
    source = models.CharField(max_length=16, choices=EventSource.choices, default=EventSource.WEBHOOK)
    # The request id of the delivery that stored it, so the worker's log lines for it carry it too.
    request_id = models.CharField(max_length=REQUEST_ID_MAX_LENGTH, blank=True, default="", editable=False)
    status = models.CharField(max_length=16, choices=EventStatus.choices, default=EventStatus.RECEIVED)
    attempts = models.PositiveIntegerField(default=0, help_text="How many times it was processed.")
    outcome = models.TextField(blank=True, default="", help_text="What processing did, or why it did not.")
    last_error = models.TextField(blank=True, default="", help_text="The traceback of the last failure.")
    order = models.ForeignKey(
        "orders.Order", on_delete=models.SET_NULL, null=True, blank=True, related_name="stripe_events"
    )
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # The row is its own queue entry: due from next_attempt_at (null once finished), held by one worker until
    # claimed_until (a worker that dies lets it lapse).
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["status", "received_at"], name="stripeevent_status_recv_idx"),
            # The events admin's ordering, newest first, and its type filter's order within a type.
            models.Index(fields=["received_at", "id"], name="stripeevent_received_id_idx"),
            models.Index(fields=["type", "received_at"], name="stripeevent_type_recv_idx"),
            # The queue: only the events still to process, in the order they are due.
            models.Index(
                fields=["next_attempt_at", "id"],
                condition=models.Q(status__in=UNFINISHED_STATUSES, next_attempt_at__isnull=False),
                name="stripeevent_queue_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=EventStatus.values), name="stripeevent_status_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stripe_id} {self.type} ({self.status})"

    @property
    def event(self) -> dict:
        """Return the event as Stripe sent it, parsed from the stored body."""
        return json.loads(self.payload_text)


class EmailKind(models.TextChoices):
    ORDER_CONFIRMATION = "order_confirmation", "Order confirmation"
    REFUND_NOTICE = "refund_notice", "Refund notice"
    PAYMENT_FAILED = "payment_failed", "Payment failed"


class EmailStatus(models.TextChoices):
    OWED = "owed", "Owed"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class CustomerEmail(models.Model):
    """An e-mail owed to a buyer: its own outbox and queue entry (payments.emails), sent at most once."""

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="emails")
    kind = models.CharField(max_length=32, choices=EmailKind.choices)
    refund = models.ForeignKey(
        "orders.OrderRefund", on_delete=models.PROTECT, null=True, blank=True, related_name="emails"
    )
    to_address = models.EmailField("to")
    status = models.CharField(max_length=16, choices=EmailStatus.choices, default=EmailStatus.OWED)
    attempts = models.PositiveIntegerField(default=0)
    # Due from next_attempt_at; while `sending`, held by one worker until claimed_until.
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        # The queue in the order it is due, the lease sweep's rows, Needs attention's: each few, each partial.
        indexes = [
            models.Index(
                fields=["next_attempt_at", "id"], condition=Q(status="owed"), name="customeremail_due_idx"
            ),
            models.Index(
                fields=["claimed_until"], condition=Q(status="sending"), name="customeremail_sending_idx"
            ),
            models.Index(fields=["id"], condition=Q(status="failed"), name="customeremail_failed_idx"),
        ]
        # One e-mail per order and reason, one per refund: a second insert is a no-op.
        constraints = [
            models.UniqueConstraint(
                fields=["order", "kind"],
                condition=~Q(kind="refund_notice"),
                name="customeremail_once_per_order",
            ),
            models.UniqueConstraint(
                fields=["refund"], condition=Q(kind="refund_notice"), name="customeremail_once_per_refund"
            ),
        ]
        permissions = [("resend_customeremail", "Can send a failed customer e-mail again")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of order {self.order_id} ({self.status})"
