"""The project's Prometheus metrics, read from the database at each scrape (`payments.health`).

No in-memory counters: several web processes and the workers each know only their share, and a restart
resets them. Latencies are gauges over a recent window, not histograms, whose counts promise to only grow.
"""

from collections.abc import Iterator
from datetime import timedelta

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orders import db
from payments import health

PREFIX = "checkout"


class HealthCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        queue = health.event_queue()
        yield _labelled(
            "event_queue_depth",
            "Stored Stripe events still to process: 'waiting' are due and held by no worker, 'claimed' are "
            "held by one, 'scheduled' are failed events whose retry is not due yet.",
            "state",
            {state: getattr(queue, state) for state in ("waiting", "claimed", "scheduled")},
        )
        yield _gauge(
            "oldest_waiting_event_age_seconds",
            "How long the longest-due waiting event has been due; 0 when none waits. Growing: no worker is "
            "running, or they cannot keep up.",
            _seconds(queue.oldest_waiting_age),
        )
        yield _gauge(
            "events_processed_per_second",
            f"Events finished per second over the last {int(health.LATENCY_WINDOW.total_seconds())} s.",
            queue.finished_per_second,
        )
        capped = f"Exact up to {db.EXACT_COUNT_LIMIT}, PostgreSQL's estimate above."
        yield _labelled(
            "stripe_events",
            f"Stored Stripe events by status: needs_review waits for a person, failed for a retry or a "
            f"replay. {capped}",
            "status",
            health.stripe_event_counts(),
        )
        yield _labelled(
            "order_transitions",
            "Order transitions ever made, by who asked (webhook, redirect, replay, reconcile, admin, "
            f"command, system). {capped}",
            "source",
            health.order_transition_counts(),
        )

        latency = health.event_processing_latency()
        window = int(latency.window.total_seconds())
        quantiles = {str(quantile): value for quantile, value in latency.quantiles.items()}
        if latency.max is not None:
            quantiles["1"] = latency.max
        yield _labelled(
            "event_processing_latency_seconds",
            f"Seconds from storing a Stripe event to finishing it, over the events received in the last "
            f"{window} s: quantile 0.5, 0.9, 0.99 and 1 (the slowest). Absent when none finished.",
            "quantile",
            quantiles,
        )
        lost = {
            "paid_order": health.orders_paid_not_fulfilled(),
            "stripe_event": health.stripe_events_undelivered(),
        }
        answered = {kind: figures for kind, figures in lost.items() if figures is not None}
        yield _labelled(
            "lost_webhooks",
            f"Webhooks lost for over {int(health.lost_after().total_seconds())} s (the worker's lease), by "
            "kind: 'paid_order' counts orders paid (confirmed by the buyer's return) and not fulfilled; "
            f"'stripe_event' events Stripe lists as not delivered (the newest {health.UNDELIVERED_LIMIT}) "
            "that were not stored here either.",
            "kind",
            {kind: figures.count for kind, figures in answered.items()},
        )
        yield _labelled(
            "lost_webhook_oldest_age_seconds",
            "How long ago the oldest of those was paid, or created at Stripe; 0 when none.",
            "kind",
            {kind: _seconds(figures.oldest_age) for kind, figures in answered.items()},
        )
        yield _gauge(
            "stripe_events_api_up",
            f"1 when Stripe answered the list of undelivered events (asked at most every "
            f"{health.UNDELIVERED_CACHE_SECONDS} s, waited on for at most "
            f"{health.UNDELIVERED_TIMEOUT_SECONDS:g} s); 0, and no kind='stripe_event' figures, when not.",
            int(lost["stripe_event"] is not None),
        )
        yield _gauge(
            "event_processing_latency_events",
            f"Finished Stripe events the latency quantiles describe (received in the last {window} s, "
            f"at most the most recent {health.LATENCY_SAMPLE_LIMIT}).",
            latency.count,
        )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=value)


def _labelled(name: str, documentation: str, label: str, values: dict[str, float]) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(f"{PREFIX}_{name}", documentation, labels=[label])
    for key, value in values.items():
        gauge.add_metric([key], value)
    return gauge


def _seconds(age: timedelta | None) -> float:
    return age.total_seconds() if age is not None else 0.0
