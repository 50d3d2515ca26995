"""The customer's shipping on a session: the address they give and the rate they choose."""

from __future__ import annotations

from typing import Any

from . import objects
from .errors import StripeError

ADDRESS_FIELDS = ("line1", "line2", "city", "state", "postal_code", "country")
# What a person must fill in on the payment page, with the words used to ask for it.
REQUIRED_ADDRESS_FIELDS = {"line1": "street address", "city": "city", "postal_code": "postal code"}
# Prefilled on the payment page, and used when the control API pays without an address.
SAMPLE_ADDRESS = {
    "line1": "1 Test Street",
    "line2": None,
    "city": "Testville",
    "state": None,
    "postal_code": "12345",
}
SAMPLE_NAME = "Jenny Rosen"


def shipping_choice(
    session: dict[str, Any], *, details: dict[str, Any] | None, rate_id: str | None
) -> tuple[dict[str, Any] | None, str | None]:
    """Check the customer's shipping address and rate; return (shipping_details, rate id) to keep.

    Without an address, a session that collects one gets a sample address in its first allowed
    country (as the control API pays); without a rate, the preselected one stays.
    """
    collection = session["shipping_address_collection"]
    shipping_details = None
    if collection is not None:
        shipping_details = _shipping_details(
            details or _sample(collection["allowed_countries"][0]), collection
        )
    elif details:
        raise StripeError.invalid(
            "This Checkout Session does not collect a shipping address.", param="shipping"
        )
    chosen = session["shipping_cost"]["shipping_rate"] if session["shipping_cost"] else None
    if rate_id:
        offered = [option["shipping_rate"] for option in session["shipping_options"]]
        if rate_id not in offered:
            raise StripeError.invalid(
                f"The shipping rate {rate_id} is not one of this Checkout Session's shipping options.",
                param="shipping_rate",
            )
        chosen = rate_id
    return shipping_details, chosen


def keep_shipping(
    session: dict[str, Any], shipping_details: dict[str, Any] | None, rate_id: str | None
) -> None:
    """Record what shipping_choice() returned on the session; hold store.lock."""
    if shipping_details is not None:
        session["collected_information"] = {
            "business_name": None,
            "individual_name": None,
            "shipping_details": shipping_details,
        }
    if rate_id is not None:
        amount = next(
            o["shipping_amount"] for o in session["shipping_options"] if o["shipping_rate"] == rate_id
        )
        session["shipping_cost"] = {
            "amount_subtotal": amount,
            "amount_tax": 0,
            "amount_total": amount,
            "shipping_rate": rate_id,
        }


def _shipping_details(details: Any, collection: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(details, dict) or not isinstance(details.get("address") or {}, dict):
        raise StripeError.invalid(
            'shipping must be {"name": ..., "address": {"line1", "city", "postal_code", "country", ...}}',
            param="shipping",
        )
    name = str(details.get("name") or "").strip()
    if not name:
        raise StripeError.invalid("Enter the name to ship to.", param="shipping[name]")
    given = details.get("address") or {}
    address = {field: (str(given.get(field) or "").strip() or None) for field in ADDRESS_FIELDS}
    for field, words in REQUIRED_ADDRESS_FIELDS.items():
        if address[field] is None:
            raise StripeError.invalid(
                f"Enter the {words} of the shipping address.", param=f"shipping[address][{field}]"
            )
    allowed = collection["allowed_countries"]
    if address["country"] not in allowed:
        raise StripeError.invalid(
            f"This shop ships to {', '.join(allowed)} only, not to {address['country'] or 'no country'}.",
            param="shipping[address][country]",
        )
    return {"name": name, "address": objects.address(**address)}


def _sample(country: str) -> dict[str, Any]:
    return {"name": SAMPLE_NAME, "address": {**SAMPLE_ADDRESS, "country": country}}
