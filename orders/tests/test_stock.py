"""Orders of several lines take their quantities from stock when made, and give them back once if closed."""

import pytest

from orders import transitions
from orders.exceptions import CartInvalid, InvalidQuantity, OutOfStock
from orders.models import MAX_LINES, Order, Product
from orders.services import order_create, stock_release

pytestmark = pytest.mark.django_db


def goods(sku: str, *, stock: int | None, unit_amount: int = 500, currency: str = "usd") -> Product:
    return Product.objects.create(
        sku=sku, name=sku.title(), unit_amount=unit_amount, currency=currency, stock=stock
    )


def stock_of(product: Product) -> int | None:
    return Product.objects.values_list("stock", flat=True).get(pk=product.pk)


def test_an_order_of_several_lines_adds_them_up_and_takes_each_from_stock():
    mug, sticker = goods("mug", stock=10, unit_amount=1500), goods("sticker", stock=25)

    order = order_create(lines=[(mug, 2), (sticker, 3)])

    assert [(line.product.sku, line.quantity, line.amount) for line in order.lines.all()] == [
        ("mug", 2, 3000),
        ("sticker", 3, 1500),
    ]
    assert (order.amount_subtotal, order.amount_total, order.holds_stock) == (4500, 4500, True)
    assert (stock_of(mug), stock_of(sticker)) == (8, 22)


def test_the_same_item_twice_is_one_line_of_both_quantities():
    mug = goods("mug", stock=10)

    order = order_create(lines=[(mug, 2), (mug, 3)])

    assert [(line.product.sku, line.quantity) for line in order.lines.all()] == [("mug", 5)]
    assert stock_of(mug) == 5


def test_an_unlimited_product_keeps_no_count_and_its_order_holds_no_stock(product):
    order = order_create(lines=[(product, 100)])

    assert stock_of(product) is None
    assert order.holds_stock is False


def test_out_of_stock_names_the_item_and_takes_nothing_from_the_other_lines():
    mug, sticker = goods("mug", stock=1), goods("sticker", stock=5)

    with pytest.raises(OutOfStock) as refused:
        order_create(lines=[(sticker, 2), (mug, 2)])

    assert refused.value.sku == "mug"
    assert "1 left, 2 asked for" in str(refused.value)
    assert (stock_of(mug), stock_of(sticker), Order.objects.count()) == (1, 5, 0)


@pytest.mark.parametrize(
    ("lines", "error", "sku"),
    [
        (lambda a, b, c: [(a, 60), (a, 41)], InvalidQuantity, "a"),  # merged past 100
        (lambda a, b, c: [(a, 1), (c, 1)], CartInvalid, "c"),  # one currency per order
        (lambda a, b, c: [], CartInvalid, None),
    ],
    ids=["merged-quantity", "mixed-currency", "empty"],
)
def test_refused_carts_say_which_item(lines, error, sku):
    a, b, c = goods("a", stock=None), goods("b", stock=None), goods("c", stock=None, currency="eur")

    with pytest.raises(error) as refused:
        order_create(lines=lines(a, b, c))

    assert refused.value.sku == sku


def test_more_than_twenty_different_items_are_refused():
    products = [goods(f"item{i}", stock=None) for i in range(MAX_LINES + 1)]

    with pytest.raises(CartInvalid, match="1 to 20 different items, not 21"):
        order_create(lines=[(product, 1) for product in products])
    order_create(lines=[(product, 1) for product in products[:MAX_LINES]])


@pytest.mark.parametrize("close", ["fail", "expire"])
def test_closing_an_order_gives_its_stock_back_once(close):
    mug = goods("mug", stock=3)
    order = order_create(lines=[(mug, 2)])

    if close == "fail":
        transitions.order_fail(order_id=order.pk, source="system", reason="test")
    else:
        transitions.order_expire(order_id=order.pk, source="system")

    assert stock_of(mug) == 3
    # However often it is asked again (a redelivered event, a replay), nothing more comes back.
    assert stock_release(order_id=order.pk) is False
    transitions.order_expire(order_id=order.pk, source="system")
    assert stock_of(mug) == 3


def test_a_fulfilled_order_keeps_what_it_took():
    mug = goods("mug", stock=3)
    order = order_create(lines=[(mug, 2)])

    transitions.order_fulfill(order_id=order.pk, source="webhook")
    transitions.order_fail(order_id=order.pk, source="system", reason="too late")

    assert stock_of(mug) == 1
