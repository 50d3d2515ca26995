"""Fixtures that point the project at an in-process Stripe emulator on a free port."""

import pytest

from orders.models import Product
from payments import gateway
from payments.models import FINISHED_STATUSES, StripeEvent

WEBHOOK_SECRET = "whsec_test_payments_suite"
EMULATOR_API_KEY = "sk_test_emulator_suite"

# The knobs every test starts from: Stripe test mode's behaviour, with nothing held or dropped.
DEFAULT_KNOBS = {
    "webhook_url": None,
    "webhook_secrets": [WEBHOOK_SECRET],
    "webhook_delay": 0.0,
    "webhook_timing": "async",
    "duplicates": 1,
    "drop_rate": 0.0,
    "drop_next": 0,
    "async_delay": 0.2,
    "max_attempts": 3,
    "retry_backoff": 0.05,
    "refund_mode": "succeeded",
    "pending_next_refunds": 0,
    "fail_next_refunds": 0,
}


@pytest.fixture(scope="session")
def emulator_server():
    from stripe_emulator import EmulatorServer

    server = EmulatorServer(host="127.0.0.1", port=0, webhook_secrets=[WEBHOOK_SECRET])
    server.start()
    yield server
    server.stop()


@pytest.fixture
def emulator(emulator_server, settings):
    """Return the emulator, emptied and reset to default knobs, with the project's settings aimed at it."""
    emulator_server.configure(**DEFAULT_KNOBS)
    emulator_server.reset()
    settings.STRIPE_SECRET_KEY = EMULATOR_API_KEY
    settings.STRIPE_API_BASE = emulator_server.base_url
    settings.STRIPE_WEBHOOK_SECRETS = [WEBHOOK_SECRET]
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    yield emulator_server
    emulator_server.configure(webhook_url=None)
    emulator_server.wait_for_idle(timeout=5)


def emulator_worker_env(emulator) -> dict[str, str]:
    """Return the environment a worker process needs to call the emulator as the project's Stripe."""
    return {
        "STRIPE_SECRET_KEY": EMULATOR_API_KEY,
        "STRIPE_API_BASE": emulator.base_url,
        "STRIPE_MAX_NETWORK_RETRIES": "0",
    }


@pytest.fixture
def settled(emulator, wait_until):
    """Return a waiter for every delivery to be made and every stored event to be finished."""

    def settled() -> None:
        assert emulator.wait_for_idle(timeout=10)
        wait_until(lambda: not StripeEvent.objects.exclude(status__in=FINISHED_STATUSES).exists())

    return settled


@pytest.fixture
def synced_product(emulator, db) -> Product:
    """Return an active 49.99 USD product that exists, with its price, on the emulator."""
    product = Product.objects.create(
        sku="synced_product", name="Synced product", unit_amount=4999, currency="usd"
    )
    product.stripe_product_id = gateway.product_create(name=product.name, description="", sku=product.sku)
    product.stripe_price_id = gateway.price_create(
        product_id=product.stripe_product_id, unit_amount=4999, currency="usd", sku=product.sku
    ).id
    product.save()
    return product
