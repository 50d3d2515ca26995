"""The project's Prometheus metrics, read from the database at scrape time.

A custom collector rather than counters kept in memory: gunicorn runs several web processes and the
task workers are other processes still, so no one process knows the totals, and a restart would reset
them. The database does know, so each scrape asks it (`payments.health`, a handful of indexed
queries) and every web process answers the same.

The latency figures are gauges over a recent window, not a Prometheus histogram or summary: those types
promise counts that only grow, which a window recomputed at each scrape does not, so `rate()` over them
would mislead.
"""

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orders import db
from payments import health

PREFIX = "checkout"


class HealthCollector(Collector):
    """Yield the queue's and the inbox's figures, read afresh at each collect()."""

    def collect(self) -> Iterator[Metric]:
        queue = health.event_queue()
        depth = GaugeMetricFamily(
            f"{PREFIX}_event_queue_depth",
            "Stored Stripe events still to process: 'waiting' are due and held by no worker, 'claimed' are "
            "held by one, 'scheduled' are failed events whose retry is not due yet.",
            labels=["state"],
        )
        for state in ("waiting", "claimed", "scheduled"):
            depth.add_metric([state], getattr(queue, state))
        yield depth
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
        events = GaugeMetricFamily(
            f"{PREFIX}_stripe_events",
            "Stored Stripe events by status: needs_review waits for a person, failed for a retry or a "
            f"replay. Exact up to {db.EXACT_COUNT_LIMIT}, PostgreSQL's estimate above.",
            labels=["status"],
        )
        for status, count in health.stripe_event_counts().items():
            events.add_metric([status], count)
        yield events
        transitions = GaugeMetricFamily(
            f"{PREFIX}_order_transitions",
            "Order transitions ever made, by who asked (webhook, redirect, replay, reconcile, admin, "
            f"command, system). Exact up to {db.EXACT_COUNT_LIMIT}, PostgreSQL's estimate above.",
            labels=["source"],
        )
        for source, count in health.order_transition_counts().items():
            transitions.add_metric([source], count)
        yield transitions

        latency = health.event_processing_latency()
        window = int(latency.window.total_seconds())
        seconds = GaugeMetricFamily(
            f"{PREFIX}_event_processing_latency_seconds",
            f"Seconds from storing a Stripe event to finishing it, over the events received in the last "
            f"{window} s: quantile 0.5, 0.9, 0.99 and 1 (the slowest). Absent when none finished.",
            labels=["quantile"],
        )
        for quantile, value in latency.quantiles.items():
            seconds.add_metric([str(quantile)], value)
        if latency.max is not None:
            seconds.add_metric(["1"], latency.max)
        yield seconds
        after = int(health.lost_after().total_seconds())
        lost = {
            "paid_order": health.orders_paid_not_fulfilled(),
            "stripe_event": health.stripe_events_undelivered(),
        }
        count = GaugeMetricFamily(
            f"{PREFIX}_lost_webhooks",
            f"Webhooks lost for over {after} s (the worker's lease), by kind: 'paid_order' counts orders "
            "paid (confirmed by the buyer's return) and not fulfilled; 'stripe_event' events Stripe lists as "
            f"not delivered (the newest {health.UNDELIVERED_LIMIT}) that were not stored here either.",
            labels=["kind"],
        )
        age = GaugeMetricFamily(
            f"{PREFIX}_lost_webhook_oldest_age_seconds",
            "How long ago the oldest of those was paid, or created at Stripe; 0 when none.",
            labels=["kind"],
        )
        for kind, figures in lost.items():
            if figures is not None:
                count.add_metric([kind], figures.count)
                age.add_metric([kind], _seconds(figures.oldest_age))
        yield from (count, age)
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
            "at most the most recent "
            f"{health.LATENCY_SAMPLE_LIMIT}).",
            latency.count,
        )


def metrics_exposition() -> bytes:
    """Return every metric in Prometheus' text exposition format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HealthCollector())
    return generate_latest(registry)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=value)


def _seconds(age) -> float:
    return age.total_seconds() if age is not None else 0.0
