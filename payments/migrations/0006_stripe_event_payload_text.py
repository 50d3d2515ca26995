"""Keep the body Stripe signed as text; the JSON copy becomes nullable, for what the database cannot hold.

Events stored before this keep the JSON copy's text as their body: on PostgreSQL that is jsonb's own
serialisation (keys re-ordered), the nearest thing to what Stripe sent that is left.
"""

from django.db import migrations, models
from django.db.models.functions import Cast


def fill_payload_text(apps, schema_editor):
    StripeEvent = apps.get_model("payments", "StripeEvent")
    StripeEvent.objects.using(schema_editor.connection.alias).update(
        payload_text=Cast("payload", models.TextField())
    )


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0005_admin_list_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="stripeevent",
            name="payload_text",
            field=models.TextField(default=""),
            preserve_default=False,
        ),
        migrations.RunPython(fill_payload_text, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="stripeevent",
            name="payload_text",
            field=models.TextField(
                help_text="The body exactly as Stripe sent and signed it (an event from the Events API or a "
                "file: as serialised here)."
            ),
        ),
        migrations.AlterField(
            model_name="stripeevent",
            name="payload",
            field=models.JSONField(blank=True, null=True, help_text="A queryable copy of the event."),
        ),
    ]
