"""A session's amounts: its promotion code, its shipping, automatic tax, and the totals of it all.

Automatic tax is a flat rate per country (the `tax_rates` config knob) on subtotal - discount +
shipping, rounded once to the minor unit, exclusive of the prices (a price's tax_behavior
"unspecified" counts as exclusive). The country is the shipping address's when the session collects
one, otherwise the billing address's: the emulator's customers are billed in the US
(customer_details.address). Until the customer pays, the address is unknown: automatic_tax.status is
"requires_location_inputs" and amount_tax is 0, as on Stripe; paying completes it.

A discount comes off the line items only, never the shipping, and at most their subtotal.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from . import promotions, totals
from .errors import StripeError
from .store import SessionState, Store

# What POST /_emulator/checkout/sessions/{id}/tamper may force.
TAMPERABLE = ("amount_subtotal", "amount_total")
TAMPERABLE_DETAILS = ("amount_discount", "amount_shipping", "amount_tax")


def refresh(
    store: Store, session: dict[str, Any], state: SessionState, *, tax_rates: dict[str, float]
) -> None:
    """Recompute the session's and its line items' amounts from its cart; hold store.lock."""
    items = state.line_items
    subtotals = [item["amount_subtotal"] for item in items]
    discount = 0
    if session["discounts"]:
        promo = store.get("promotion_codes", session["discounts"][0]["promotion_code"])
        discount = promotions.amount_off(promotions.coupon_of(store, promo), sum(subtotals))
    shipping = session["shipping_cost"]["amount_subtotal"] if session["shipping_cost"] else 0
    country = tax_country(session)
    rate = None
    if session["automatic_tax"]["enabled"] and country is not None:
        rate = Decimal(str(tax_rates.get(country, 0.0)))
    result = totals.compute(subtotals, discount=discount, shipping=shipping, tax_rate=rate)
    for item, item_discount, item_tax in zip(items, result.line_discounts, result.line_taxes, strict=True):
        item.update(
            amount_discount=item_discount,
            amount_tax=item_tax,
            amount_total=item["amount_subtotal"] - item_discount + item_tax,
        )
    if session["shipping_cost"]:
        session["shipping_cost"].update(
            amount_tax=result.shipping_tax, amount_total=shipping + result.shipping_tax
        )
    if session["automatic_tax"]["enabled"]:
        session["automatic_tax"]["status"] = "complete" if country else "requires_location_inputs"
    session["amount_subtotal"] = result.subtotal
    session["amount_total"] = result.total
    session["total_details"] = {
        "amount_discount": result.discount,
        "amount_shipping": result.shipping,
        "amount_tax": result.tax,
    }
    _lay_over(session, state.tampered)
    if session["status"] == "open":
        session["payment_status"] = "unpaid" if session["amount_total"] > 0 else "no_payment_required"


def tax_country(session: dict[str, Any]) -> str | None:
    """Return the country automatic tax is computed for, or None while the customer has not paid."""
    collected = session["collected_information"] or {}
    if collected.get("shipping_details"):
        return collected["shipping_details"]["address"]["country"]
    if session["customer_details"]:
        return session["customer_details"]["address"]["country"]
    return None


def apply_promotion_code(store: Store, session: dict[str, Any], code: str) -> None:
    """Put the code a customer typed on an open session, replacing any other; hold store.lock."""
    if not session["allow_promotion_codes"]:
        raise StripeError.invalid(
            "This Checkout Session does not take promotion codes.", param="promotion_code"
        )
    promo = promotions.redeemable(store, code, session["currency"])
    session["discounts"] = [{"coupon": None, "promotion_code": promo["id"]}]


def tamper(session: dict[str, Any], state: SessionState, changes: dict[str, Any]) -> None:
    """Force amounts on a session, now and over every later recomputation; hold store.lock.

    For tests of a shop's checks: a session whose amounts do not add up. Nothing already paid changes.
    """
    unknown = sorted(set(changes) - {*TAMPERABLE, "total_details"})
    details = changes.get("total_details", {})
    if not isinstance(details, dict):
        raise ValueError("total_details must be an object")
    unknown += sorted(f"total_details.{k}" for k in set(details) - set(TAMPERABLE_DETAILS))
    if unknown:
        raise ValueError(
            f"Cannot tamper with {unknown[0]}: only {', '.join(TAMPERABLE)} and "
            f"total_details.{{{', '.join(TAMPERABLE_DETAILS)}}}"
        )
    forced = {k: v for k, v in changes.items() if k != "total_details"}
    for name, value in [*forced.items(), *details.items()]:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer in minor units, got {value!r}")
    state.tampered = {
        **state.tampered,
        **forced,
        "total_details": {**state.tampered.get("total_details", {}), **details},
    }
    _lay_over(session, state.tampered)


def _lay_over(session: dict[str, Any], tampered: dict[str, Any]) -> None:
    forced = copy.deepcopy(tampered)
    session["total_details"].update(forced.pop("total_details", {}))
    session.update(forced)
