"""Run the emulator from the command line: `python -m stripe_emulator --port 12111`."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from .config import REFUND_MODES, TIMINGS
from .emulator import EmulatorServer

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# How often the main thread looks whether a stop signal came.
STOP_POLL_SECONDS = 0.1


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m stripe_emulator",
        description="Serve an offline emulator of the Stripe API slice this project uses.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111, help="0 picks a free port")
    parser.add_argument(
        "--webhook-url", default=None, help="where to POST webhooks (none: events are only listed)"
    )
    parser.add_argument(
        "--webhook-secret",
        action="append",
        dest="webhook_secrets",
        default=None,
        help="signing secret (repeat for several v1 entries)",
    )
    parser.add_argument(
        "--webhook-delay", type=float, default=0.0, help="seconds before the first delivery attempt"
    )
    parser.add_argument(
        "--webhook-timing",
        choices=TIMINGS,
        default="async",
        help="deliver async (like Stripe), before the redirect, or hold",
    )
    parser.add_argument("--duplicates", type=int, default=1, help="copies of each delivery")
    parser.add_argument(
        "--drop-rate", type=float, default=0.0, help="probability that an event is never delivered"
    )
    parser.add_argument("--drop-next", type=int, default=0, help="drop the next N events")
    parser.add_argument(
        "--async-delay", type=float, default=2.0, help="seconds before a delayed payment method settles"
    )
    parser.add_argument(
        "--refund-mode",
        choices=REFUND_MODES,
        default="succeeded",
        help="refunds succeed at once, or stay pending until POST /_emulator/refunds/{id}/settle",
    )
    parser.add_argument("--max-attempts", type=int, default=5)
    parser.add_argument(
        "--retry-backoff", type=float, default=0.5, help="seconds before the first retry, doubled each time"
    )
    parser.add_argument("--delivery-timeout", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--state-file",
        default=None,
        help="keep every object in this JSON file: loaded at start, rewritten after each change",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT (Ctrl-C) or SIGTERM."""
    args = build_parser().parse_args(argv)
    stop_signals = record_stop_signals()
    knobs: dict[str, Any] = {
        name: getattr(args, name)
        for name in (
            "webhook_delay",
            "webhook_timing",
            "duplicates",
            "drop_rate",
            "drop_next",
            "async_delay",
            "max_attempts",
            "retry_backoff",
            "delivery_timeout",
            "seed",
            "refund_mode",
        )
    }
    try:
        server = EmulatorServer(
            host=args.host,
            port=args.port,
            webhook_url=args.webhook_url,
            webhook_secrets=args.webhook_secrets,
            log_requests=args.verbose,
            state_file=args.state_file,
            **knobs,
        )
        server.start()
    except (ValueError, OSError) as exc:
        print(f"stripe-emulator: {exc}", file=sys.stderr)
        return 2
    secrets = ", ".join(server.get_config()["webhook_secrets"])
    target = args.webhook_url or "nowhere (events are only listed)"
    print(
        f"Stripe emulator listening on {server.base_url} (webhooks to {target}, secrets {secrets})",
        flush=True,
    )
    while not stop_signals:
        time.sleep(STOP_POLL_SECONDS)
    server.stop()
    return 0


def record_stop_signals() -> list[int]:
    """Make SIGINT and SIGTERM ask for a clean stop; return the list they are appended to."""
    # Both get a handler of our own, before anything starts: a parent that ignores SIGINT (a
    # background job of a non-interactive shell, some CI runners) passes the ignoring on, and
    # Python then never raises KeyboardInterrupt, so Ctrl-C or `kill -INT` did nothing. The
    # handler only appends: it runs in the main thread between two bytecodes, and taking a lock
    # there (as Event.set does) deadlocks if the main thread was holding it.
    received: list[int] = []
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda number, _frame: received.append(number))
    return received


if __name__ == "__main__":
    sys.exit(main())
