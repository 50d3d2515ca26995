"""Handlers for the /v1 endpoints of money after a payment: charges, refunds, disputes."""

from __future__ import annotations

import copy
from typing import Any

from . import listing, validate
from .catalog import MAX_AMOUNT
from .errors import StripeError
from .expand import Expander
from .http_types import ApiRequest
from .refunds import RefundFlow
from .store import Store

REFUND_CREATE_PARAMS = ("charge", "payment_intent", "amount", "reason", "metadata", "expand")


class MoneyApi:
    """Answer /v1 requests on charges, refunds and disputes."""

    def __init__(self, store: Store, refunds: RefundFlow) -> None:
        self._store = store
        self._refunds = refunds
        self._expander = Expander(store)

    def routes(self) -> list[tuple[str, str, Any]]:
        """Return (method, path regex, handler) for every endpoint of this front."""
        return [
            ("GET", r"/v1/charges", self.list_charges),
            ("GET", r"/v1/charges/([^/]+)", self.retrieve_charge),
            ("POST", r"/v1/refunds", self.create_refund),
            ("GET", r"/v1/refunds", self.list_refunds),
            ("GET", r"/v1/refunds/([^/]+)", self.retrieve_refund),
            ("GET", r"/v1/disputes", self.list_disputes),
            ("GET", r"/v1/disputes/([^/]+)", self.retrieve_dispute),
        ]

    def create_refund(self, req: ApiRequest) -> dict[str, Any]:
        """Refund a charge, named directly or by its PaymentIntent."""
        p = req.params
        validate.reject_unknown(p, REFUND_CREATE_PARAMS)
        expand = validate.expand_paths(p)
        Expander.check("refund", expand)
        amount = None
        if p.get("amount"):
            amount = validate.as_int(p["amount"], "amount", minimum=1, maximum=MAX_AMOUNT)
        refund = self._refunds.create(
            charge_id=validate.optional_string(p, "charge"),
            intent_id=validate.optional_string(p, "payment_intent"),
            amount=amount,
            reason=validate.optional_string(p, "reason"),
            metadata=validate.metadata(p.get("metadata", {})),
            request_id=req.request_id,
            idempotency_key=req.idempotency_key,
        )
        with self._store.lock:
            return self._expander.render(refund, expand, "refund")

    def retrieve_refund(self, req: ApiRequest) -> dict[str, Any]:
        """Retrieve a refund."""
        return self._retrieve(req, "refunds", "refund")

    def list_refunds(self, req: ApiRequest) -> dict[str, Any]:
        """List refunds, newest first, filtered by charge or payment_intent."""
        return self._list(req, "refunds", "refund", "/v1/refunds")

    def retrieve_charge(self, req: ApiRequest) -> dict[str, Any]:
        """Retrieve a charge."""
        return self._retrieve(req, "charges", "charge")

    def list_charges(self, req: ApiRequest) -> dict[str, Any]:
        """List charges, newest first, filtered by payment_intent."""
        return self._list(req, "charges", "charge", "/v1/charges")

    def retrieve_dispute(self, req: ApiRequest) -> dict[str, Any]:
        """Retrieve a dispute."""
        return self._retrieve(req, "disputes", "dispute")

    def list_disputes(self, req: ApiRequest) -> dict[str, Any]:
        """List disputes, newest first, filtered by charge or payment_intent."""
        return self._list(req, "disputes", "dispute", "/v1/disputes")

    def _retrieve(self, req: ApiRequest, collection: str, kind: str) -> dict[str, Any]:
        validate.reject_unknown(req.params, ("expand",))
        expand = validate.expand_paths(req.params)
        with self._store.lock:
            found = self._store.get(collection, req.path_args[0])
            if found is None:
                raise StripeError.no_such(kind, req.path_args[0])
            return self._expander.render(found, expand, kind)

    def _list(self, req: ApiRequest, collection: str, kind: str, url: str) -> dict[str, Any]:
        p = req.params
        filters = ("payment_intent",) if kind == "charge" else ("charge", "payment_intent")
        validate.reject_unknown(p, (*listing.PAGINATION_PARAMS, "created", *filters))
        wanted = {name: validate.optional_string(p, name) for name in filters}
        created = listing.created_filter(p)
        with self._store.lock:
            items = [
                o
                for o in self._store.newest_first(collection)
                if all(value is None or o[name] == value for name, value in wanted.items())
                and created(o["created"])
            ]
            page = listing.paginate(
                items, p, url=url, kind=kind, object_id=lambda o: o["id"], render=copy.deepcopy
            )
            return self._expander.render(page, validate.expand_paths(p), f"list:{kind}")
