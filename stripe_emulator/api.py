"""Handlers for the emulated slice of Stripe's /v1 API."""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable
from typing import Any

from . import cart, cart_params, listing, objects, validate
from .cart_params import CART_PARAMS
from .catalog import MAX_AMOUNT, Catalog, required
from .checkout import CheckoutFlow
from .errors import StripeError
from .expand import Expander
from .http_types import ApiRequest
from .store import EventRecord, SessionState, Store

Handler = Callable[[ApiRequest], dict[str, Any]]

MIN_EXPIRY = 30 * 60
MAX_EXPIRY = 24 * 60 * 60
# Leeway for the client's clock and the request's time in flight.
EXPIRY_LEEWAY = 5
MAX_EVENT_TYPES = 20
SUBMIT_TYPES = ("auto", "book", "donate", "pay", "subscribe")
SESSION_STATUSES = ("open", "complete", "expired")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

SESSION_CREATE_PARAMS = (
    "mode",
    "success_url",
    "cancel_url",
    "line_items",
    "client_reference_id",
    "metadata",
    "customer_email",
    "expires_at",
    "payment_intent_data",
    "expand",
    "locale",
    "submit_type",
    "payment_method_types",
    *CART_PARAMS,
)
INTENT_DATA_PARAMS = ("metadata", "description")


class StripeApi:
    """Answer /v1 requests against the store."""

    def __init__(self, store: Store, flow: CheckoutFlow, base_url: Callable[[], str]) -> None:
        self._store = store
        self._flow = flow
        self._base_url = base_url
        self._catalog = Catalog(store)
        self._expander = Expander(store)

    def routes(self) -> list[tuple[str, str, Handler]]:
        """Return (method, path regex, handler) for every emulated endpoint."""
        return [
            ("POST", r"/v1/products", self.create_product),
            ("GET", r"/v1/products", self.list_products),
            ("GET", r"/v1/products/([^/]+)", self.retrieve_product),
            ("POST", r"/v1/prices", self.create_price),
            ("GET", r"/v1/prices", self.list_prices),
            ("GET", r"/v1/prices/([^/]+)", self.retrieve_price),
            ("POST", r"/v1/prices/([^/]+)", self.update_price),
            ("POST", r"/v1/checkout/sessions", self.create_session),
            ("GET", r"/v1/checkout/sessions", self.list_sessions),
            ("GET", r"/v1/checkout/sessions/([^/]+)", self.retrieve_session),
            ("GET", r"/v1/checkout/sessions/([^/]+)/line_items", self.list_line_items),
            ("POST", r"/v1/checkout/sessions/([^/]+)/expire", self.expire_session),
            ("GET", r"/v1/payment_intents/([^/]+)", self.retrieve_payment_intent),
            ("GET", r"/v1/events", self.list_events),
            ("GET", r"/v1/events/([^/]+)", self.retrieve_event),
        ]

    # Products

    def create_product(self, req: ApiRequest) -> dict[str, Any]:
        """Create a product."""
        p = req.params
        validate.reject_unknown(p, ("name", "description", "metadata", "active", "images", "expand"))
        Expander.check("product", validate.expand_paths(p))
        name = validate.required_string(p, "name", max_length=5000)
        description = validate.optional_string(p, "description", max_length=40000)
        meta = validate.metadata(p.get("metadata", {}))
        active = validate.as_bool(p["active"], "active") if p.get("active") else True
        images = [
            validate.as_string(i, f"images[{n}]")
            for n, i in enumerate(validate.as_array(p.get("images", []), "images"))
        ]
        with self._store.lock:
            product = self._store.add(
                "products",
                objects.product(
                    name=name,
                    description=description,
                    metadata=meta,
                    active=active,
                    images=images,
                    created=int(time.time()),
                ),
            )
            return self._expander.render(product, validate.expand_paths(p))

    def retrieve_product(self, req: ApiRequest) -> dict[str, Any]:
        """Retrieve a product."""
        validate.reject_unknown(req.params, ("expand",))
        with self._store.lock:
            return self._expander.render(
                self._get("products", "product", req.path_args[0]), validate.expand_paths(req.params)
            )

    def list_products(self, req: ApiRequest) -> dict[str, Any]:
        """List products, newest first."""
        p = req.params
        validate.reject_unknown(p, (*listing.PAGINATION_PARAMS, "active", "created"))
        active = validate.as_bool(p["active"], "active") if p.get("active") else None
        created = listing.created_filter(p)
        with self._store.lock:
            items = [
                o
                for o in self._store.newest_first("products")
                if (active is None or o["active"] == active) and created(o["created"])
            ]
            return self._page(items, p, "/v1/products", "product")

    # Prices

    def create_price(self, req: ApiRequest) -> dict[str, Any]:
        """Create a one-time price."""
        p = req.params
        validate.reject_unknown(
            p,
            (
                "product",
                "product_data",
                "unit_amount",
                "currency",
                "metadata",
                "active",
                "nickname",
                "expand",
            ),
        )
        Expander.check("price", validate.expand_paths(p))
        currency = validate.as_currency(required(p, "currency"), "currency")
        amount = validate.as_int(required(p, "unit_amount"), "unit_amount", minimum=0, maximum=MAX_AMOUNT)
        meta = validate.metadata(p.get("metadata", {}))
        active = validate.as_bool(p["active"], "active") if p.get("active") else True
        nickname = validate.optional_string(p, "nickname", max_length=5000)
        with self._store.lock:
            product_id = self._catalog.product_id(self._catalog.product_spec(p, ""), active=True)
            price = self._store.add(
                "prices",
                objects.price(
                    product_id=product_id,
                    currency=currency,
                    unit_amount=amount,
                    metadata=meta,
                    active=active,
                    nickname=nickname,
                    created=int(time.time()),
                ),
            )
            return self._expander.render(price, validate.expand_paths(p))

    def retrieve_price(self, req: ApiRequest) -> dict[str, Any]:
        """Retrieve a price."""
        validate.reject_unknown(req.params, ("expand",))
        with self._store.lock:
            return self._expander.render(
                self._get("prices", "price", req.path_args[0]), validate.expand_paths(req.params)
            )

    def update_price(self, req: ApiRequest) -> dict[str, Any]:
        """Update what Stripe lets change on a price: active (archiving it), metadata, nickname."""
        p = req.params
        validate.reject_unknown(p, ("active", "metadata", "nickname", "expand"))
        Expander.check("price", validate.expand_paths(p))
        with self._store.lock:
            price = self._get("prices", "price", req.path_args[0])
            if "active" in p:
                price["active"] = validate.as_bool(p["active"], "active")
            if "metadata" in p:
                price["metadata"] = {**price["metadata"], **validate.metadata(p["metadata"])}
            if "nickname" in p:
                price["nickname"] = validate.optional_string(p, "nickname", max_length=5000)
            return self._expander.render(price, validate.expand_paths(p))

    def list_prices(self, req: ApiRequest) -> dict[str, Any]:
        """List prices, newest first, filtered by product, active, currency or type."""
        p = req.params
        validate.reject_unknown(
            p, (*listing.PAGINATION_PARAMS, "product", "active", "currency", "type", "created")
        )
        product = validate.optional_string(p, "product")
        active = validate.as_bool(p["active"], "active") if p.get("active") else None
        currency = validate.optional_string(p, "currency")
        price_type = validate.optional_string(p, "type")
        created = listing.created_filter(p)
        with self._store.lock:
            items = [
                o
                for o in self._store.newest_first("prices")
                if (product is None or o["product"] == product)
                and (active is None or o["active"] == active)
                and (currency is None or o["currency"] == currency.lower())
                and (price_type is None or o["type"] == price_type)
                and created(o["created"])
            ]
            return self._page(items, p, "/v1/prices", "price")

    # Checkout Sessions

    def create_session(self, req: ApiRequest) -> dict[str, Any]:
        """Create a Checkout Session in payment mode."""
        p = req.params
        validate.reject_unknown(p, SESSION_CREATE_PARAMS)
        Expander.check("checkout.session", validate.expand_paths(p))
        mode = validate.required_string(p, "mode")
        if mode != "payment":
            if mode in ("setup", "subscription"):
                raise StripeError.invalid(
                    f"This emulator only supports mode=payment, not mode={mode}.", param="mode"
                )
            raise StripeError.invalid(
                f"Invalid mode: must be one of payment, setup, or subscription (got {mode})", param="mode"
            )
        success_url = validate.url(required(p, "success_url"), "success_url")
        cancel_url = validate.url(p["cancel_url"], "cancel_url") if p.get("cancel_url") else None
        client_reference_id = validate.optional_string(p, "client_reference_id", max_length=200)
        customer_email = validate.optional_string(p, "customer_email", max_length=800)
        if customer_email is not None and not _EMAIL_RE.match(customer_email):
            raise StripeError.invalid(
                f"Invalid email address: {customer_email}", param="customer_email", code="email_invalid"
            )
        meta = validate.metadata(p.get("metadata", {}))
        now = int(time.time())
        expires_at = now + MAX_EXPIRY
        if p.get("expires_at"):
            expires_at = self._expires_at(p["expires_at"], now)
        intent_data = validate.as_hash(p.get("payment_intent_data", {}), "payment_intent_data")
        validate.reject_unknown(intent_data, INTENT_DATA_PARAMS, "payment_intent_data")
        intent_meta = validate.metadata(intent_data.get("metadata", {}), "payment_intent_data[metadata]")
        intent_description = validate.optional_string(
            intent_data, "description", "payment_intent_data[description]", max_length=1000
        )
        locale = validate.optional_string(p, "locale")
        submit_type = validate.optional_string(p, "submit_type")
        if submit_type is not None and submit_type not in SUBMIT_TYPES:
            raise StripeError.invalid(
                f"Invalid submit_type: must be one of {', '.join(SUBMIT_TYPES)}", param="submit_type"
            )
        method_types = [
            validate.as_string(t, f"payment_method_types[{n}]")
            for n, t in enumerate(
                validate.as_array(p.get("payment_method_types", []), "payment_method_types")
            )
        ]
        with self._store.lock:
            checked = self._catalog.check_line_items(p)
            currency = checked[0][0]["currency"]
            # Checked before inline prices are created, so an error leaves no trace.
            cart_fields = cart_params.session_fields(self._store, p, currency)
            prices, quantities = self._catalog.line_item_prices(checked)
            items = self._catalog.build_line_items(prices, quantities)
            session = objects.checkout_session(
                currency=currency,
                amount_total=sum(item["amount_total"] for item in items),
                success_url=success_url,
                cancel_url=cancel_url,
                client_reference_id=client_reference_id,
                customer_email=customer_email,
                metadata=meta,
                expires_at=expires_at,
                locale=locale,
                submit_type=submit_type,
                created=now,
                base_url=self._base_url(),
            )
            if method_types:
                session["payment_method_types"] = method_types
            session.update(cart_fields)
            state = SessionState(
                line_items=items, intent_metadata=intent_meta, intent_description=intent_description
            )
            # No customer address yet, so no tax to look up: tax waits for the payment.
            cart.refresh(self._store, session, state, tax_rates={})
            if session["amount_total"] > MAX_AMOUNT:
                raise StripeError.invalid(
                    f"The Checkout Session's total amount due must be no more than {MAX_AMOUNT}.",
                    param="line_items",
                    code="amount_too_large",
                )
            self._store.add("sessions", session)
            self._store.session_state[session["id"]] = state
            return self._expander.render(session, validate.expand_paths(p))

    def retrieve_session(self, req: ApiRequest) -> dict[str, Any]:
        """Retrieve a Checkout Session, expanding line_items or payment_intent on request."""
        validate.reject_unknown(req.params, ("expand",))
        self._flow.expire_overdue(req.path_args[0])
        with self._store.lock:
            session = self._get("sessions", "checkout.session", req.path_args[0])
            return self._expander.render(session, validate.expand_paths(req.params))

    def list_sessions(self, req: ApiRequest) -> dict[str, Any]:
        """List Checkout Sessions, newest first, filtered by payment_intent or status."""
        p = req.params
        validate.reject_unknown(
            p, (*listing.PAGINATION_PARAMS, "payment_intent", "status", "created", "customer_details")
        )
        intent = validate.optional_string(p, "payment_intent")
        status = validate.optional_string(p, "status")
        if status is not None and status not in SESSION_STATUSES:
            raise StripeError.invalid(
                f"Invalid status: must be one of {', '.join(SESSION_STATUSES)}", param="status"
            )
        details = validate.as_hash(p.get("customer_details", {}), "customer_details")
        validate.reject_unknown(details, ("email",), "customer_details")
        email = details.get("email")
        created = listing.created_filter(p)
        self._flow.expire_overdue()
        with self._store.lock:
            items = [
                s
                for s in self._store.newest_first("sessions")
                if (intent is None or s["payment_intent"] == intent)
                and (status is None or s["status"] == status)
                and (email is None or (s["customer_details"] or {}).get("email") == email)
                and created(s["created"])
            ]
            return self._page(items, p, "/v1/checkout/sessions", "checkout.session")

    def list_line_items(self, req: ApiRequest) -> dict[str, Any]:
        """List a session's line items."""
        validate.reject_unknown(req.params, listing.PAGINATION_PARAMS)
        session_id = req.path_args[0]
        with self._store.lock:
            self._get("sessions", "checkout.session", session_id)
            items = self._store.session_state[session_id].line_items
            page = listing.paginate(
                items,
                req.params,
                url=f"/v1/checkout/sessions/{session_id}/line_items",
                kind="item",
                object_id=lambda i: i["id"],
                render=copy.deepcopy,
            )
            return self._expander.render(page, validate.expand_paths(req.params), "list:item")

    def expire_session(self, req: ApiRequest) -> dict[str, Any]:
        """Expire an open Checkout Session."""
        validate.reject_unknown(req.params, ("expand",))
        session = self._flow.expire(
            req.path_args[0], request_id=req.request_id, idempotency_key=req.idempotency_key
        )
        with self._store.lock:
            return self._expander.render(session, validate.expand_paths(req.params))

    # Payment Intents

    def retrieve_payment_intent(self, req: ApiRequest) -> dict[str, Any]:
        """Retrieve a PaymentIntent created by a Checkout payment."""
        validate.reject_unknown(req.params, ("expand", "client_secret"))
        with self._store.lock:
            return self._expander.render(
                self._get("payment_intents", "payment_intent", req.path_args[0]),
                validate.expand_paths(req.params),
            )

    # Events

    def list_events(self, req: ApiRequest) -> dict[str, Any]:
        """List events, newest first, with Stripe's filters."""
        p = req.params
        validate.reject_unknown(
            p, (*listing.PAGINATION_PARAMS, "created", "type", "types", "delivery_success")
        )
        if p.get("type") and p.get("types"):
            raise StripeError.invalid(
                "You may only specify one of these parameters: type, types.", param="type"
            )
        type_match = _type_matcher(p)
        success = (
            validate.as_bool(p["delivery_success"], "delivery_success") if p.get("delivery_success") else None
        )
        created = listing.created_filter(p)
        with self._store.lock:
            records = [
                r
                for r in self._store.events_newest_first()
                if type_match(r.event["type"])
                and created(r.event["created"])
                and (success is None or (r.pending_webhooks == 0) == success)
            ]
            return listing.paginate(
                records, p, url="/v1/events", kind="event", object_id=_event_id, render=EventRecord.view
            )

    def retrieve_event(self, req: ApiRequest) -> dict[str, Any]:
        """Retrieve an event."""
        validate.reject_unknown(req.params, ("expand",))
        with self._store.lock:
            record = self._store.get_event(req.path_args[0])
            if record is None:
                raise StripeError.no_such("event", req.path_args[0])
            return record.view()

    # Helpers

    def _get(self, collection: str, kind: str, object_id: str) -> dict[str, Any]:
        obj = self._store.get(collection, object_id)
        if obj is None:
            raise StripeError.no_such(kind, object_id)
        return obj

    def _page(
        self, items: list[dict[str, Any]], params: dict[str, Any], url: str, kind: str
    ) -> dict[str, Any]:
        page = listing.paginate(
            items, params, url=url, kind=kind, object_id=lambda o: o["id"], render=copy.deepcopy
        )
        return self._expander.render(page, validate.expand_paths(params), f"list:{kind}")

    def _expires_at(self, value: Any, now: int) -> int:
        expires_at = validate.as_int(value, "expires_at")
        if expires_at < now + MIN_EXPIRY - EXPIRY_LEEWAY:
            raise StripeError.invalid(
                "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.",
                param="expires_at",
            )
        if expires_at > now + MAX_EXPIRY + EXPIRY_LEEWAY:
            raise StripeError.invalid(
                "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
                param="expires_at",
            )
        return expires_at


def _event_id(record: EventRecord) -> str:
    return record.event["id"]


def _type_matcher(params: dict[str, Any]) -> Callable[[str], bool]:
    if params.get("type"):
        pattern = validate.as_string(params["type"], "type")
        regex = re.compile("^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$")
        return lambda t: regex.match(t) is not None
    if params.get("types"):
        wanted = [
            validate.as_string(t, f"types[{n}]")
            for n, t in enumerate(validate.as_array(params["types"], "types"))
        ]
        if len(wanted) > MAX_EVENT_TYPES:
            raise StripeError.invalid(
                f"Invalid array: types can have at most {MAX_EVENT_TYPES} items.", param="types"
            )
        return lambda t: t in wanted
    return lambda _: True
