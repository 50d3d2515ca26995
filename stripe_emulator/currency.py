"""Currencies' minor units: show amounts to people, and read the amounts people type."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

ZERO_DECIMAL = {
    "bif",
    "clp",
    "djf",
    "gnf",
    "jpy",
    "kmf",
    "krw",
    "mga",
    "pyg",
    "rwf",
    "ugx",
    "vnd",
    "vuv",
    "xaf",
    "xof",
    "xpf",
}
THREE_DECIMAL = {"bhd", "jod", "kwd", "omr", "tnd"}
SYMBOLS = {
    "usd": "$",
    "eur": "€",
    "gbp": "£",
    "jpy": "¥",
    "cad": "CA$",
    "aud": "A$",
    "inr": "₹",
    "chf": "CHF ",
}
# Digits, then optionally a point and more digits: no sign, no exponent, no thousands separators.
_TYPED_AMOUNT_RE = re.compile(r"^(\d+)(?:\.(\d*))?$")


def decimals(currency: str) -> int:
    """Return how many digits the currency has after the decimal point (0, 2 or 3)."""
    code = currency.lower()
    if code in ZERO_DECIMAL:
        return 0
    return 3 if code in THREE_DECIMAL else 2


def format_amount(amount: int, currency: str) -> str:
    """Format an amount in the currency's smallest unit for people."""
    code = currency.lower()
    places = decimals(code)
    number = f"{amount / 10**places:,.{places}f}"
    symbol = SYMBOLS.get(code)
    return f"{symbol}{number}" if symbol else f"{number} {code.upper()}"


def example(currency: str) -> str:
    """Return how a person would type twelve and a half units of the currency ("12.50", "500")."""
    places = decimals(currency)
    return "500" if places == 0 else "12." + "5".ljust(places, "0")


def parse_typed_amount(text: str, currency: str) -> int:
    """Read an amount a person typed in the currency's major unit; return it in minor units.

    "12.50" and "12" are 12.00 USD (1250); in JPY "500" is 500 yen and a decimal point is refused;
    KWD and the other three-decimal currencies take up to three decimals. Raise ValueError, with a
    message for that person, for anything else, zero and negative amounts included.
    """
    code = currency.upper()
    places = decimals(currency)
    typed = text.strip()
    hint = f"Type the amount in {code}, such as {example(currency)}."
    if typed.startswith("-"):
        raise ValueError(f"The amount must be more than zero; {typed} is negative.")
    match = _TYPED_AMOUNT_RE.match(typed)
    if match is None:
        raise ValueError(f"{typed or 'An empty amount'} is not an amount. {hint}")
    fraction = match.group(2)
    if fraction is not None and places == 0:
        raise ValueError(f"{code} has no minor unit: type a whole number without a decimal point. {hint}")
    if fraction is not None and len(fraction) > places:
        raise ValueError(f"{code} amounts have at most {places} decimals; {typed} has {len(fraction)}.")
    minor = int(Decimal(typed) * 10**places)
    if minor == 0:
        raise ValueError(f"The amount must be more than zero. {hint}")
    return minor


def round_minor(value: Decimal) -> int:
    """Round an amount in minor units to a whole one, halves up."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
