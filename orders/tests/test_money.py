"""Amounts kept in minor units, shown and typed in the currency's own unit, with Stripe's decimals."""

import pytest
from django.urls import reverse

from orders.models import Product
from orders.money import AmountInvalid, money_format, money_parse
from orders.services import order_create


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (4999, "usd", "49.99 USD"),
        (500, "jpy", "500 JPY"),
        (1500000, "krw", "1,500,000 KRW"),
        (12500, "bhd", "12.500 BHD"),
        (5, "KWD", "0.005 KWD"),
        (123456789, "eur", "1,234,567.89 EUR"),
        (-250, "usd", "-2.50 USD"),
    ],
)
def test_money_format_uses_the_currencys_minor_unit(amount, currency, shown):
    assert money_format(amount, currency) == shown


def test_money_format_with_a_symbol_uses_it_only_where_there_is_one():
    assert (money_format(500, "jpy", symbol=True), money_format(12500, "bhd", symbol=True)) == (
        "¥500",
        "12.500 BHD",
    )


@pytest.mark.django_db
def test_order_admin_shows_a_zero_decimal_total_as_it_is(admin_client):
    product = Product.objects.create(sku="tea", name="Tea", unit_amount=500, currency="jpy")
    order_create(lines=[(product, 1)])

    orders = admin_client.get(reverse("admin:orders_order_changelist")).content.decode()
    products = admin_client.get(reverse("admin:orders_product_changelist")).content.decode()

    assert "500 JPY" in orders and "5.00 JPY" not in orders
    assert "500 JPY" in products


@pytest.mark.parametrize(
    ("text", "currency", "amount"),
    [
        ("12.50", "usd", 1250),
        ("12.5", "usd", 1250),
        ("12", "usd", 1200),  # a person types 12 for 12.00, never for 12 cents
        (" 0.07 ", "usd", 7),
        ("500", "jpy", 500),
        ("1.234", "bhd", 1234),
    ],
)
def test_an_amount_is_read_in_the_currencys_own_unit(text, currency, amount):
    assert money_parse(text, currency) == amount


@pytest.mark.parametrize(
    ("text", "currency", "message"),
    [
        ("12,50", "usd", "write it as 12.55 or 12"),
        ("-5", "usd", "is not an amount in USD"),
        ("1.234", "usd", "is not an amount in USD"),
        ("ten", "usd", "is not an amount in USD"),
        ("", "usd", "is not an amount in USD"),
        ("5.00", "jpy", "without a decimal point"),
        ("0", "usd", "above zero"),
        ("0.00", "eur", "above zero"),
    ],
)
def test_what_is_not_an_amount_is_refused_saying_how_to_write_one(text, currency, message):
    with pytest.raises(AmountInvalid, match=message):
        money_parse(text, currency)
