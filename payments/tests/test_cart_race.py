"""Fifty buyers at once for the last five units, for real: threads, each on its own PostgreSQL connection."""

from collections import Counter

import pytest
from django.test import Client

from conftest import run_together
from orders.models import Order, OrderStatus, Product
from payments import gateway
from payments.sessions import checkout_session_apply
from payments.tests.test_cart import synced
from payments.tests.test_checkout_create import api_post

BUYERS = 50
UNITS = 5


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_fifty_buyers_for_the_last_five_units_never_oversell_and_expiry_gives_units_back(emulator, settings):
    settings.CHECKOUT_RATE_LIMIT = settings.CHECKOUT_RATE_LIMIT_GLOBAL = None
    synced("last_mugs", 1500, stock=UNITS)

    def buyer() -> int:
        return api_post(Client(), {"items": [{"item_id": "last_mugs", "quantity": 1}]}).status_code

    answers = Counter(run_together([buyer] * BUYERS))

    assert answers == {201: UNITS, 409: BUYERS - UNITS}
    holding = Order.objects.filter(holds_stock=True, status=OrderStatus.PENDING)
    assert holding.count() == UNITS
    assert Product.objects.get(sku="last_mugs").stock == 0

    for order in holding[:2]:
        emulator.expire(order.stripe_checkout_session_id)
        session = gateway.checkout_session_retrieve(session_id=order.stripe_checkout_session_id)
        checkout_session_apply(session=session, source="webhook")
        checkout_session_apply(session=session, source="reconcile")  # told twice, given back once

    assert Product.objects.get(sku="last_mugs").stock == 2
    assert Order.objects.filter(status=OrderStatus.EXPIRED, holds_stock=False).count() == 2
