"""Build Stripe events shaped as Stripe sends them, and sign them as Stripe signs them."""

import hashlib
import hmac
import itertools
import json
import time
from typing import Any

from django.test import Client

from orders.models import Order, Product
from orders.services import order_attach_checkout_session, order_create
from payments import gateway
from payments.handlers import EventOutcome
from payments.inbox import TRANSITION_SOURCES, stripe_event_intake, stripe_event_process
from payments.models import UNFINISHED_STATUSES, StripeEvent
from payments.tests.conftest import WEBHOOK_SECRET
from payments.worker import Worker

_counter = itertools.count(1)

WEBHOOK_URL = "/stripe-webhook"


def new_id(prefix: str) -> str:
    """Return a fresh id with Stripe's prefix, unique within the test run."""
    return f"{prefix}{time.time_ns():x}{next(_counter):06d}"


def open_order(product: Product, *, quantity: int = 1, session_id: str | None = None) -> Order:
    """Return a pending order whose Checkout Session was opened, as the checkout leaves it."""
    order = order_create(lines=[(product, quantity)])
    order_attach_checkout_session(order_id=order.pk, session_id=session_id or new_id("cs_test_"))
    return Order.objects.get(pk=order.pk)


def emulator_order(product: Product, *, quantity: int = 1) -> tuple[Order, gateway.CheckoutSession]:
    """Return a pending order and the Checkout Session opened for it on the emulator (or Stripe)."""
    order = order_create(lines=[(product, quantity)])
    session = gateway.checkout_session_create(
        order_id=str(order.pk),
        line_items=[(product.stripe_price_id, quantity)],
        success_url="http://testserver/success?session_id={CHECKOUT_SESSION_ID}",
        cancel_url="http://testserver/cancel",
        expires_at=int(time.time()) + 3600,
    )
    order_attach_checkout_session(order_id=order.pk, session_id=session.id)
    return Order.objects.get(pk=order.pk), session


def checkout_session(
    order: Order | None = None,
    *,
    session_id: str | None = None,
    status: str = "complete",
    payment_status: str = "paid",
    amount_total: int | None = None,
    currency: str | None = None,
    order_ref: str | None = None,
    email: str = "buyer@example.com",
) -> dict[str, Any]:
    """Return a Checkout Session payload for an order (the fields Stripe sends that the project reads)."""
    reference = order_ref if order_ref is not None else (str(order.pk) if order else None)
    return {
        "id": session_id or (order.stripe_checkout_session_id if order else None) or new_id("cs_test_"),
        "object": "checkout.session",
        "amount_subtotal": amount_total
        if amount_total is not None
        else (order.amount_subtotal if order else 0),
        "amount_total": amount_total if amount_total is not None else (order.amount_total if order else 0),
        "client_reference_id": reference,
        "currency": currency or (order.currency if order else "usd"),
        "customer_details": {"email": email, "name": "Test Buyer"} if status == "complete" else None,
        "customer_email": None,
        "livemode": False,
        "metadata": {"order_id": reference} if reference else {},
        "mode": "payment",
        "payment_intent": new_id("pi_") if status == "complete" else None,
        "payment_status": payment_status,
        "status": status,
        "url": None,
    }


def event(event_type: str, data_object: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    """Return an Event wrapping an object, as Stripe's webhook body carries it."""
    return {
        "id": event_id or new_id("evt_"),
        "object": "event",
        "api_version": gateway.API_VERSION,
        "created": int(time.time()),
        "data": {"object": data_object},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def refund_object(order: Order, *, refund_id: str, amount: int, status: str, **extra) -> dict:
    """Return a Refund of the order's payment, as refund.* and charge.refunded events carry it."""
    return {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "charge": "ch_test",
        "currency": "usd",
        "metadata": {},
        "payment_intent": order.stripe_payment_intent_id,
        "reason": None,
        "status": status,
        **extra,
    }


def dispute_object(order: Order, *, dispute_id: str, status: str) -> dict:
    """Return a Dispute of the order's whole payment, as charge.dispute.* events carry it."""
    return {
        "id": dispute_id,
        "object": "dispute",
        "amount": order.amount_total,
        "charge": "ch_test",
        "currency": "usd",
        "evidence_details": {"due_by": 1893456000},
        "payment_intent": order.stripe_payment_intent_id,
        "reason": "product_not_received",
        "status": status,
    }


def session_event(event_type: str, order: Order | None = None, **session: Any) -> dict[str, Any]:
    """Return a checkout.session.* event for an order."""
    return event(event_type, checkout_session(order, **session))


def receive(evt: dict[str, Any], *, source: str = "webhook") -> EventOutcome:
    """Take the event in as the webhook does, then process it and send what it owes as a worker would."""
    taken = stripe_event_intake(event=evt, source=source)
    row = StripeEvent.objects.get(stripe_id=evt["id"])
    if taken.duplicate and row.status not in UNFINISHED_STATUSES:
        return EventOutcome(row.stripe_id, row.type, row.status, "already finished", duplicate=True)
    outcome = stripe_event_process(
        pk=row.pk, event=row.event, transition_source=TRANSITION_SOURCES[row.source]
    )
    Worker(name="test").send_owed(outcome)
    return outcome


def sign(payload: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """Return a Stripe-Signature header: t=<timestamp>,v1=HMAC-SHA256(secret, "<t>.<payload>")."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def body(evt: dict[str, Any]) -> bytes:
    """Return an event serialised as Stripe serialises a webhook body."""
    return json.dumps(evt, indent=2).encode()


def deliver(
    client: Client, evt: dict[str, Any] | bytes, *, signature: str | None = None, url: str = WEBHOOK_URL
):
    """POST an event to the webhook as Stripe would, signed with the test secret unless told otherwise."""
    payload = evt if isinstance(evt, bytes) else body(evt)
    headers = {"Stripe-Signature": signature if signature is not None else sign(payload)}
    return client.post(url, data=payload, content_type="application/json", headers=headers)
