"""Handlers for the /v1 endpoints a cart uses: shipping rates, promotion codes and their coupons."""

from __future__ import annotations

import copy
import time
from typing import Any

from . import listing, objects, promotions, validate
from .catalog import MAX_AMOUNT, required
from .errors import StripeError
from .http_types import ApiRequest
from .store import Store

SHIPPING_RATE_PARAMS = ("display_name", "type", "fixed_amount", "metadata", "tax_behavior", "expand")
# Automatic tax here is exclusive only (see cart.py), so a rate that includes its tax is refused.
SHIPPING_TAX_BEHAVIORS = ("exclusive", "unspecified")
UPDATE_PARAMS = ("active", "metadata", "expand")


class CartApi:
    """Answer /v1 requests on shipping rates, promotion codes and coupons."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def routes(self) -> list[tuple[str, str, Any]]:
        """Return (method, path regex, handler) for every endpoint of this front."""
        return [
            ("POST", r"/v1/shipping_rates", self.create_shipping_rate),
            ("GET", r"/v1/shipping_rates", self.list_shipping_rates),
            ("GET", r"/v1/shipping_rates/([^/]+)", self.retrieve_shipping_rate),
            ("POST", r"/v1/shipping_rates/([^/]+)", self.update_shipping_rate),
            ("GET", r"/v1/promotion_codes", self.list_promotion_codes),
            ("GET", r"/v1/promotion_codes/([^/]+)", self.retrieve_promotion_code),
            ("POST", r"/v1/promotion_codes/([^/]+)", self.update_promotion_code),
            ("GET", r"/v1/coupons/([^/]+)", self.retrieve_coupon),
        ]

    def create_shipping_rate(self, req: ApiRequest) -> dict[str, Any]:
        """Create a fixed-amount shipping rate."""
        p = req.params
        validate.reject_unknown(p, SHIPPING_RATE_PARAMS)
        _no_expand(p)
        display_name = validate.required_string(p, "display_name", max_length=100)
        rate_type = validate.optional_string(p, "type") or "fixed_amount"
        if rate_type != "fixed_amount":
            raise StripeError.invalid("Invalid type: must be fixed_amount", param="type")
        fixed = validate.as_hash(required(p, "fixed_amount"), "fixed_amount")
        validate.reject_unknown(fixed, ("amount", "currency"), "fixed_amount")
        amount = validate.as_int(
            required(fixed, "amount", "fixed_amount[amount]"),
            "fixed_amount[amount]",
            minimum=0,
            maximum=MAX_AMOUNT,
        )
        currency = validate.as_currency(
            required(fixed, "currency", "fixed_amount[currency]"), "fixed_amount[currency]"
        )
        tax_behavior = validate.optional_string(p, "tax_behavior") or "unspecified"
        if tax_behavior not in SHIPPING_TAX_BEHAVIORS:
            raise StripeError.invalid(
                f"Invalid tax_behavior: this emulator takes {' or '.join(SHIPPING_TAX_BEHAVIORS)} "
                "(its automatic tax is added on top of prices)",
                param="tax_behavior",
            )
        rate = objects.shipping_rate(
            display_name=display_name,
            amount=amount,
            currency=currency,
            metadata=validate.metadata(p.get("metadata", {})),
            active=True,
            tax_behavior=tax_behavior,
            created=int(time.time()),
        )
        with self._store.lock:
            return copy.deepcopy(self._store.add("shipping_rates", rate))

    def retrieve_shipping_rate(self, req: ApiRequest) -> dict[str, Any]:
        """Retrieve a shipping rate."""
        return self._retrieve(req, "shipping_rates", "shipping_rate")

    def update_shipping_rate(self, req: ApiRequest) -> dict[str, Any]:
        """Archive or restore a shipping rate, or change its metadata."""
        return self._update(req, "shipping_rates", "shipping_rate")

    def list_shipping_rates(self, req: ApiRequest) -> dict[str, Any]:
        """List shipping rates, newest first, filtered by active or currency."""
        p = req.params
        validate.reject_unknown(p, (*listing.PAGINATION_PARAMS, "active", "currency", "created"))
        currency = validate.optional_string(p, "currency")
        return self._list(
            p,
            "shipping_rates",
            "shipping_rate",
            lambda rate: currency is None or rate["fixed_amount"]["currency"] == currency.lower(),
        )

    def retrieve_promotion_code(self, req: ApiRequest) -> dict[str, Any]:
        """Retrieve a promotion code."""
        return self._retrieve(req, "promotion_codes", "promotion_code")

    def update_promotion_code(self, req: ApiRequest) -> dict[str, Any]:
        """Deactivate or reactivate a promotion code, or change its metadata."""
        return self._update(req, "promotion_codes", "promotion_code")

    def list_promotion_codes(self, req: ApiRequest) -> dict[str, Any]:
        """List promotion codes, newest first, filtered by code (case-insensitive), active or coupon."""
        p = req.params
        validate.reject_unknown(p, (*listing.PAGINATION_PARAMS, "code", "active", "coupon", "created"))
        code = validate.optional_string(p, "code")
        coupon = validate.optional_string(p, "coupon")
        return self._list(
            p,
            "promotion_codes",
            "promotion_code",
            lambda promo: (
                (code is None or promo["code"].lower() == code.lower())
                and (coupon is None or promo["promotion"]["coupon"] == coupon)
            ),
        )

    def retrieve_coupon(self, req: ApiRequest) -> dict[str, Any]:
        """Retrieve a coupon."""
        return self._retrieve(req, "coupons", "coupon")

    def _retrieve(self, req: ApiRequest, collection: str, kind: str) -> dict[str, Any]:
        validate.reject_unknown(req.params, ("expand",))
        _no_expand(req.params)
        with self._store.lock:
            found = self._store.get(collection, req.path_args[0])
            if found is None:
                raise StripeError.no_such(kind, req.path_args[0])
            return copy.deepcopy(found)

    def _update(self, req: ApiRequest, collection: str, kind: str) -> dict[str, Any]:
        p = req.params
        validate.reject_unknown(p, UPDATE_PARAMS)
        _no_expand(p)
        active = validate.as_bool(p["active"], "active") if p.get("active") else None
        meta = validate.metadata(p["metadata"]) if "metadata" in p else None
        with self._store.lock:
            found = self._store.get(collection, req.path_args[0])
            if found is None:
                raise StripeError.no_such(kind, req.path_args[0])
            if active and kind == "promotion_code":
                other = promotions.find(self._store, found["code"], active_only=True)
                if other is not None and other["id"] != found["id"]:
                    raise StripeError.invalid(
                        f"An active promotion code with the code {found['code']} already exists.",
                        param="active",
                    )
            if active is not None:
                found["active"] = active
            if meta is not None:
                found["metadata"] = {**found["metadata"], **meta}
            self._store.touch()
            return copy.deepcopy(found)

    def _list(self, params: dict[str, Any], collection: str, kind: str, keep: Any) -> dict[str, Any]:
        _no_expand(params)
        active = validate.as_bool(params["active"], "active") if params.get("active") else None
        created = listing.created_filter(params)
        with self._store.lock:
            items = [
                o
                for o in self._store.newest_first(collection)
                if (active is None or o["active"] == active) and created(o["created"]) and keep(o)
            ]
            return listing.paginate(
                items,
                params,
                url=f"/v1/{collection}",
                kind=kind,
                object_id=lambda o: o["id"],
                render=copy.deepcopy,
            )


def _no_expand(params: dict[str, Any]) -> None:
    for path in validate.expand_paths(params):
        raise StripeError.invalid(f"This property cannot be expanded ({path}).", param="expand")
