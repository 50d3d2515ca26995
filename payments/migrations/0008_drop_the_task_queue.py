"""The inbox is the queue now: drop django-tasks-db's table, which the project no longer installs.

Its running-tasks index (0004) goes with it. Nothing in it is needed: an event's processing is owed by the
event's own row, a signal by its outbox column.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0007_stripe_event_queue"),
    ]

    operations = [
        migrations.RunSQL("DROP TABLE IF EXISTS django_tasks_database_dbtaskresult", migrations.RunSQL.noop),
    ]
