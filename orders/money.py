"""Show amounts kept in a currency's minor unit the way people read them, as Stripe counts minor units."""

from decimal import Decimal

# Stripe's "zero-decimal" currencies (an amount of 500 JPY is 500 yen, not 5.00) and its three-decimal
# ones (12500 BHD is 12.500 dinars); every other currency has two decimals.
ZERO_DECIMAL = frozenset(
    {
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
)
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}


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
