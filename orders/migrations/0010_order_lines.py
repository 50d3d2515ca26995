"""Orders of several lines: each existing order becomes one line, its total its subtotal.

Not reversible: an order of several lines has no single product to go back to.
"""

import django.core.validators
import django.db.models.deletion
from django.db import migrations, models

DEMO_GOODS = [
    {
        "sku": "sticker_pack_demo",
        "name": "Sticker pack",
        "description": "Ten stickers, posted to you. Few left.",
        "unit_amount": 500,
        "currency": "usd",
        "stock": 25,
        "requires_shipping": True,
    },
    {
        "sku": "mug_demo",
        "name": "Mug",
        "description": "A mug with the logo, posted to you.",
        "unit_amount": 1500,
        "currency": "usd",
        "stock": 10,
        "requires_shipping": True,
    },
]


def seed_goods(apps, schema_editor):
    Product = apps.get_model("orders", "Product")
    for fields in DEMO_GOODS:
        Product.objects.get_or_create(sku=fields["sku"], defaults=fields)


class Migration(migrations.Migration):
    dependencies = [("orders", "0009_order_attention_settled")]

    operations = [
        migrations.AddField(
            model_name="product",
            name="stock",
            field=models.PositiveIntegerField(blank=True, help_text="Empty means unlimited.", null=True),
        ),
        migrations.AddField(
            model_name="product",
            name="requires_shipping",
            field=models.BooleanField(default=False, help_text="Checkout asks for an address."),
        ),
        migrations.CreateModel(
            name="OrderLine",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "quantity",
                    models.PositiveSmallIntegerField(
                        validators=[
                            django.core.validators.MinValueValidator(1),
                            django.core.validators.MaxValueValidator(100),
                        ]
                    ),
                ),
                (
                    "unit_amount",
                    models.PositiveIntegerField(help_text="The catalog price when the order was made."),
                ),
                (
                    "order",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="lines", to="orders.order"
                    ),
                ),
                (
                    "product",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="order_lines",
                        to="orders.product",
                    ),
                ),
            ],
            options={
                "ordering": ["pk"],
                "constraints": [
                    models.UniqueConstraint(fields=("order", "product"), name="order_line_product_once"),
                    models.CheckConstraint(
                        condition=models.Q(("quantity__gte", 1), ("quantity__lte", 100)),
                        name="order_line_quantity_in_range",
                    ),
                ],
            },
        ),
        migrations.AddField(
            model_name="order", name="amount_subtotal", field=models.PositiveIntegerField(default=0)
        ),
        migrations.AddField(
            model_name="order", name="amount_discount", field=models.PositiveIntegerField(default=0)
        ),
        migrations.AddField(
            model_name="order", name="amount_tax", field=models.PositiveIntegerField(default=0)
        ),
        migrations.AddField(
            model_name="order", name="amount_shipping", field=models.PositiveIntegerField(default=0)
        ),
        migrations.AddField(
            model_name="order",
            name="promotion_code",
            field=models.CharField(blank=True, default="", max_length=255),
        ),
        migrations.AddField(
            model_name="order", name="shipping_address", field=models.TextField(blank=True, default="")
        ),
        migrations.AddField(
            model_name="order",
            name="shipping_rate",
            field=models.CharField(blank=True, default="", max_length=255),
        ),
        migrations.AddField(
            model_name="order", name="holds_stock", field=models.BooleanField(default=False, editable=False)
        ),
        # One statement each, whatever the number of orders.
        migrations.RunSQL(
            "INSERT INTO orders_orderline (order_id, product_id, quantity, unit_amount) "
            "SELECT id, product_id, quantity, unit_amount FROM orders_order",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunSQL("UPDATE orders_order SET amount_subtotal = amount_total", migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="order", name="amount_subtotal", field=models.PositiveIntegerField()
        ),
        migrations.RemoveConstraint(model_name="order", name="order_quantity_in_range"),
        migrations.RemoveField(model_name="order", name="product"),
        migrations.RemoveField(model_name="order", name="quantity"),
        migrations.RemoveField(model_name="order", name="unit_amount"),
        migrations.AddConstraint(
            model_name="order",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    amount_total=models.F("amount_subtotal")
                    - models.F("amount_discount")
                    + models.F("amount_tax")
                    + models.F("amount_shipping")
                ),
                name="order_total_adds_up",
            ),
        ),
        migrations.RunPython(seed_goods, migrations.RunPython.noop),
    ]
