"""Amounts (and counts) as people read and type them; amounts are kept in minor units, as Stripe keeps them.

One rule for every tool (the admin, `refund_order`, the emulator's dashboard): a person writes an amount in
the currency's own unit, 12.50 or 12 for 12.00 USD, 500 for 500 JPY; never in cents.
"""

import re
from decimal import Decimal

# Stripe's zero-decimal currencies (500 JPY is 500 yen) and its three-decimal ones (12.500 BHD); every
# other currency has two decimals.
ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())  # noqa: SIM905
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}
_AMOUNT = re.compile(r"^\s*(\d{1,12})(?:\.(\d*))?\s*$")


class AmountInvalid(ValueError):
    """The text is not an amount of the currency; the message says how to write one."""


def currency_decimals(currency: str) -> int:
    """Return how many decimals the currency's minor unit has: 0, 2 or 3."""
    code = currency.lower()
    return 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2


def money_format(amount: int, currency: str, *, symbol: bool = False) -> str:
    """Return a minor-unit amount as '49.99 USD' or '500 JPY'; with `symbol`, '$49.99' where there is one."""
    code = (currency or "").lower()
    decimals = currency_decimals(code)
    sign = "-" if amount < 0 else ""
    number = f"{Decimal(abs(amount)).scaleb(-decimals):,.{decimals}f}"
    if symbol and code in SYMBOLS:
        return f"{sign}{SYMBOLS[code]}{number}"
    return f"{sign}{number} {code.upper()}"


def money_parse(text: str, currency: str) -> int:
    """Return the minor units of an amount a person typed in the currency's unit: '12.5' USD is 1250.

    Raises AmountInvalid for anything else, zero included, saying how to write it.
    """
    decimals = currency_decimals(currency)
    match = _AMOUNT.match(text or "")
    fraction = match.group(2) if match else None
    if not match or (fraction is not None and (len(fraction) > decimals or not decimals)):
        example = f"12.{'5' * decimals} or 12" if decimals else "500, without a decimal point"
        raise AmountInvalid(f"{text!r} is not an amount in {currency.upper()}: write it as {example}.")
    amount = int(match.group(1)) * 10**decimals + int((fraction or "").ljust(decimals, "0") or 0)
    if amount <= 0:
        raise AmountInvalid("Enter an amount above zero.")
    return amount


def noun(count: int, singular: str, plural: str = "", *, is_estimate: bool = False) -> str:
    """Return the noun a count takes: "order" for exactly 1, "orders" for any other count or an estimate."""
    return singular if count == 1 and not is_estimate else plural or f"{singular}s"
