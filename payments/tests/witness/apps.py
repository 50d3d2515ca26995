"""A test-only app for worker processes: it records each signal in files a test can read.

Workers started by tests with `--settings payments.tests.witness.settings` load it. Each signal appends a
line naming what it is about and the worker's pid (`<order id> <pid>` for `order_fulfilled`,
`<refund id> <pid>` for `order_refunded`, `<dispute id> <status> <pid>` for `order_disputed`) to
`$WITNESS_DIR/<file>-claimed` when its receiver runs, and to `$WITNESS_DIR/<file>-sent` when the signal's
transaction commits; the fulfilment's files are `claimed` and `sent`. With `WITNESS_BLOCK=true` the
receiver then blocks for ever, as a worker stuck mid-task does until it is killed; with
`WITNESS_FAIL=N` it raises on its first N calls of each kind, as a receiver whose warehouse is down does;
with `WITNESS_SLOW=S` it takes S seconds.
"""

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from django.apps import AppConfig
from django.db import transaction


def _path(name: str) -> Path:
    return Path(os.environ["WITNESS_DIR"]) / name


def _append(name: str, line: str) -> None:
    with open(_path(name), "a") as witness:
        witness.write(line + "\n")


def _calls(name: str) -> int:
    path = _path(name)
    return len(path.read_text().splitlines()) if path.exists() else 0


def _witness(prefix: str, describe: Callable[..., str]) -> Callable[..., None]:
    claimed, sent = f"{prefix}claimed", f"{prefix}sent"

    def receiver(sender, **kwargs) -> None:
        line = f"{describe(**kwargs)} {os.getpid()}"
        _append(claimed, line)
        if _calls(claimed) <= int(os.environ.get("WITNESS_FAIL", "0")):
            raise RuntimeError("the witness's warehouse is down")
        transaction.on_commit(lambda: _append(sent, line))
        time.sleep(float(os.environ.get("WITNESS_SLOW", "0")))
        if os.environ.get("WITNESS_BLOCK") == "true":
            threading.Event().wait()

    return receiver


witness_receiver = _witness("", lambda order_id, **kwargs: str(order_id))
witness_refunded = _witness("refunded-", lambda refund_id, **kwargs: refund_id)
witness_disputed = _witness("disputed-", lambda dispute_id, status, **kwargs: f"{dispute_id} {status}")


class WitnessConfig(AppConfig):
    name = "payments.tests.witness"
    label = "witness"

    def ready(self) -> None:
        from orders.signals import order_disputed, order_fulfilled, order_refunded

        order_fulfilled.connect(witness_receiver, dispatch_uid="witness")
        order_refunded.connect(witness_refunded, dispatch_uid="witness-refunded")
        order_disputed.connect(witness_disputed, dispatch_uid="witness-disputed")
