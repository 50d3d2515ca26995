"""Index the tasks workers hold (RUNNING), which django-tasks-db's own indexes leave out.

Its one status index is partial on READY. Without this one, finding the tasks whose lease expired (every
worker, every quarter lease) and counting running and stuck tasks (`/metrics`) read the whole table of
finished tasks. Partial, so it holds only the few rows running at any moment. A migration of this app
because the table is django-tasks-db's: its models cannot be given Meta.indexes from here.
"""

from django.db import migrations

TABLE = "django_tasks_database_dbtaskresult"
INDEX = "payments_task_running_idx"


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0003_move_amount_mismatches_to_needs_review"),
        ("django_tasks_database", "0021_conditional_partial_index_ordering"),
    ]

    operations = [
        # The same SQL on PostgreSQL and SQLite, which both have partial indexes.
        migrations.RunSQL(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON {TABLE} (started_at) WHERE status = 'RUNNING'",
            f"DROP INDEX IF EXISTS {INDEX}",
        ),
    ]
