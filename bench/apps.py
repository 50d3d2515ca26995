"""The chaos run's witness of fulfillment signals, installed only by `bench.settings` when asked."""

import os

from django.apps import AppConfig
from django.conf import settings


class BenchConfig(AppConfig):
    name = "bench"
    verbose_name = "Benchmarks"

    def ready(self) -> None:
        from orders.signals import order_fulfilled

        order_fulfilled.connect(record_fulfillment_signal, dispatch_uid="bench-fulfillment-signal")


def record_fulfillment_signal(sender, *, order_id, source, stripe_event_id, **kwargs) -> None:
    """Append one line per signal received: order id, source, event id, process id."""
    line = f"{order_id} {source} {stripe_event_id or '-'} {os.getpid()}\n".encode()
    # One write() on an O_APPEND descriptor: lines from concurrent workers never interleave.
    fd = os.open(settings.BENCH_SIGNAL_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
