"""Show amounts kept in a currency's minor unit (cents) the way a buyer reads them."""

from decimal import Decimal

from django import template

register = template.Library()

# Stripe's lists: currencies whose amounts have no minor unit, and those with three decimals.
ZERO_DECIMAL = frozenset(
    [
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
    ]
)
THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}


def format_money(amount: int | None, currency: str) -> str:
    """Return an amount in minor units as '$49.99', or '12.500 BHD' for a currency without a symbol."""
    if amount is None:
        return ""
    currency = (currency or "").lower()
    decimals = 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2
    sign = "-" if amount < 0 else ""
    value = f"{Decimal(abs(amount)).scaleb(-decimals):,.{decimals}f}"
    symbol = SYMBOLS.get(currency)
    if symbol:
        return f"{sign}{symbol}{value}"
    return f"{sign}{value} {currency.upper()}"


@register.filter
def money(amount: int | None, currency: str = "usd") -> str:
    """Format a minor-unit amount: {{ order.amount_total|money:order.currency }}."""
    return format_money(amount, currency)
