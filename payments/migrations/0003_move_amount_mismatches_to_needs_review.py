"""Move the refusals stored as failed before needs_review existed: amount mismatches, which no retry cures."""

from django.db import migrations

# What the handlers wrote as the outcome of a refusal: "amount mismatch: session ... charges ...".
REFUSAL_PREFIX = "amount mismatch"


def failed_refusals_to_needs_review(apps, schema_editor):
    StripeEvent = apps.get_model("payments", "StripeEvent")
    StripeEvent.objects.filter(status="failed", outcome__startswith=REFUSAL_PREFIX).update(
        status="needs_review"
    )


def needs_review_to_failed(apps, schema_editor):
    StripeEvent = apps.get_model("payments", "StripeEvent")
    StripeEvent.objects.filter(status="needs_review").update(status="failed")


class Migration(migrations.Migration):
    dependencies = [("payments", "0002_stripe_event_status_needs_review")]

    operations = [migrations.RunPython(failed_refusals_to_needs_review, needs_review_to_failed)]
