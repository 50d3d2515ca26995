"""The stored event becomes its own queue entry: when it is due, and until when a worker holds it.

Events already finished need no attempt; failed ones whose attempts ran out wait for a replay, as before.
The queue's partial index is built CONCURRENTLY on PostgreSQL, so webhooks are stored while it builds.
"""

import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from orders.db import AddIndexConcurrentlyOnPostgres

UNFINISHED = ("received", "failed")


def settle_the_queue(apps, schema_editor):
    StripeEvent = apps.get_model("payments", "StripeEvent")
    events = StripeEvent.objects.using(schema_editor.connection.alias)
    events.exclude(status__in=UNFINISHED).update(next_attempt_at=None)
    events.filter(status="failed", attempts__gte=settings.STRIPE_EVENT_MAX_ATTEMPTS).update(
        next_attempt_at=None
    )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("payments", "0006_stripe_event_payload_text"),
    ]

    operations = [
        migrations.AddField(
            model_name="stripeevent",
            name="claimed_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="stripeevent",
            name="next_attempt_at",
            field=models.DateTimeField(blank=True, default=django.utils.timezone.now, null=True),
        ),
        migrations.RunPython(settle_the_queue, migrations.RunPython.noop),
        AddIndexConcurrentlyOnPostgres(
            model_name="stripeevent",
            index=models.Index(
                condition=models.Q(("next_attempt_at__isnull", False), ("status__in", UNFINISHED)),
                fields=["next_attempt_at", "id"],
                name="stripeevent_queue_idx",
            ),
        ),
    ]
