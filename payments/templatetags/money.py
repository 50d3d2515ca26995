"""The `money` template filter: amounts as a buyer reads them, formatted by `orders.money`."""

from django import template

from orders.money import money_format

register = template.Library()


@register.filter
def money(amount: int | None, currency: str = "usd") -> str:
    """Format a minor-unit amount with its symbol: {{ order.amount_total|money:order.currency }}."""
    return "" if amount is None else money_format(amount, currency, symbol=True)
