"""`/metrics`: closed unless the settings open it, and its figures are the database's."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from checkout_demo.env import env_networks
from orders.models import Order, OrderStatus
from payments.models import EventStatus
from payments.tests.events import emulator_order
from payments.tests.health_rows import event_stored, transitions_written

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-the-test-suite-0123456789"


def _networks(value: str, monkeypatch) -> list:
    monkeypatch.setenv("TEST_METRICS_ALLOWED_IPS", value)
    return env_networks("TEST_METRICS_ALLOWED_IPS")


@pytest.fixture
def metrics_open(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = []


def _scrape(client, **headers):
    return client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **headers)


def test_metrics_are_off_with_neither_a_token_nor_addresses(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = "", []

    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404


def test_a_missing_token_is_asked_for(client, metrics_open):
    response = client.get("/metrics")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'


@pytest.mark.parametrize("authorization", [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer x"])
def test_a_wrong_token_is_refused(client, metrics_open, authorization):
    response = client.get("/metrics", HTTP_AUTHORIZATION=authorization)

    assert response.status_code == 403
    assert b"checkout_" not in response.content


def test_a_token_sent_by_another_scheme_is_asked_for_as_a_bearer_token(client, metrics_open):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'


def test_the_right_token_reads_the_metrics(client, metrics_open):
    response = _scrape(client)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "no-cache" in response["Cache-Control"]


def test_an_allowed_address_reads_the_metrics_without_a_token(client, settings, monkeypatch):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = _networks("10.0.0.0/8", monkeypatch)

    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403


def test_a_spoofed_forwarded_for_does_not_open_the_metrics(client, settings, monkeypatch):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = _networks("10.0.0.0/8", monkeypatch)
    settings.TRUSTED_PROXY_COUNT = 0

    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="10.1.2.3")

    assert response.status_code == 403


def test_behind_a_trusted_proxy_the_forwarded_client_is_checked(client, settings, monkeypatch):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = _networks("198.51.100.7", monkeypatch)
    settings.TRUSTED_PROXY_COUNT = 1

    allowed = client.get("/metrics", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7")
    refused = client.get("/metrics", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7, 6.6.6.6")

    assert (allowed.status_code, refused.status_code) == (200, 403)


def test_with_both_set_a_scrape_needs_the_address_and_the_token(client, metrics_open, settings, monkeypatch):
    settings.METRICS_ALLOWED_IPS = _networks("10.0.0.0/8", monkeypatch)

    assert _scrape(client, REMOTE_ADDR="10.1.2.3").status_code == 200
    assert _scrape(client, REMOTE_ADDR="203.0.113.9").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 401


def test_only_reads_are_answered(client, metrics_open):
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


def _samples(response) -> dict[tuple[str, tuple], float]:
    """Return every sample of the exposition, keyed by name and sorted labels."""
    assert response.status_code == 200, response.content
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def test_the_exposition_reports_the_seeded_queue_inbox_and_transitions(client, metrics_open, product):
    now = timezone.now()
    event_stored(status=EventStatus.RECEIVED, received_at=now - timedelta(seconds=120))
    event_stored(status=EventStatus.RECEIVED, received_at=now - timedelta(seconds=60))
    event_stored(status=EventStatus.FAILED, next_attempt_at=now + timedelta(minutes=10))
    event_stored(status=EventStatus.RECEIVED, claimed_until=now + timedelta(minutes=5))
    for _ in range(3):
        event_stored(status=EventStatus.PROCESSED, received_at=now - timedelta(seconds=10), processed_at=now)
    event_stored(status=EventStatus.NEEDS_REVIEW, received_at=now - timedelta(seconds=10), processed_at=now)
    transitions_written(product=product, counts={"webhook": 3, "reconcile": 1})

    samples = _samples(_scrape(client))

    depth = {
        labels[0][1]: value
        for (name, labels), value in samples.items()
        if name == "checkout_event_queue_depth"
    }
    assert depth == {"waiting": 2, "claimed": 1, "scheduled": 1}
    # The scrape runs a moment after `now`: the age is at least the seeded one, and not much more.
    assert 120 <= samples[("checkout_oldest_waiting_event_age_seconds", ())] < 180
    assert samples[("checkout_events_processed_per_second", ())] == 4 / 300
    assert {
        labels[0][1]: value for (name, labels), value in samples.items() if name == "checkout_stripe_events"
    } == {
        "received": 3,
        "processed": 3,
        "ignored": 0,
        "failed": 1,
        "needs_review": 1,
        "settled": 0,
    }
    transitions = {
        labels[0][1]: value
        for (name, labels), value in samples.items()
        if name == "checkout_order_transitions"
    }
    assert transitions == {
        "redirect": 0,
        "webhook": 3,
        "replay": 0,
        "reconcile": 1,
        "admin": 0,
        "command": 0,
        "system": 0,
    }
    assert samples[("checkout_event_processing_latency_events", ())] == 4
    assert samples[("checkout_event_processing_latency_seconds", (("quantile", "0.5"),))] == pytest.approx(
        10, abs=1
    )
    assert samples[("checkout_event_processing_latency_seconds", (("quantile", "1"),))] == pytest.approx(
        10, abs=1
    )


def test_an_idle_shop_exports_zeros_and_every_metric_has_help(client, metrics_open):
    response = _scrape(client)

    families = {family.name: family for family in text_string_to_metric_families(response.content.decode())}
    assert [sample.value for sample in families["checkout_event_queue_depth"].samples] == [0, 0, 0]
    assert families["checkout_oldest_waiting_event_age_seconds"].samples[0].value == 0
    assert families["checkout_events_processed_per_second"].samples[0].value == 0
    assert families["checkout_event_processing_latency_seconds"].samples == []
    assert all(family.documentation for family in families.values())


def test_lost_webhooks_show_paid_orders_not_fulfilled_and_events_stripe_did_not_deliver(
    client, metrics_open, settings, emulator, synced_product
):
    settings.WORKER_LEASE_SECONDS = 0  # whatever is on its way counts at once
    paid, _ = emulator_order(synced_product)
    Order.objects.filter(pk=paid.pk).update(
        status=OrderStatus.CONFIRMED, confirmed_at=timezone.now() - timedelta(minutes=20)
    )
    emulator.configure(webhook_url="http://127.0.0.1:9/stripe-webhook", webhook_timing="hold")
    _, held = emulator_order(synced_product)
    emulator.pay(held.id, "card")

    samples = _samples(_scrape(client))

    paid, event = (("kind", "paid_order"),), (("kind", "stripe_event"),)
    assert samples[("checkout_lost_webhooks", paid)] == 1
    assert 20 * 60 <= samples[("checkout_lost_webhook_oldest_age_seconds", paid)] < 21 * 60
    assert samples[("checkout_stripe_events_api_up", ())] == 1
    assert samples[("checkout_lost_webhooks", event)] == 1
    assert 0 <= samples[("checkout_lost_webhook_oldest_age_seconds", event)] < 60


def test_without_an_answer_from_stripe_its_figures_are_absent_not_zero(client, metrics_open):
    samples = _samples(_scrape(client))  # no Stripe key in the test settings

    assert samples[("checkout_stripe_events_api_up", ())] == 0
    assert [labels for name, labels in samples if name == "checkout_lost_webhooks"] == [
        (("kind", "paid_order"),)
    ]
    assert samples[("checkout_lost_webhook_oldest_age_seconds", (("kind", "paid_order"),))] == 0
