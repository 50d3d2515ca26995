"""Promotion codes: created through the control API, each with its own coupon; typed by customers."""

from __future__ import annotations

import copy
import re
import time
from decimal import Decimal
from typing import Any

from . import objects, validate
from .catalog import MAX_AMOUNT
from .currency import round_minor
from .errors import StripeError
from .store import Store

# Stripe's codes are letters, digits and dashes (underscores tolerated here), at most 500 of them.
_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,500}$")
CREATE_FIELDS = ("code", "percent_off", "amount_off", "currency", "active")


def create(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """Create a promotion code and its coupon from a control API body; return both."""
    unknown = sorted(set(body) - set(CREATE_FIELDS))
    if unknown:
        raise StripeError.invalid(f"Unknown field: {unknown[0]} (accepted: {', '.join(CREATE_FIELDS)})")
    code = body.get("code")
    if not isinstance(code, str) or not _CODE_RE.match(code):
        raise StripeError.invalid(
            "code must be 1 to 500 letters, digits, dashes or underscores, such as SAVE10", param="code"
        )
    active = body.get("active", True)
    if not isinstance(active, bool):
        raise StripeError.invalid("active must be true or false", param="active")
    percent_off, amount_off, currency = _coupon_terms(body)
    with store.lock:
        if active and find(store, code, active_only=True) is not None:
            raise StripeError.invalid(
                f"An active promotion code with the code {code} already exists.", param="code"
            )
        now = int(time.time())
        coupon = store.add(
            "coupons",
            objects.coupon(percent_off=percent_off, amount_off=amount_off, currency=currency, created=now),
        )
        promo = store.add(
            "promotion_codes",
            objects.promotion_code(code=code, coupon_id=coupon["id"], active=active, created=now),
        )
        return copy.deepcopy({"promotion_code": promo, "coupon": coupon})


def _coupon_terms(body: dict[str, Any]) -> tuple[float | None, int | None, str | None]:
    percent_off, amount_off = body.get("percent_off"), body.get("amount_off")
    if (percent_off is None) == (amount_off is None):
        raise StripeError.invalid("Give exactly one of percent_off or amount_off.", param="percent_off")
    if percent_off is not None:
        if (
            isinstance(percent_off, bool)
            or not isinstance(percent_off, (int, float))
            or not 0 < percent_off <= 100
        ):
            raise StripeError.invalid(
                "percent_off must be a number above 0 and at most 100", param="percent_off"
            )
        if body.get("currency") is not None:
            raise StripeError.invalid("currency goes with amount_off only", param="currency")
        return float(percent_off), None, None
    if isinstance(amount_off, bool) or not isinstance(amount_off, int) or not 0 < amount_off <= MAX_AMOUNT:
        raise StripeError.invalid(
            "amount_off must be a positive integer in the currency's smallest unit (500 for $5.00)",
            param="amount_off",
        )
    if "currency" not in body:
        raise StripeError.missing_param("currency")
    return None, amount_off, validate.as_currency(body["currency"], "currency")


def find(store: Store, code: str, *, active_only: bool = False) -> dict[str, Any] | None:
    """Return the promotion code with this code (case-insensitive, an active one first), or None."""
    matches = [
        p
        for p in store.newest_first("promotion_codes")
        if p["code"].lower() == code.lower() and (p["active"] or not active_only)
    ]
    matches.sort(key=lambda p: not p["active"])
    return matches[0] if matches else None


def redeemable(store: Store, code: str, currency: str) -> dict[str, Any]:
    """Return the promotion code a customer typed, or raise the refusal the payment page shows."""
    promo = find(store, code.strip())
    if promo is None:
        raise StripeError.invalid("This code is invalid.", param="promotion_code")
    if not promo["active"]:
        raise StripeError.invalid("This code is no longer active.", param="promotion_code")
    coupon = coupon_of(store, promo)
    if coupon["currency"] is not None and coupon["currency"] != currency:
        raise StripeError.invalid(
            f"This code is not valid for payments in {currency.upper()}.", param="promotion_code"
        )
    return promo


def coupon_of(store: Store, promo: dict[str, Any]) -> dict[str, Any]:
    """Return the coupon a promotion code grants."""
    coupon = store.get("coupons", promo["promotion"]["coupon"])
    assert coupon is not None
    return coupon


def amount_off(coupon: dict[str, Any], subtotal: int) -> int:
    """Return the discount on a subtotal: a percentage of it, or an amount capped at it."""
    if coupon["percent_off"] is not None:
        return min(subtotal, round_minor(Decimal(str(coupon["percent_off"])) * subtotal / 100))
    return min(subtotal, coupon["amount_off"])
