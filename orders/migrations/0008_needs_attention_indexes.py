"""The admin's Needs attention page at a million orders: flagged orders, refunds not settled, open disputes.

Built CONCURRENTLY on PostgreSQL so checkouts and webhooks keep writing while they build (see
orders/db_operations.py); that cannot run in a transaction, hence `atomic = False`.
"""

from django.db import migrations, models

from orders.db import AddIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("orders", "0007_admin_search_indexes"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="order",
            index=models.Index(
                condition=models.Q(needs_attention=True),
                fields=["created_at", "id"],
                name="order_attention_created_idx",
            ),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="orderrefund",
            index=models.Index(fields=["status", "created_at"], name="refund_status_created_idx"),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="orderdispute",
            index=models.Index(fields=["status", "evidence_due_by"], name="dispute_status_due_idx"),
        ),
    ]
