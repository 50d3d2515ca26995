"""The catalog, the orders and the append-only log of every order's transitions."""

import uuid

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Upper

MIN_QUANTITY = 1
MAX_QUANTITY = 100


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


class Order(models.Model):
    """One purchase of one product; its status moves only through `orders.transitions`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="orders")
    quantity = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(MIN_QUANTITY), MaxValueValidator(MAX_QUANTITY)]
    )
    unit_amount = models.PositiveIntegerField(help_text="The catalog price when the order was made.")
    amount_total = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
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
    stripe_payment_intent_id = models.CharField(max_length=255, blank=True, default="")
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
    # Set in the same transaction as the `order_fulfilled` receivers run in: null on a fulfilled order
    # means the process died between the fulfilling commit and the signal, and the signal is still owed.
    fulfillment_signalled_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="order_status_created_idx"),
            # The admin's ordering (-created_at, then -pk to break ties): a deep page walks only this index.
            models.Index(fields=["created_at", "id"], name="order_created_id_idx"),
            # The admin's searches (orders/search.py): an e-mail in any case, a PaymentIntent id.
            models.Index(Upper("customer_email"), name="order_email_upper_idx"),
            models.Index(fields=["stripe_payment_intent_id"], name="order_payment_intent_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gte=MIN_QUANTITY, quantity__lte=MAX_QUANTITY),
                name="order_quantity_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=OrderStatus.values), name="order_status_known"
            ),
        ]

    def __str__(self) -> str:
        return f"Order {self.id} ({self.status})"

    @property
    def is_final(self) -> bool:
        """Return whether no transition can move this order any more."""
        return self.status in FINAL_STATUSES


FINAL_STATUSES = frozenset({OrderStatus.FULFILLED, OrderStatus.FAILED, OrderStatus.EXPIRED})


class TransitionSource(models.TextChoices):
    REDIRECT = "redirect", "Success redirect"
    WEBHOOK = "webhook", "Webhook"
    REPLAY = "replay", "Event replay"
    RECONCILE = "reconcile", "Reconciliation"
    ADMIN = "admin", "Admin"
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
            # The transitions admin lists the newest first.
            models.Index(fields=["created_at", "id"], name="transition_created_id_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.from_status} → {self.to_status} ({self.source})"
