"""The catalog, the orders and the append-only log of every order's transitions."""

import uuid

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Upper

MIN_QUANTITY = 1
MAX_QUANTITY = 100
MAX_LINES = 20


class Product(models.Model):
    """An item the shop sells; its price lives here and nowhere the browser can touch."""

    sku = models.SlugField(max_length=64, unique=True, help_text="What the checkout form sends.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    unit_amount = models.PositiveIntegerField(help_text="Price in the currency's minor unit (cents).")
    currency = models.CharField(
        max_length=3,
        default="usd",
        validators=[RegexValidator(r"^[a-z]{3}$", "Use a lowercase ISO 4217 code, such as usd.")],
    )
    stripe_product_id = models.CharField(max_length=255, blank=True, null=True, unique=True)
    stripe_price_id = models.CharField(max_length=255, blank=True, null=True, unique=True)
    active = models.BooleanField(default=True)
    # An order takes its lines' quantities when it is made, and gives them back once if it closes unpaid.
    stock = models.PositiveIntegerField(null=True, blank=True, help_text="Empty means unlimited.")
    requires_shipping = models.BooleanField(default=False, help_text="Checkout asks for an address.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["unit_amount", "sku"]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"


class OrderStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    CONFIRMED = "confirmed", "Confirmed"
    FULFILLED = "fulfilled", "Fulfilled"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"
    REFUNDED = "refunded", "Refunded"


# The sets every rule asks about (set after the class: in its body they would become statuses).
# Open: waiting to be fulfilled. Closed: unpaid, so a payment that reaches it is a late payment.
# Paid: Stripe took the money (some may have gone back). Final: only `refund` can still move it.
OrderStatus.OPEN = frozenset({OrderStatus.PENDING, OrderStatus.CONFIRMED})
OrderStatus.CLOSED = frozenset({OrderStatus.FAILED, OrderStatus.EXPIRED})
OrderStatus.PAID = frozenset({OrderStatus.CONFIRMED, OrderStatus.FULFILLED, OrderStatus.REFUNDED})
OrderStatus.FINAL = frozenset({OrderStatus.FULFILLED, OrderStatus.REFUNDED}) | OrderStatus.CLOSED


class Order(models.Model):
    """One purchase of 1 to 20 lines in one currency; its status moves only through `orders.transitions`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Minor units. The subtotal is the lines' sum at order time; the rest is what Stripe's paid session
    # says (a promotion code, tax, shipping): until then the total is the subtotal.
    amount_subtotal = models.PositiveIntegerField()
    amount_discount = models.PositiveIntegerField(default=0)
    amount_tax = models.PositiveIntegerField(default=0)
    amount_shipping = models.PositiveIntegerField(default=0)
    amount_total = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    promotion_code = models.CharField(max_length=255, blank=True, default="")
    shipping_address = models.TextField(blank=True, default="")
    shipping_rate = models.CharField(max_length=255, blank=True, default="")
    holds_stock = models.BooleanField(default=False, editable=False)
    status = models.CharField(
        max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING, editable=False
    )
    # Written by the same UPDATE that changes `status` (SQL evaluates every SET against the old row),
    # so the winner of a transition learns which state it moved the order from.
    previous_status = models.CharField(
        max_length=16, choices=OrderStatus.choices, blank=True, default="", editable=False
    )
    stripe_checkout_session_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    # The one-time token of the checkout form that created this order: a double-clicked submit posts
    # the same token twice and finds this order instead of creating a second one.
    checkout_token = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    stripe_payment_intent_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    customer_email = models.EmailField(blank=True, default="")
    payment_pending = models.BooleanField(
        default=False,
        help_text="Set while a delayed payment method (a bank debit) waits for Stripe to report the outcome.",
    )
    failure_reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    # The outbox of `order_fulfilled` (orders.signals): null on a fulfilled order, the signal is owed.
    fulfillment_signalled_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Recomputed from the refund and dispute rows by `orders.refunds`, never added to.
    amount_refunded = models.PositiveIntegerField(
        default=0, editable=False, help_text="Refunded or lost to disputes, in minor units."
    )
    refunded_at = models.DateTimeField(null=True, blank=True)
    # Set when the order and Stripe's money cannot agree by themselves (a late payment): the order waits in
    # the admin's Needs attention page until a person settles it.
    needs_attention = models.BooleanField(default=False, db_index=True, editable=False)
    attention_reason = models.TextField(blank=True, default="", editable=False)
    attention_settled_at = models.DateTimeField(null=True, blank=True, editable=False)
    attention_settled_by = models.CharField(max_length=150, blank=True, default="", editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="order_status_created_idx"),
            # The admin's ordering (-created_at, then -pk to break ties): a deep page walks only this index.
            models.Index(fields=["created_at", "id"], name="order_created_id_idx"),
            # The admin's search by e-mail, in any case.
            models.Index(Upper("customer_email"), name="order_email_upper_idx"),
            # The Needs attention page's newest flagged orders: only the flagged ones, a few rows.
            models.Index(
                fields=["created_at", "id"],
                condition=models.Q(needs_attention=True),
                name="order_attention_created_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=OrderStatus.values), name="order_status_known"
            ),
            models.CheckConstraint(
                condition=models.Q(amount_refunded__gte=0, amount_refunded__lte=models.F("amount_total")),
                name="order_amount_refunded_within_total",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    amount_total=models.F("amount_subtotal")
                    - models.F("amount_discount")
                    + models.F("amount_tax")
                    + models.F("amount_shipping")
                ),
                name="order_total_adds_up",
            ),
        ]
        permissions = [
            ("refund_order", "Can refund orders through Stripe"),
            ("close_order", "Can fail or expire an order (closes its Checkout Session at Stripe)"),
            ("fulfill_order", "Can fulfill an order whose Checkout Session Stripe says is paid"),
        ]

    def __str__(self) -> str:
        return f"Order {self.id} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in OrderStatus.FINAL

    @property
    def reference(self) -> str:
        return order_reference(self.pk)

    @property
    def summary(self) -> str:
        """Return the lines as a person reads them: 'Mug × 2, Sticker pack × 1'."""
        return ", ".join(f"{line.product.name} × {line.quantity}" for line in self.lines.all())

    @property
    def fully_refunded(self) -> bool:
        return self.amount_refunded >= self.amount_total

    def being_refunded(self) -> bool:
        """Return whether the money is going back: refunded in full, or a refund Stripe has taken (a
        request Stripe never answered is not on its way)."""
        return self.fully_refunded or self.refunds.filter(status__in=RefundStatus.TAKEN).exists()


class OrderLine(models.Model):
    """A product and a quantity of an order, at the catalog's price when the order was made."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_lines")
    quantity = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(MIN_QUANTITY), MaxValueValidator(MAX_QUANTITY)]
    )
    unit_amount = models.PositiveIntegerField(help_text="The catalog price when the order was made.")

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["order", "product"], name="order_line_product_once"),
            models.CheckConstraint(
                condition=models.Q(quantity__gte=MIN_QUANTITY, quantity__lte=MAX_QUANTITY),
                name="order_line_quantity_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product.sku}"

    @property
    def amount(self) -> int:
        return self.unit_amount * self.quantity

    @property
    def currency(self) -> str:
        """An order has one currency, so its lines are in it."""
        return self.order.currency


SHORT_REFERENCE_LENGTH = 8


def order_reference(order_id: uuid.UUID) -> str:
    """Return the short reference people read and type for an order: its id's first 8 hex digits."""
    return order_id.hex[:SHORT_REFERENCE_LENGTH]


class TransitionSource(models.TextChoices):
    REDIRECT = "redirect", "Success redirect"
    WEBHOOK = "webhook", "Webhook"
    REPLAY = "replay", "Event replay"
    RECONCILE = "reconcile", "Reconciliation"
    ADMIN = "admin", "Admin"
    COMMAND = "command", "Management command"
    SYSTEM = "system", "System"


class OrderTransition(models.Model):
    """One status change, written by the caller that won it, in the same transaction."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=16, choices=OrderStatus.choices)
    to_status = models.CharField(max_length=16, choices=OrderStatus.choices)
    source = models.CharField(max_length=16, choices=TransitionSource.choices)
    stripe_event_id = models.CharField(max_length=255, null=True, blank=True)
    note = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["order", "created_at"], name="transition_order_idx"),
            # Counts by source (`/metrics`, the admin's dashboard) read this index, never the whole log.
            models.Index(fields=["source"], name="transition_source_idx"),
            # The transitions admin lists the newest first.
            models.Index(fields=["created_at", "id"], name="transition_created_id_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.from_status} → {self.to_status} ({self.source})"


class RefundStatus(models.TextChoices):
    REQUESTED = "requested", "Requested (not yet answered by Stripe)"
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


# Reserving: holding part of the order's money, gone or on its way. Taken: by Stripe, on its way or there.
# Unsettled: money a buyer is still owed (requested, pending) or that Stripe could not send (failed).
RefundStatus.RESERVING = frozenset({RefundStatus.REQUESTED, RefundStatus.PENDING, RefundStatus.SUCCEEDED})
RefundStatus.TAKEN = frozenset({RefundStatus.PENDING, RefundStatus.SUCCEEDED})
RefundStatus.UNSETTLED = frozenset({RefundStatus.REQUESTED, RefundStatus.PENDING, RefundStatus.FAILED})


class RefundReason(models.TextChoices):
    """Stripe's list of refund reasons; blank when none was given."""

    DUPLICATE = "duplicate", "Duplicate"
    FRAUDULENT = "fraudulent", "Fraudulent"
    REQUESTED_BY_CUSTOMER = "requested_by_customer", "Requested by customer"


class RefundRequester(models.TextChoices):
    ADMIN = "admin", "Admin"
    COMMAND = "command", "Management command"
    AUTOMATIC = "automatic", "Automatic"
    DASHBOARD = "dashboard", "Stripe Dashboard (learnt by webhook)"


class OrderRefund(models.Model):
    """One refund of an order's payment: asked for here first, or learnt of from Stripe's webhooks."""

    # A UUID, for the idempotency key `refund:<id>`: a counter would repeat after a database reset.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    # Null until Stripe answers the request (for ever when Stripe refused or could not be reached).
    stripe_refund_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    amount = models.PositiveIntegerField(help_text="In the currency's minor unit.")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=RefundStatus.choices, default=RefundStatus.REQUESTED)
    reason = models.CharField(max_length=32, choices=RefundReason.choices, blank=True, default="")
    requested_by = models.CharField(max_length=16, choices=RefundRequester.choices)
    requested_by_user = models.CharField(
        max_length=150, blank=True, default="", help_text="The admin user who asked, if one did."
    )
    failure_reason = models.TextField(blank=True, default="")
    # The outbox of `order_refunded` (orders.signals).
    signalled_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["order", "status"], name="refund_order_status_idx"),
            # The Needs attention page's refunds not settled, the oldest first, and the refunds list's filter.
            models.Index(fields=["status", "created_at"], name="refund_status_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="refund_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(status__in=RefundStatus.values), name="refund_status_known"
            ),
        ]

    def __str__(self) -> str:
        return f"Refund {self.stripe_refund_id or self.id} of order {self.order_id} ({self.status})"


class DisputeStatus(models.TextChoices):
    WARNING_NEEDS_RESPONSE = "warning_needs_response", "Inquiry: needs response"
    WARNING_UNDER_REVIEW = "warning_under_review", "Inquiry: under review"
    WARNING_CLOSED = "warning_closed", "Inquiry: closed"
    NEEDS_RESPONSE = "needs_response", "Needs response"
    UNDER_REVIEW = "under_review", "Under review"
    WON = "won", "Won"
    LOST = "lost", "Lost"
    PREVENTED = "prevented", "Prevented"


# Waiting for the shop's evidence, which is due by a date (or the dispute is lost).
DisputeStatus.AWAITING_RESPONSE = frozenset(
    {DisputeStatus.NEEDS_RESPONSE, DisputeStatus.WARNING_NEEDS_RESPONSE}
)


class OrderDispute(models.Model):
    """One dispute (chargeback or inquiry) of an order's payment, as Stripe's webhooks report it."""

    stripe_dispute_id = models.CharField(max_length=255, unique=True)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="disputes")
    amount = models.PositiveIntegerField(help_text="In the currency's minor unit.")
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=32, choices=DisputeStatus.choices)
    evidence_due_by = models.DateTimeField(null=True, blank=True)
    # The outbox of `order_disputed`: the last status its receivers were told of (orders.signals).
    signalled_status = models.CharField(max_length=32, blank=True, default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            # The Needs attention page's open disputes, the evidence due soonest first.
            models.Index(fields=["status", "evidence_due_by"], name="dispute_status_due_idx"),
        ]

    def __str__(self) -> str:
        return f"Dispute {self.stripe_dispute_id} of order {self.order_id} ({self.status})"
