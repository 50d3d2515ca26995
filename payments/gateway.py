"""Every call to Stripe, and the only module that imports `stripe`.

Stripe's errors become the app's own exceptions (`translated`) and its objects plain values, so nothing
else depends on stripe-python's types. Stripe and the offline emulator differ only by `STRIPE_API_BASE`.
"""

import inspect
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache, wraps
from typing import Any, TypeVar

import stripe
from django.conf import settings

from payments.exceptions import (
    NotOurs,
    PaymentProviderNotConfigured,
    PaymentProviderRefused,
    PaymentProviderUnavailable,
    StripeResourceMissing,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
)

API_VERSION = stripe.api_version
F = TypeVar("F", bound=Callable[..., Any])
WEBHOOK_TOLERANCE_SECONDS = stripe.Webhook.DEFAULT_TOLERANCE


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    status: str  # open, complete, expired
    payment_status: str  # unpaid, paid, no_payment_required
    amount_total: int | None
    currency: str | None
    client_reference_id: str | None
    metadata: dict[str, str]
    payment_intent_id: str
    customer_email: str
    url: str | None
    amount_subtotal: int | None = None
    # From `total_details`, 0 where Stripe gave none.
    amount_discount: int = 0
    amount_tax: int = 0
    amount_shipping: int = 0
    promotion_code: str = ""
    shipping_rate: str = ""
    shipping_address: str = ""

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> "CheckoutSession":
        """Build from a session of any API version: the address moved from `shipping` to `shipping_details`
        to `collected_information.shipping_details`, the rate from `shipping_rate` to `shipping_cost`."""
        details = data.get("customer_details") or {}
        totals = data.get("total_details") or {}
        shipping = (data.get("collected_information") or {}).get("shipping_details")
        discounts = data.get("discounts") or [{}]
        return cls(
            id=data["id"],
            status=data.get("status") or "",
            payment_status=data.get("payment_status") or "",
            amount_total=data.get("amount_total"),
            currency=data.get("currency"),
            client_reference_id=data.get("client_reference_id"),
            metadata=dict(data.get("metadata") or {}),
            payment_intent_id=_id_of(data.get("payment_intent")),
            customer_email=details.get("email") or data.get("customer_email") or "",
            url=data.get("url"),
            amount_subtotal=data.get("amount_subtotal"),
            amount_discount=totals.get("amount_discount") or 0,
            amount_tax=totals.get("amount_tax") or 0,
            amount_shipping=totals.get("amount_shipping") or 0,
            promotion_code=_id_of(discounts[0].get("promotion_code")),
            shipping_rate=_id_of(
                (data.get("shipping_cost") or {}).get("shipping_rate") or data.get("shipping_rate")
            ),
            shipping_address=_address(shipping or data.get("shipping_details") or data.get("shipping")),
        )

    def named_order_id(self) -> uuid.UUID:
        """Return the order this session was made for, or raise NotOurs saying why it names none.
        The checkout sets `metadata.order_id` and `client_reference_id` both; differing, it is nobody's."""
        named, referenced = self.metadata.get("order_id") or None, self.client_reference_id or None
        if named and referenced and named != referenced:
            raise NotOurs(f"its metadata names order {named!r} but its client_reference_id {referenced!r}")
        if not (named or referenced):
            raise NotOurs("it names no order")
        try:
            return uuid.UUID(str(named or referenced))
        except ValueError:
            raise NotOurs(f"order reference {named or referenced!r} is not an order id") from None


def _address(shipping: dict[str, Any] | None) -> str:
    if not shipping:
        return ""
    address = shipping.get("address") or {}
    town = " ".join(filter(None, (address.get("postal_code"), address.get("city"), address.get("state"))))
    parts = (shipping.get("name"), address.get("line1"), address.get("line2"), town, address.get("country"))
    return "\n".join(str(part) for part in parts if part)


def _id_of(value: Any) -> str:
    """Return the id of an expandable field, whether Stripe sent the id or the expanded object."""
    return (value.get("id") if isinstance(value, dict) else value) or ""


def _money_fields(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": data["id"],
        "status": data.get("status") or "",
        "amount": int(data.get("amount") or 0),
        "currency": data.get("currency") or "",
        "payment_intent_id": _id_of(data.get("payment_intent")),
        "charge_id": _id_of(data.get("charge")),
        "reason": data.get("reason") or "",
    }


@dataclass(frozen=True)
class StripeRefund:
    id: str
    status: str  # pending, requires_action, succeeded, failed, canceled
    amount: int
    currency: str
    payment_intent_id: str
    charge_id: str
    reason: str
    failure_reason: str
    metadata: dict[str, str]

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> "StripeRefund":
        failure_reason, metadata = data.get("failure_reason") or "", dict(data.get("metadata") or {})
        return cls(**_money_fields(data), failure_reason=failure_reason, metadata=metadata)


@dataclass(frozen=True)
class StripeDispute:
    id: str
    status: str  # warning_needs_response, needs_response, under_review, won, lost, ...
    amount: int
    currency: str
    payment_intent_id: str
    charge_id: str
    reason: str
    evidence_due_by: int | None  # a Unix time

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> "StripeDispute":
        return cls(**_money_fields(data), evidence_due_by=(data.get("evidence_details") or {}).get("due_by"))


@dataclass(frozen=True)
class StripePrice:
    id: str
    product_id: str
    unit_amount: int | None
    currency: str
    active: bool


# What `calls_paced` waits on before each HTTP request to Stripe.
_pace: ContextVar[Callable[[], None]] = ContextVar("stripe_pace", default=lambda: None)


@contextmanager
def calls_paced(wait: Callable[[], None]) -> Iterator[None]:
    """Call `wait` before every HTTP request to Stripe in this block (list pages and retries included)."""
    token = _pace.set(wait)
    try:
        yield
    finally:
        _pace.reset(token)


class _PacedRequestsClient(stripe.RequestsClient):
    def request(self, method, url, headers, post_data=None):
        _pace.get()()
        return super().request(method, url, headers, post_data)


@lru_cache(maxsize=8)
def _client(api_key: str, api_base: str, timeout: float, max_retries: int) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base} if api_base else None,
        max_network_retries=max_retries,
        http_client=_PacedRequestsClient(timeout=timeout),
    )


def key_is_live(key: str | None = None) -> bool:
    """Return whether the key (the configured one by default) takes real money: sk_live_ or rk_live_."""
    key = settings.STRIPE_SECRET_KEY if key is None else key
    return key.startswith(("sk_live_", "rk_live_"))


def dashboard_url(*, kind: str, object_id: str) -> str | None:
    """Return the Dashboard URL of a "checkout_session" or "payment_intent"; None without a key or with
    STRIPE_API_BASE (the emulator has no Dashboard)."""
    paths = {"checkout_session": "checkout/sessions", "payment_intent": "payments"}
    key = settings.STRIPE_SECRET_KEY
    if not key or settings.STRIPE_API_BASE or kind not in paths or not object_id:
        return None
    return f"https://dashboard.stripe.com{'' if key_is_live(key) else '/test'}/{paths[kind]}/{object_id}"


def client() -> stripe.StripeClient:
    if not settings.STRIPE_SECRET_KEY:
        raise PaymentProviderNotConfigured(
            "Stripe is not configured: set STRIPE_SECRET_KEY (and STRIPE_API_BASE for the offline "
            "emulator), or run the project with `python3 dev.py run`, which starts the emulator and sets "
            "both. A command typed in another shell while it runs needs the STRIPE_SECRET_KEY=... "
            "STRIPE_API_BASE=... line it prints under 'other shells'."
        )
    return _client(
        settings.STRIPE_SECRET_KEY,
        settings.STRIPE_API_BASE,
        settings.STRIPE_TIMEOUT_SECONDS,
        settings.STRIPE_MAX_NETWORK_RETRIES,
    )


@contextmanager
def _translating(what: str) -> Iterator[None]:
    try:
        yield
    except (stripe.InvalidRequestError, stripe.IdempotencyError) as exc:
        cls = StripeResourceMissing if exc.code == "resource_missing" else PaymentProviderRefused
        raise cls(f"Stripe refused to {what}: {exc.user_message or exc}") from exc
    except (stripe.AuthenticationError, stripe.PermissionError) as exc:
        raise PaymentProviderRefused(f"Stripe rejected our credentials while trying to {what}.") from exc
    except stripe.StripeError as exc:  # connection, rate limit, Stripe's own failure: worth trying again
        raise PaymentProviderUnavailable(f"Stripe is unavailable, could not {what}: {exc}") from exc


def translated(what: str) -> Callable[[F], F]:
    """Turn a call's Stripe errors into the app's own, saying `what` (formatted with the call's keyword
    arguments) was being done; a generator's errors are caught as it is read."""

    def decorate(call: F) -> F:
        if inspect.isgeneratorfunction(call):

            @wraps(call)
            def read(**kwargs: Any) -> Iterator[Any]:
                with _translating(what.format(**kwargs)):
                    yield from call(**kwargs)

            return read  # type: ignore[return-value]

        @wraps(call)
        def ask(**kwargs: Any) -> Any:
            with _translating(what.format(**kwargs)):
                return call(**kwargs)

        return ask  # type: ignore[return-value]

    return decorate


@translated("create a Checkout Session for order {order_id}")
def checkout_session_create(
    *,
    order_id: str,
    line_items: list[tuple[str, int]],
    success_url: str,
    cancel_url: str,
    expires_at: int,
    customer_email: str = "",
    promotion_codes: bool = False,
    automatic_tax: bool = False,
    shipping_countries: list[str] | None = None,
    shipping_rates: list[str] | None = None,
) -> CheckoutSession:
    """Create a payment-mode Checkout Session for one order, of (price id, quantity) lines; retries can
    never open a second one. With `shipping_countries`, Checkout asks for an address in one of them."""
    params = {  # stripe-python sends no parameter that is None
        "mode": "payment",
        "line_items": [{"price": price_id, "quantity": quantity} for price_id, quantity in line_items],
        "client_reference_id": order_id,
        "metadata": {"order_id": order_id},
        "payment_intent_data": {"metadata": {"order_id": order_id}},
        "success_url": success_url,
        "cancel_url": cancel_url,
        "expires_at": expires_at,
        "customer_email": customer_email or None,
        "allow_promotion_codes": promotion_codes or None,
        "automatic_tax": {"enabled": True} if automatic_tax else None,
    }
    if shipping_countries:
        params["shipping_address_collection"] = {"allowed_countries": shipping_countries}
        params["shipping_options"] = [{"shipping_rate": rate} for rate in shipping_rates or []] or None
    options = {"idempotency_key": f"checkout-session:{order_id}"}
    return CheckoutSession.from_payload(
        client().v1.checkout.sessions.create(params=params, options=options).to_dict()
    )


@translated("retrieve Checkout Session {session_id}")
def checkout_session_retrieve(*, session_id: str) -> CheckoutSession:
    return CheckoutSession.from_payload(client().v1.checkout.sessions.retrieve(session_id).to_dict())


@translated("expire Checkout Session {session_id}")
def checkout_session_expire(*, session_id: str) -> CheckoutSession:
    return CheckoutSession.from_payload(client().v1.checkout.sessions.expire(session_id).to_dict())


@translated("refund {amount} of payment {payment_intent_id}")
def refund_create(
    *, payment_intent_id: str, amount: int, reason: str, idempotency_key: str, metadata: dict[str, str]
) -> StripeRefund:
    """Refund part or all of a payment; the idempotency key makes retries of one request one refund."""
    params: dict[str, Any] = {"payment_intent": payment_intent_id, "amount": amount, "metadata": metadata}
    if reason:
        params["reason"] = reason
    refund = client().v1.refunds.create(params=params, options={"idempotency_key": idempotency_key})
    return StripeRefund.from_payload(refund.to_dict())


@translated("list the refunds of payment {payment_intent_id}")
def refunds_list(*, payment_intent_id: str) -> list[StripeRefund]:
    """Return every refund of a payment (a payment has few: Stripe caps them at its amount)."""
    listed = client().v1.refunds.list(params={"payment_intent": payment_intent_id, "limit": 100})
    return [StripeRefund.from_payload(refund.to_dict()) for refund in listed.auto_paging_iter()]


@translated("list the disputes of payment {payment_intent_id}")
def disputes_list(*, payment_intent_id: str) -> list[StripeDispute]:
    """Return every dispute of a payment (one per charge, so in practice one page)."""
    listed = client().v1.disputes.list(params={"payment_intent": payment_intent_id, "limit": 100})
    return [StripeDispute.from_payload(dispute.to_dict()) for dispute in listed.auto_paging_iter()]


@translated("retrieve payment {payment_intent_id}")
def payment_intent_order_id(*, payment_intent_id: str) -> str:
    """Return the order id the checkout put in the PaymentIntent's metadata ('' when there is none)."""
    data = client().v1.payment_intents.retrieve(payment_intent_id).to_dict()
    return (data.get("metadata") or {}).get("order_id") or ""


@translated("create the Stripe product for {sku}")
def product_create(*, name: str, description: str, sku: str) -> str:
    params = {"name": name, "metadata": {"sku": sku}, "description": description or None}
    options = {"idempotency_key": f"catalog-product:{sku}"}
    return client().v1.products.create(params=params, options=options).id


@translated("create the Stripe price for {sku}")
def price_create(
    *, product_id: str, unit_amount: int, currency: str, sku: str, replaces: str | None = None
) -> StripePrice:
    """Create a one-time Stripe Price for a Stripe Product, `replaces` naming the price it succeeds. The
    idempotency key names the amount (a retry returns the same price) and the price replaced (a price
    changed back to an earlier amount gets a new price, not the archived one)."""
    params = {
        "product": product_id,
        "unit_amount": unit_amount,
        "currency": currency,
        "metadata": {"sku": sku},
    }
    key = f"catalog-price:{sku}:{product_id}:{unit_amount}:{currency}"
    key += f":replaces:{replaces}" if replaces else ""
    return _price(client().v1.prices.create(params=params, options={"idempotency_key": key}))


@translated("archive Stripe price {price_id}")
def price_archive(*, price_id: str) -> StripePrice:
    """Archive a Stripe Price, so no new Checkout Session can use it (sessions already open keep it)."""
    return _price(client().v1.prices.update(price_id, params={"active": False}))


@translated("retrieve Stripe price {price_id}")
def price_retrieve(*, price_id: str) -> StripePrice:
    """Return a Stripe Price; StripeResourceMissing when Stripe has none with that id."""
    return _price(client().v1.prices.retrieve(price_id))


def _price(price: Any) -> StripePrice:
    product = price.product if isinstance(price.product, str) else price.product.id
    return StripePrice(price.id, product, price.unit_amount, price.currency, price.active)


@translated("list events")
def events_list(
    *, created_gte: int | None = None, types: list[str] | None = None, undelivered_only: bool = False
) -> Iterator[dict[str, Any]]:
    """Yield events from Stripe's Events API, newest first, page by page, as plain payload dicts."""
    params = {
        "limit": 100,
        "created": None if created_gte is None else {"gte": created_gte},
        "types": types or None,
        "delivery_success": False if undelivered_only else None,
    }
    for event in client().v1.events.list(params=params).auto_paging_iter():
        yield event.to_dict()


@translated("list the events Stripe has not delivered")
def events_undelivered(*, types: list[str], limit: int, timeout: float) -> list[tuple[str, int]]:
    """Return (id, created) of the newest events Stripe has not delivered to every endpoint: one page.
    Its own client, with a short timeout and no retry: the caller, a metrics scrape, must not wait long."""
    client()  # PaymentProviderNotConfigured without a key
    quick = _client(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE, timeout, 0)
    listed = quick.v1.events.list(params={"limit": limit, "types": types, "delivery_success": False})
    return [(event.id, event.created) for event in listed.data]


def webhook_event_verify(*, payload: bytes, signature_header: str | None) -> dict[str, Any]:
    """Verify a webhook against every configured secret and return the event as a dict: what
    `stripe.Webhook.construct_event` does, without stripe-python's objects the inbox would undo."""
    secrets = settings.STRIPE_WEBHOOK_SECRETS
    if not secrets:
        raise WebhookSignatureInvalid("No webhook secret is configured (STRIPE_WEBHOOK_SECRET).")
    if not signature_header:
        raise WebhookSignatureInvalid("Missing Stripe-Signature header.")
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        # stripe-python decodes the body before it checks anything, and would raise this out of the view.
        raise WebhookPayloadInvalid("Body is not UTF-8 text, so it is not a Stripe event.") from None
    last_error: stripe.SignatureVerificationError | None = None
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature_header, secret, WEBHOOK_TOLERANCE_SECONDS
            )
            break
        except stripe.SignatureVerificationError as exc:
            # A stale signature made with one secret says more than a mismatch with the others.
            if last_error is None or "tolerance" not in str(last_error.user_message):
                last_error = exc
    else:
        raise WebhookSignatureInvalid(_signature_reason(last_error)) from last_error
    if _signature_timestamp(signature_header) > time.time() + WEBHOOK_TOLERANCE_SECONDS:
        # stripe-python refuses only old timestamps; one this far ahead is a clock gone wrong or a
        # header made to be replayed later, so the window is kept symmetric.
        raise WebhookSignatureInvalid("Signature timestamp is outside the 300 s tolerance (in the future).")
    try:
        event = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise WebhookPayloadInvalid("Body is not JSON.") from None
    if not isinstance(event, dict) or event.get("object") != "event" or not event.get("id"):
        raise WebhookPayloadInvalid("Body is not a Stripe event.")
    if not isinstance(event.get("type"), str) or not isinstance(event.get("data"), dict):
        raise WebhookPayloadInvalid("Event has no type or no data.")
    if not is_identifier(event["id"]) or not is_identifier(event["type"]):
        raise WebhookPayloadInvalid("Event id or type is not an identifier Stripe would send.")
    return event


def is_identifier(value: object) -> bool:
    """Return whether an event's id or type looks like Stripe's: short, printable ASCII (never a NUL)."""
    return isinstance(value, str) and 0 < len(value) <= 128 and value.isascii() and value.isprintable()


def _signature_timestamp(signature_header: str) -> int:
    """Return the header's t= value (the first, as stripe-python reads it); it has been verified."""
    for item in signature_header.split(","):
        key, _, value = item.partition("=")
        if key == "t":
            return int(value)
    return 0


def _signature_reason(exc: stripe.SignatureVerificationError | None) -> str:
    message = str(exc.user_message if exc else "")
    if "tolerance" in message:
        return "Signature timestamp is outside the 300 s tolerance."
    if "Unable to extract" in message or "with expected scheme" in message:
        return "Malformed Stripe-Signature header (no v1 signature)."
    return "Signature does not match any configured webhook secret."
