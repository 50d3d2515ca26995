"""The data migration that moves the refusals stored as failed before needs_review existed."""

import importlib

import pytest
from django.apps import apps

from payments.models import EventStatus, StripeEvent
from payments.tests.events import event, new_id

pytestmark = pytest.mark.django_db

migration = importlib.import_module("payments.migrations.0003_move_amount_mismatches_to_needs_review")


def stored(status: str, outcome: str) -> StripeEvent:
    evt = event("checkout.session.completed", {"id": new_id("cs_test_"), "object": "checkout.session"})
    return StripeEvent.objects.create(
        stripe_id=evt["id"], type=evt["type"], payload=evt, status=status, outcome=outcome
    )


def test_amount_mismatches_stored_as_failed_move_to_needs_review_and_crashes_stay_failed():
    refusal = stored("failed", "amount mismatch: session cs_1 charges 100 usd, order o is 4999 usd; ...")
    crash = stored("failed", "unexpected error: RuntimeError: the fulfilment backend is down")
    processed = stored("processed", "fulfilled")

    migration.failed_refusals_to_needs_review(apps, None)

    statuses = dict(StripeEvent.objects.values_list("pk", "status"))
    assert statuses == {
        refusal.pk: EventStatus.NEEDS_REVIEW,
        crash.pk: EventStatus.FAILED,
        processed.pk: EventStatus.PROCESSED,
    }

    migration.needs_review_to_failed(apps, None)

    assert StripeEvent.objects.get(pk=refusal.pk).status == EventStatus.FAILED
