import os
import threading
from pathlib import Path

from django.apps import AppConfig
from django.db import transaction


def _append(name: str, line: str) -> None:
    with open(Path(os.environ["WITNESS_DIR"]) / name, "a") as witness:
        witness.write(line + "\n")


def witness_receiver(sender, order_id, **kwargs) -> None:
    line = f"{order_id} {os.getpid()}"
    _append("claimed", line)
    transaction.on_commit(lambda: _append("sent", line))
    if os.environ.get("WITNESS_BLOCK") == "true":
        threading.Event().wait()


class WitnessConfig(AppConfig):
    name = "payments.tests.witness"
    label = "witness"

    def ready(self) -> None:
        from orders.signals import order_fulfilled

        order_fulfilled.connect(witness_receiver, dispatch_uid="witness")
