"""`manage.py sync_catalog` against the emulator: create what is missing, report (or fix) drift."""

import socket
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from orders.models import Product
from payments import gateway

pytestmark = pytest.mark.django_db

# The migrations' demo catalog: three plans and two goods.
SEEDED_PRODUCTS = 5

DEMO_SKUS = ["premium_product_demo", "standard_product_demo", "starter_product_demo"]


def sync(*args: str, verbosity: int = 1) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("sync_catalog", *args, stdout=out, stderr=err, verbosity=verbosity)
    return out.getvalue(), err.getvalue()


def emulator_prices() -> list[dict]:
    return [p.to_dict() for p in gateway.client().v1.prices.list(params={"limit": 100}).data]


def emulator_products() -> list[dict]:
    return [p.to_dict() for p in gateway.client().v1.products.list(params={"limit": 100}).data]


def test_creates_a_stripe_product_and_price_for_every_active_product(emulator):
    Product.objects.create(sku="retired", name="Retired", unit_amount=100, active=False)

    out, _ = sync()

    for product in Product.objects.filter(active=True):
        price = gateway.price_retrieve(price_id=product.stripe_price_id)
        assert (price.unit_amount, price.currency, price.active) == (
            product.unit_amount,
            product.currency,
            True,
        )
        assert price.product_id == product.stripe_product_id
        assert f"{product.sku}: created ({product.stripe_price_id})" in out
    assert Product.objects.get(sku="retired").stripe_price_id is None
    assert len(emulator_prices()) == SEEDED_PRODUCTS
    assert "5 active products: 5 created, 0 fixed, 0 in sync, 0 drifted, 0 failed." in out


def test_stripe_product_carries_the_catalog_name_and_sku(emulator):
    sync()

    premium = Product.objects.get(sku="premium_product_demo")
    [stripe_product] = [p for p in emulator_products() if p["id"] == premium.stripe_product_id]
    assert stripe_product["name"] == "Premium plan"
    assert stripe_product["metadata"] == {"sku": "premium_product_demo"}


def test_running_it_again_changes_nothing(emulator):
    sync()
    prices_before = {p.sku: p.stripe_price_id for p in Product.objects.all()}

    out, _ = sync(verbosity=2)

    assert {p.sku: p.stripe_price_id for p in Product.objects.all()} == prices_before
    assert len(emulator_prices()) == SEEDED_PRODUCTS
    assert len(emulator_products()) == SEEDED_PRODUCTS
    assert "5 active products: 0 created, 0 fixed, 5 in sync, 0 drifted, 0 failed." in out
    assert "starter_product_demo: in sync" in out


def test_a_product_that_lost_its_price_half_way_gets_one_without_a_second_stripe_product(emulator):
    sync()
    Product.objects.filter(sku="starter_product_demo").update(stripe_price_id=None)

    out, _ = sync()

    assert Product.objects.get(sku="starter_product_demo").stripe_price_id
    assert len(emulator_products()) == SEEDED_PRODUCTS
    assert "starter_product_demo: created" in out


def test_amount_drift_is_reported_and_left_alone_without_fix(emulator):
    sync()
    product = Product.objects.get(sku="premium_product_demo")
    old_price = product.stripe_price_id
    Product.objects.filter(pk=product.pk).update(unit_amount=5999)

    out, _ = sync()

    product.refresh_from_db()
    assert product.stripe_price_id == old_price
    assert "premium_product_demo: drifted" in out
    assert "amount 4999, catalog 5999" in out
    assert "run with --fix" in out
    assert "1 drifted" in out


def test_fix_gives_a_drifted_product_a_new_price_at_the_catalogs_amount(emulator):
    sync()
    product = Product.objects.get(sku="premium_product_demo")
    old_price = product.stripe_price_id
    Product.objects.filter(pk=product.pk).update(unit_amount=5999)

    out, _ = sync("--fix")

    product.refresh_from_db()
    new_price = gateway.price_retrieve(price_id=product.stripe_price_id)
    assert product.stripe_price_id != old_price
    assert (new_price.unit_amount, new_price.product_id) == (5999, product.stripe_product_id)
    assert gateway.price_retrieve(price_id=old_price).unit_amount == 4999  # the old price is left as it was
    assert "premium_product_demo: fixed" in out
    assert "1 fixed" in out


def test_currency_drift_and_inactive_prices_are_reported(emulator):
    sync()
    Product.objects.filter(sku="standard_product_demo").update(currency="eur")
    starter = Product.objects.get(sku="starter_product_demo")
    inactive = gateway.client().v1.prices.create(
        params={"product": starter.stripe_product_id, "unit_amount": 999, "currency": "usd", "active": False}
    )
    Product.objects.filter(pk=starter.pk).update(stripe_price_id=inactive.id)

    out, _ = sync()

    assert "standard_product_demo: drifted" in out
    assert "currency usd, catalog eur" in out
    assert "starter_product_demo: drifted" in out
    assert "price is inactive in Stripe" in out


def test_a_price_stripe_does_not_know_is_made_again(emulator):
    sync()
    emulator.reset()  # an emulator restarted, or another Stripe account: the stored ids mean nothing there

    out, _ = sync()

    for product in Product.objects.filter(active=True):
        assert gateway.price_retrieve(price_id=product.stripe_price_id).unit_amount == product.unit_amount
    assert "recreated" in out
    assert "5 created" in out


def test_a_product_stripe_refuses_is_reported_and_the_others_are_synced(emulator):
    Product.objects.create(sku="too_dear", name="Too dear", unit_amount=1_000_000_000, currency="usd")

    with pytest.raises(CommandError, match="Stripe refused 1 of them"):
        sync()

    assert Product.objects.get(sku="too_dear").stripe_price_id is None
    assert all(Product.objects.get(sku=sku).stripe_price_id for sku in DEMO_SKUS)


def test_without_stripe_configuration_it_stops_with_a_clear_error(db, settings):
    settings.STRIPE_SECRET_KEY = ""

    with pytest.raises(CommandError, match="STRIPE_SECRET_KEY"):
        sync()


def test_with_stripe_unreachable_it_stops_with_a_clear_error(db, settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.STRIPE_SECRET_KEY = "sk_test_unreachable"
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{port}"
    settings.STRIPE_MAX_NETWORK_RETRIES = 0

    with pytest.raises(
        CommandError, match=r"(?s)unavailable.*0 products synced and saved before that; run it again"
    ):
        sync()
    assert not Product.objects.filter(stripe_price_id__isnull=False).exists()


def test_verbosity_0_prints_nothing(emulator):
    out, err = sync(verbosity=0)

    assert (out, err) == ("", "")
    assert Product.objects.filter(stripe_price_id__isnull=False).count() == SEEDED_PRODUCTS
