"""The admin's indexes at a million orders: its ordering, and each kind of search term (orders/search.py).

Built CONCURRENTLY on PostgreSQL so checkouts and webhooks keep writing while they build (see
orders/db_operations.py); that cannot run in a transaction, hence `atomic = False`.
"""

from django.db import migrations, models
from django.db.models.functions import Upper

from orders.db import AddIndexConcurrentlyOnPostgres, RemoveIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("orders", "0006_order_transition_source_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="order",
            name="payment_pending",
            field=models.BooleanField(
                default=False,
                help_text="Set while a delayed payment method (a bank debit) waits for Stripe to report the outcome.",
            ),
        ),
        # The new ordering index first, so the list is never left without one; then the one it replaces.
        AddIndexConcurrentlyOnPostgres(
            model_name="order",
            index=models.Index(fields=["created_at", "id"], name="order_created_id_idx"),
        ),
        RemoveIndexConcurrentlyOnPostgres(model_name="order", name="order_created_idx"),
        AddIndexConcurrentlyOnPostgres(
            model_name="order",
            index=models.Index(Upper("customer_email"), name="order_email_upper_idx"),
        ),
        # The payment intent's index came with refunds (0004), which find orders by it.
        AddIndexConcurrentlyOnPostgres(
            model_name="ordertransition",
            index=models.Index(fields=["created_at", "id"], name="transition_created_id_idx"),
        ),
    ]
