"""Seed the demo catalog so a fresh clone has something to sell."""

from django.db import migrations

DEMO_PRODUCTS = [
    {
        "sku": "starter_product_demo",
        "name": "Starter plan",
        "description": "A month of the starter plan, for trying things out.",
        "unit_amount": 999,
        "currency": "usd",
    },
    {
        "sku": "standard_product_demo",
        "name": "Standard plan",
        "description": "A month of the standard plan, for small teams.",
        "unit_amount": 1999,
        "currency": "usd",
    },
    {
        "sku": "premium_product_demo",
        "name": "Premium plan",
        "description": "A month of the premium plan, with priority support.",
        "unit_amount": 4999,
        "currency": "usd",
    },
]


def seed(apps, schema_editor):
    Product = apps.get_model("orders", "Product")
    for fields in DEMO_PRODUCTS:
        Product.objects.get_or_create(sku=fields["sku"], defaults=fields)


def unseed(apps, schema_editor):
    Product = apps.get_model("orders", "Product")
    Product.objects.filter(sku__in=[p["sku"] for p in DEMO_PRODUCTS], orders__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("orders", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
