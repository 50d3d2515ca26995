"""Amounts kept in minor units, shown as a buyer reads them."""

import pytest
from django.template import Context, Template

from payments.templatetags.money import money


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (4999, "usd", "$49.99"),
        (5, "usd", "$0.05"),
        (123456789, "eur", "€1,234,567.89"),
        (500, "jpy", "¥500"),
        (12500, "bhd", "12.500 BHD"),
        (1000, "CHF", "10.00 CHF"),
        (0, "gbp", "£0.00"),
        (None, "usd", ""),
    ],
)
def test_money_filter_shows_the_symbol_and_the_currencys_decimals(amount, currency, shown):
    assert money(amount, currency) == shown


def test_money_filter_in_a_template():
    template = Template("{% load money %}{{ amount|money:currency }}")

    assert template.render(Context({"amount": 14997, "currency": "usd"})) == "$149.97"
