"""Fixtures shared by every app's tests."""

import os

import pytest
from django.core.cache import cache
from django.db import connection

from orders.models import Product


def pytest_report_header(config: pytest.Config) -> str:
    return f"database: {connection.vendor} ({os.environ.get('DATABASE_URL') or 'default sqlite'})"


@pytest.fixture
def product(db) -> Product:
    """Return an active product priced at 49.99 USD with a Stripe price id."""
    return Product.objects.create(
        sku="test_product",
        name="Test product",
        unit_amount=4999,
        currency="usd",
        stripe_price_id="price_test_fixture",
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres_only") and connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's concurrent writers: it runs in the PostgreSQL pass")


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Start every test with empty rate-limit counters (they live in the local-memory cache)."""
    cache.clear()
