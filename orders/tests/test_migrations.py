"""The migration to orders of several lines carries every order over as one line."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("orders", "0009_order_attention_settled")]
AFTER = [("orders", "0010_order_lines")]


@pytest.mark.django_db(transaction=True)
def test_each_existing_order_becomes_one_line_and_its_total_its_subtotal():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    product = old.get_model("orders", "Product").objects.create(sku="old", name="Old", unit_amount=700)
    order = old.get_model("orders", "Order").objects.create(
        product=product, quantity=3, unit_amount=700, amount_total=2100, currency="usd"
    )

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps

    migrated = new.get_model("orders", "Order").objects.get(pk=order.pk)
    line = new.get_model("orders", "OrderLine").objects.get(order_id=order.pk)
    assert (line.product_id, line.quantity, line.unit_amount) == (product.pk, 3, 700)
    assert (migrated.amount_subtotal, migrated.amount_total, migrated.holds_stock) == (2100, 2100, False)
