"""The events admin's indexes at a million events: its ordering, and its list in one type.

Built CONCURRENTLY on PostgreSQL so webhooks keep being stored while they build (orders/db_operations.py).
"""

from django.db import migrations, models

from orders.db import AddIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("payments", "0004_task_result_running_index"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="stripeevent",
            index=models.Index(fields=["received_at", "id"], name="stripeevent_received_id_idx"),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="stripeevent",
            index=models.Index(fields=["type", "received_at"], name="stripeevent_type_recv_idx"),
        ),
    ]
