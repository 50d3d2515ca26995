"""A cart's checkout, end to end on the emulator: several lines, promotion codes, shipping, tax and stock."""

import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orders.models import Order, OrderStatus, Product
from orders.refunds import order_refundable_remaining
from payments import gateway
from payments.sessions import checkout_session_apply
from payments.tests.events import event, receive
from payments.tests.test_checkout_create import api_post, emulator_session

pytestmark = pytest.mark.django_db


def synced(sku: str, unit_amount: int, *, stock: int | None = None, shipping: bool = False) -> Product:
    """Return a product priced on the emulator as sync_catalog prices it."""
    product = Product.objects.create(
        sku=sku,
        name=sku.title(),
        unit_amount=unit_amount,
        currency="usd",
        stock=stock,
        requires_shipping=shipping,
    )
    product.stripe_product_id = gateway.product_create(name=product.name, description="", sku=sku)
    product.stripe_price_id = gateway.price_create(
        product_id=product.stripe_product_id, unit_amount=unit_amount, currency="usd", sku=sku
    ).id
    product.save()
    return product


@pytest.fixture
def shop(emulator) -> dict[str, Product]:
    return {
        "mug": synced("mug", 1500, stock=10, shipping=True),
        "sticker": synced("sticker", 500, stock=3, shipping=True),
        "plan": synced("plan", 4999),
    }


def shipping_rate(amount: int) -> str:
    params = {
        "display_name": "Standard",
        "type": "fixed_amount",
        "fixed_amount": {"amount": amount, "currency": "usd"},
    }
    return gateway.client().v1.shipping_rates.create(params=params).id


def items(*lines: tuple[str, int]) -> dict:
    return {"items": [{"item_id": sku, "quantity": quantity} for sku, quantity in lines]}


def checkout(client: Client, *lines: tuple[str, int]) -> Order:
    response = api_post(client, items(*lines))
    assert response.status_code == 201, response.content
    return Order.objects.get(pk=response.json()["order_id"])


def test_the_api_opens_one_session_with_a_line_item_per_line(client, shop):
    order = checkout(client, ("mug", 2), ("plan", 1), ("mug", 1))

    session = emulator_session(order.stripe_checkout_session_id, "line_items")
    assert sorted(
        (item["price"]["id"], item["quantity"]) for item in session["line_items"]["data"]
    ) == sorted([(shop["mug"].stripe_price_id, 3), (shop["plan"].stripe_price_id, 1)])
    assert (session["amount_subtotal"], order.amount_subtotal) == (3 * 1500 + 4999, 3 * 1500 + 4999)


@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        (items(("mug", 1), ("nope", 1)), 400, "items[1].item_id", "Unknown or unavailable item: 'nope'"),
        (items(("mug", 1), ("plan", 0)), 400, "items[1].quantity", "at least 1"),
        (items(("mug", 60), ("mug", 41)), 400, "items[0].quantity", "1 to 100, not 101"),
        (items(("sticker", 4)), 409, "item_id", "sticker) is out of stock: 3 left, 4 asked for"),
        ({"items": [{"item_id": f"x{i}", "quantity": 1} for i in range(21)]}, 400, "items", "not 21 lines"),
        ({"items": []}, 400, "items", "1 to 20 lines"),
        ({"items": [{"item_id": "mug", "quantity": 1, "price": 1}]}, 400, "items[0].price", "catalog"),
        ({"items": [], "item_id": "mug"}, 400, "items", "not both"),
    ],
    ids=["unknown", "quantity", "merged", "out-of-stock", "too-many", "empty", "price", "both"],
)
def test_a_refused_cart_names_the_line(client, shop, body, status, field, words):
    response = api_post(client, body)

    assert response.status_code == status
    assert response.json()["error"]["field"] == field
    assert words in response.json()["error"]["message"]
    assert Order.objects.count() == 0
    assert Product.objects.get(sku="sticker").stock == 3


def test_a_mixed_currency_cart_is_refused_naming_the_item(client, shop):
    euro = synced("euro_thing", 900)
    Product.objects.filter(pk=euro.pk).update(currency="eur")

    response = api_post(client, items(("mug", 1), ("euro_thing", 1)))

    assert (response.status_code, response.json()["error"]["field"]) == (400, "items[1].item_id")
    assert "priced in EUR" in response.json()["error"]["message"]


def test_promotion_codes_and_automatic_tax_are_asked_for_when_the_settings_say(client, shop, settings):
    settings.CHECKOUT_PROMOTION_CODES = True
    settings.CHECKOUT_AUTOMATIC_TAX = True

    session = emulator_session(checkout(client, ("plan", 1)).stripe_checkout_session_id)

    assert session["allow_promotion_codes"] is True
    assert session["automatic_tax"]["enabled"] is True
    assert session["shipping_address_collection"] is None  # nothing in it is shipped


def test_a_shipped_line_asks_for_an_address_in_the_allowed_countries_and_offers_the_rates(
    client, shop, settings
):
    rate = shipping_rate(499)
    settings.CHECKOUT_SHIPPING_COUNTRIES = ["DE", "FR"]
    settings.CHECKOUT_SHIPPING_RATES = [rate]

    session = emulator_session(checkout(client, ("plan", 1), ("mug", 1)).stripe_checkout_session_id)

    assert session["shipping_address_collection"]["allowed_countries"] == ["DE", "FR"]
    assert [option["shipping_rate"] for option in session["shipping_options"]] == [rate]


def test_an_order_holding_stock_closes_its_checkout_sooner(client, shop, settings):
    settings.CHECKOUT_SESSION_TTL_SECONDS = 6 * 3600
    settings.CHECKOUT_STOCK_HOLD_MINUTES = 45

    held = checkout(client, ("mug", 1))
    free = checkout(client, ("plan", 1))

    def ttl(order: Order) -> int:
        return emulator_session(order.stripe_checkout_session_id)["expires_at"] - int(
            order.created_at.timestamp()
        )

    assert (ttl(held), ttl(free)) == (45 * 60, 6 * 3600)


def test_a_promotion_code_shipping_and_tax_are_paid_stored_and_refundable_to_the_cent(
    client, shop, emulator, settings
):
    rate = shipping_rate(499)
    settings.CHECKOUT_PROMOTION_CODES = True
    settings.CHECKOUT_AUTOMATIC_TAX = True
    settings.CHECKOUT_SHIPPING_COUNTRIES = ["DE"]
    settings.CHECKOUT_SHIPPING_RATES = [rate]
    promotion = emulator.create_promotion_code(code="SAVE10", percent_off=10)["promotion_code"]
    order = checkout(client, ("mug", 2), ("sticker", 1))  # 35.00 USD

    address = {"line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115", "country": "DE"}
    emulator.pay(
        order.stripe_checkout_session_id,
        shipping={"name": "Erika Mustermann", "address": address},
        shipping_rate=rate,
        promotion_code="SAVE10",
    )
    response = client.get(reverse("success"), {"session_id": order.stripe_checkout_session_id})

    order.refresh_from_db()
    # 35.00 less 3.50, plus 4.99 shipping, plus 19 % tax on 36.49: 6.93.
    assert (order.amount_subtotal, order.amount_discount, order.amount_shipping, order.amount_tax) == (
        3500,
        350,
        499,
        693,
    )
    assert (order.status, order.amount_total) == (OrderStatus.CONFIRMED, 3500 - 350 + 499 + 693)
    assert (order.promotion_code, order.shipping_rate) == (promotion["id"], rate)
    assert order.shipping_address == "Erika Mustermann\nHauptstr. 1\n10115 Berlin\nDE"
    html = response.content.decode()
    assert 'id="order-discount">\u2212$3.50<' in html and 'id="order-total">$43.42<' in html
    assert "10115 Berlin" in html
    # A refund returns at most what was charged, tax and shipping included.
    receive(event("checkout.session.completed", emulator_session(order.stripe_checkout_session_id)))
    assert Order.objects.get(pk=order.pk).status == OrderStatus.FULFILLED
    assert order_refundable_remaining(order_id=order.pk) == 4342


@pytest.mark.parametrize(
    "tampering",
    [
        {"total_details": {"amount_discount": 1000}},  # a discount the total does not show
        {"total_details": {"amount_tax": 700}},  # tax that was not charged
        {"amount_subtotal": 1},  # items that do not come to the order's lines
        {"amount_total": 1},
    ],
    ids=["discount", "tax", "subtotal", "total"],
)
def test_a_session_whose_discount_or_tax_does_not_add_up_is_not_fulfilled(client, shop, emulator, tampering):
    order = checkout(client, ("plan", 1))
    emulator.pay(order.stripe_checkout_session_id)
    emulator.tamper(order.stripe_checkout_session_id, tampering)

    applied = checkout_session_apply(
        session=gateway.checkout_session_retrieve(session_id=order.stripe_checkout_session_id),
        source="webhook",
    )

    assert applied.decision == "amount mismatch"
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING


def test_a_late_payment_with_tax_and_shipping_is_refunded_in_full(client, shop, emulator, settings):
    rate = shipping_rate(499)
    settings.CHECKOUT_AUTOMATIC_TAX = True
    settings.CHECKOUT_SHIPPING_COUNTRIES = ["DE"]
    settings.CHECKOUT_SHIPPING_RATES = [rate]
    order = checkout(client, ("mug", 1))
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.EXPIRED)
    address = {"line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115", "country": "DE"}
    emulator.pay(
        order.stripe_checkout_session_id, shipping={"name": "E M", "address": address}, shipping_rate=rate
    )

    checkout_session_apply(
        session=gateway.checkout_session_retrieve(session_id=order.stripe_checkout_session_id),
        source="webhook",
    )

    order.refresh_from_db()
    (refund,) = order.refunds.all()
    assert order.amount_total == 1500 + 499 + 380  # 19 % of 19.99
    assert refund.amount == order.amount_total


def test_the_cart_page_adds_changes_removes_and_checks_out_without_javascript(client, shop):
    cart = reverse("cart")

    assert client.post(cart, {"action": "add", "item_id": "mug", "quantity": "1"}).status_code == 303
    client.post(cart, {"action": "add", "item_id": "mug", "quantity": "2"})
    client.post(cart, {"action": "add", "item_id": "plan", "quantity": "1"})
    client.post(cart, {"action": "set", "item_id": "plan", "quantity": "2"})
    client.post(cart, {"action": "add", "item_id": "sticker", "quantity": "1"})
    client.post(cart, {"action": "remove", "item_id": "sticker"})
    page = client.get(cart).content.decode()
    assert 'id="cart-subtotal">$144.98<' in page  # 3 mugs and 2 plans
    assert "Cart (2)" in page

    response = client.post(cart, {"action": "checkout", "checkout_token": str(uuid.uuid4())})

    order = Order.objects.get()
    assert response.status_code == 303
    assert response["Location"] == emulator_session(order.stripe_checkout_session_id)["url"]
    assert sorted((line.product.sku, line.quantity) for line in order.lines.all()) == [
        ("mug", 3),
        ("plan", 2),
    ]


def test_the_cart_page_refuses_what_checkout_would_refuse_and_says_so(client, shop):
    cart = reverse("cart")
    client.post(cart, {"action": "add", "item_id": "sticker", "quantity": "2"})

    too_many = client.post(cart, {"action": "add", "item_id": "mug", "quantity": "101"})
    unknown = client.post(cart, {"action": "add", "item_id": "nope", "quantity": "1"})
    Product.objects.filter(sku="sticker").update(stock=1)
    sold_out = client.post(cart, {"action": "checkout", "checkout_token": str(uuid.uuid4())})

    assert too_many.status_code == 400 and "at most 100" in too_many.content.decode()
    assert (
        unknown.status_code == 400
        and "Unknown or unavailable item: &#x27;nope&#x27;" in unknown.content.decode()
    )
    assert sold_out.status_code == 409
    assert "Sticker (sticker) is out of stock: 1 left, 2 asked for" in sold_out.content.decode()
    assert Order.objects.count() == 0


def test_stock_on_the_shop_page_says_how_many_are_left(client, shop):
    Product.objects.filter(sku="sticker").update(stock=0)

    page = client.get("/").content.decode()

    assert 'id="stock-mug">10 left<' in page
    assert 'id="stock-sticker">Sold out<' in page


def test_an_expiring_checkout_gives_the_stock_back(client, shop, emulator):
    order = checkout(client, ("sticker", 3))
    assert Product.objects.get(sku="sticker").stock == 0

    emulator.expire(order.stripe_checkout_session_id)
    checkout_session_apply(
        session=gateway.checkout_session_retrieve(session_id=order.stripe_checkout_session_id),
        source="webhook",
    )

    assert Order.objects.get(pk=order.pk).status == OrderStatus.EXPIRED
    assert Product.objects.get(sku="sticker").stock == 3


def test_the_audit_finds_a_paid_total_the_order_never_stored_and_stores_it(client, shop, emulator, settings):
    settings.CHECKOUT_SHIPPING_COUNTRIES = ["DE"]
    settings.CHECKOUT_SHIPPING_RATES = [shipping_rate(499)]
    order = checkout(client, ("mug", 1))
    emulator.pay(order.stripe_checkout_session_id)
    client.get(reverse("success"), {"session_id": order.stripe_checkout_session_id})
    # As an order paid before its totals were stored would be: the lines' subtotal only.
    Order.objects.filter(pk=order.pk).update(amount_shipping=0, amount_total=1500)
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(hours=1))

    found = StringIO()
    with pytest.raises(CommandError):
        call_command("audit_payments", "--older-than", "0s", stdout=found)
    with pytest.raises(CommandError, match="1 disagreement with Stripe, 1 fixed"):
        call_command("audit_payments", "--older-than", "0s", "--fix", stdout=StringIO())

    assert (
        "paid total not stored  the order counts 15.00 USD, its session charged 19.99 USD" in found.getvalue()
    )
    assert Order.objects.values_list("amount_shipping", "amount_total").get(pk=order.pk) == (499, 1999)
