"""Index the tasks workers hold (RUNNING), which django-tasks-db's own indexes leave out.

No longer run: the project dropped django-tasks-db (the inbox is the queue, see 0008, which drops its
table and this index with it); kept so that the migration history stays whole.


Its one status index is partial on READY. Without this one, finding the tasks whose lease expired (every
worker, every quarter lease) and counting running and stuck tasks (`/metrics`) read the whole table of
finished tasks. Partial, so it holds only the few rows running at any moment. A migration of this app
because the table is django-tasks-db's: its models cannot be given Meta.indexes from here.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0003_move_amount_mismatches_to_needs_review"),
    ]

    operations = []
