"""Keep Stripe's products and prices in step with the catalog, which is the one source of prices."""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from orders.models import Product
from orders.selectors import products_for_sale
from payments import gateway
from payments.exceptions import PaymentProviderRefused, StripeResourceMissing

logger = logging.getLogger(__name__)


class SyncAction(StrEnum):
    CREATED = "created"  # the product had no Stripe price; it has one now
    RECREATED = "recreated"  # its Stripe price (or product) no longer existed; a new one was made
    IN_SYNC = "in sync"
    DRIFTED = "drifted"  # Stripe's price differs from the catalog; left alone
    FIXED = "fixed"  # Stripe's price differed; a new price was made and the product points at it
    FAILED = "failed"  # Stripe refused something for this product


@dataclass(frozen=True)
class ProductSync:
    sku: str
    action: SyncAction
    price_id: str | None
    detail: str = ""


def catalog_sync(*, fix: bool = False) -> Iterator[ProductSync]:
    """Give every active product a Stripe product and price, and report (or fix) prices that drifted; safe
    to run again (idempotency keys). A refusal for one product is its FAILED result;
    PaymentProviderNotConfigured or PaymentProviderUnavailable stop the run, keeping what was saved."""
    for product in products_for_sale().order_by("sku"):
        try:
            yield _product_sync(product, fix=fix)
        except PaymentProviderRefused as exc:
            logger.error("catalog sync of %s refused by Stripe: %s", product.sku, exc)
            yield ProductSync(product.sku, SyncAction.FAILED, product.stripe_price_id, str(exc))


def _product_sync(product: Product, *, fix: bool) -> ProductSync:
    if not product.stripe_price_id:
        return ProductSync(product.sku, SyncAction.CREATED, _price_create(product))
    try:
        price = gateway.price_retrieve(price_id=product.stripe_price_id)
    except StripeResourceMissing:
        # Absence, not drift (another Stripe account, a restarted emulator): unsellable, so make a price.
        detail = f"price {product.stripe_price_id} did not exist in Stripe"
        return ProductSync(product.sku, SyncAction.RECREATED, _price_create(product), detail)

    drift = _price_drift(product, price)
    if not drift:
        return ProductSync(product.sku, SyncAction.IN_SYNC, price.id)
    if not fix:
        logger.warning("catalog sync: %s price %s drifted: %s", product.sku, price.id, drift)
        return ProductSync(product.sku, SyncAction.DRIFTED, price.id, drift)
    if not product.stripe_product_id:
        product.stripe_product_id = price.product_id
        product.save(update_fields=["stripe_product_id", "updated_at"])
    return ProductSync(product.sku, SyncAction.FIXED, _price_create(product), f"{drift}; was {price.id}")


def _price_drift(product: Product, price: gateway.StripePrice) -> str:
    """Return how Stripe's price differs from the catalog, or an empty string."""
    differences = []
    if price.unit_amount != product.unit_amount:
        differences.append(f"amount {price.unit_amount}, catalog {product.unit_amount}")
    if price.currency.lower() != product.currency:
        differences.append(f"currency {price.currency}, catalog {product.currency}")
    if not price.active:
        differences.append("price is inactive in Stripe")
    if product.stripe_product_id and price.product_id != product.stripe_product_id:
        differences.append(f"belongs to Stripe product {price.product_id}, not {product.stripe_product_id}")
    return "; ".join(differences)


def _price_create(product: Product) -> str:
    """Create a price at the catalog's amount (and the Stripe product if it has none or Stripe lost it)."""
    try:
        price = _stripe_price_create(product, product.unit_amount, product.currency)
    except StripeResourceMissing:
        logger.warning(
            "catalog sync: Stripe product %s of %s is missing; creating it",
            product.stripe_product_id,
            product.sku,
        )
        _product_create(product)
        price = _stripe_price_create(product, product.unit_amount, product.currency)
    old, product.stripe_price_id = product.stripe_price_id, price.id
    product.save(update_fields=["stripe_price_id", "updated_at"])
    logger.info(
        "catalog sync: %s now uses price %s (%d %s), was %s",
        product.sku,
        price.id,
        product.unit_amount,
        product.currency,
        old or "-",
    )
    return price.id


def _product_create(product: Product) -> None:
    product.stripe_product_id = gateway.product_create(
        name=product.name, description=product.description, sku=product.sku
    )
    product.save(update_fields=["stripe_product_id", "updated_at"])
    logger.info("catalog sync: %s is Stripe product %s", product.sku, product.stripe_product_id)


def _stripe_price_create(
    product: Product, unit_amount: int, currency: str, replaces: str | None = None
) -> gateway.StripePrice:
    if not product.stripe_product_id:
        _product_create(product)
    return gateway.price_create(
        product_id=product.stripe_product_id,
        unit_amount=unit_amount,
        currency=currency,
        sku=product.sku,
        replaces=replaces,
    )


def product_price_create(*, product: Product, unit_amount: int, currency: str) -> str:
    """Create the Stripe price a product is about to be sold at and return its id, saving nothing else: the
    caller saves it with the new amount, then archives the old price, so a failure leaves the old whole."""
    price = _stripe_price_create(product, unit_amount, currency, replaces=product.stripe_price_id)
    logger.info(
        "catalog: %s gets price %s (%d %s), replacing %s",
        product.sku,
        price.id,
        unit_amount,
        currency,
        product.stripe_price_id or "-",
    )
    return price.id


def product_price_archive(*, product: Product, price_id: str) -> None:
    """Archive a product's former Stripe price so no new Checkout Session can charge it; on failure the
    caller says it is left to archive in the Dashboard (`sync_catalog` sees nothing wrong)."""
    gateway.price_archive(price_id=price_id)
    logger.info("catalog: %s price %s archived", product.sku, price_id)
