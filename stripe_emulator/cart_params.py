"""Check a new session's cart options: promotion codes, shipping address and rates, automatic tax."""

from __future__ import annotations

from typing import Any

from . import validate
from .errors import StripeError
from .store import Store

MAX_SHIPPING_OPTIONS = 5
CART_PARAMS = ("allow_promotion_codes", "shipping_address_collection", "shipping_options", "automatic_tax")


def session_fields(store: Store, params: dict[str, Any], currency: str) -> dict[str, Any]:
    """Return the session fields the cart parameters set; call with store.lock held."""
    fields: dict[str, Any] = {}
    if params.get("allow_promotion_codes"):
        fields["allow_promotion_codes"] = validate.as_bool(
            params["allow_promotion_codes"], "allow_promotion_codes"
        )
    if params.get("shipping_address_collection"):
        fields["shipping_address_collection"] = {
            "allowed_countries": _allowed_countries(params["shipping_address_collection"])
        }
    if params.get("shipping_options"):
        options = _shipping_options(store, params["shipping_options"], currency)
        fields["shipping_options"] = options
        # Checkout preselects the first rate, so the session's totals count it from the start.
        fields["shipping_cost"] = {
            "amount_subtotal": options[0]["shipping_amount"],
            "amount_tax": 0,
            "amount_total": options[0]["shipping_amount"],
            "shipping_rate": options[0]["shipping_rate"],
        }
    if params.get("automatic_tax"):
        tax = validate.as_hash(params["automatic_tax"], "automatic_tax")
        validate.reject_unknown(tax, ("enabled",), "automatic_tax")
        if "enabled" not in tax:
            raise StripeError.missing_param("automatic_tax[enabled]")
        if validate.as_bool(tax["enabled"], "automatic_tax[enabled]"):
            # The customer's address is not known yet: tax is computed when they pay.
            fields["automatic_tax"] = {
                "enabled": True,
                "liability": {"type": "self"},
                "provider": "stripe",
                "status": "requires_location_inputs",
            }
    return fields


def _allowed_countries(value: Any) -> list[str]:
    name = "shipping_address_collection"
    collection = validate.as_hash(value, name)
    validate.reject_unknown(collection, ("allowed_countries",), name)
    if not collection.get("allowed_countries"):
        raise StripeError.missing_param(f"{name}[allowed_countries]")
    countries = validate.as_array(collection["allowed_countries"], f"{name}[allowed_countries]")
    for n, country in enumerate(countries):
        param = f"{name}[allowed_countries][{n}]"
        code = validate.as_string(country, param)
        if len(code) != 2 or not code.isalpha() or not code.isupper():
            raise StripeError.invalid(
                f"Invalid {param}: must be a two-letter country code such as US (got {code})", param=param
            )
    return list(dict.fromkeys(countries))


def _shipping_options(store: Store, value: Any, currency: str) -> list[dict[str, Any]]:
    raw = validate.as_array(value, "shipping_options")
    if len(raw) > MAX_SHIPPING_OPTIONS:
        raise StripeError.invalid(
            f"Invalid array: shipping_options can have at most {MAX_SHIPPING_OPTIONS} items.",
            param="shipping_options",
        )
    options = []
    for n, item in enumerate(raw):
        name = f"shipping_options[{n}]"
        option = validate.as_hash(item, name)
        if "shipping_rate_data" in option:
            raise StripeError.invalid(
                f"This emulator takes {name}[shipping_rate] only: "
                "create the rate with POST /v1/shipping_rates.",
                param=f"{name}[shipping_rate_data]",
            )
        validate.reject_unknown(option, ("shipping_rate",), name)
        rate_id = validate.required_string(option, "shipping_rate", f"{name}[shipping_rate]")
        rate = store.get("shipping_rates", rate_id)
        if rate is None:
            raise StripeError.no_such("shipping_rate", rate_id, param=f"{name}[shipping_rate]", status=400)
        if not rate["active"]:
            raise StripeError.invalid(
                f"The shipping rate {rate_id} is not active.", param=f"{name}[shipping_rate]"
            )
        if rate["fixed_amount"]["currency"] != currency:
            raise StripeError.invalid(
                f"The shipping rate {rate_id} is in {rate['fixed_amount']['currency']}, but the line items "
                f"are in {currency}.",
                param=f"{name}[shipping_rate]",
            )
        options.append({"shipping_amount": rate["fixed_amount"]["amount"], "shipping_rate": rate_id})
    return options
