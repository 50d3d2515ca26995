"""The chaos run's witness of fulfillment signals, installed only by `bench.settings` when asked."""

import os

from django.apps import AppConfig


class BenchConfig(AppConfig):
    name = "bench"
    verbose_name = "Benchmarks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from orders.signals import order_fulfilled

        order_fulfilled.connect(record_fulfillment_signal, dispatch_uid="bench-fulfillment-signal")


def record_fulfillment_signal(sender, *, order_id, source, stripe_event_id, **kwargs) -> None:
    """Write one witness row per signal, in the transaction that marks the order as signalled."""
    from bench.models import FulfillmentWitness

    FulfillmentWitness.objects.create(
        order_id=order_id, source=source, stripe_event_id=stripe_event_id or "", pid=os.getpid()
    )
