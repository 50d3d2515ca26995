"""Where does the webhook's time go? Profile the Django path in one process, without HTTP.

    .venv/bin/python bench/profile_webhook.py                 # PostgreSQL, 2000 events, cProfile
    .venv/bin/python bench/profile_webhook.py --sqlite --no-profile    # just the time per event

It builds a fresh database and signed `checkout.session.completed` events as bench/webhook_load.py
does, then calls the project's WSGI application (production settings, every middleware) directly with
each request, one after the other: what is left is Django's own cost per event plus its queries. It
prints the wall time and CPU time per event, the SQL statements per event as the database saw them
(counted by Django's execute wrapper, plus the ones Django sends outside it), and the functions where
the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import secrets
import sys
import time
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    Database,
    HarnessError,
    SignedEvent,
    bench_environment,
    completed_events,
    default_database_url,
    django_configure,
    say,
    stripe_signature_header,
    wsgi_environ,
)
from bench.webhook_load import UNIT_AMOUNT, fulfilled_exactly_once, orders_create


def profile(args: argparse.Namespace) -> int:
    db = Database.from_url(args.database_url)
    secret = "whsec_bench_" + secrets.token_hex(16)
    env = bench_environment(
        db.url, STRIPE_WEBHOOK_SECRET=secret, DJANGO_LOG_LEVEL=args.log_level, STRIPE_SECRET_KEY="sk_test_x"
    )
    db.create_fresh()
    try:
        django_configure(env)
        from django.core.wsgi import get_wsgi_application
        from django.db import connection, connections

        from orders.models import Product

        product = Product.objects.create(sku="bench-profile-item", name="Bench", unit_amount=UNIT_AMOUNT)
        created = int(time.time())
        warm = completed_events(orders_create(50, product.pk), created=created)
        events = completed_events(orders_create(args.events, product.pk), created=created)
        connections.close_all()
        app = get_wsgi_application()
        statuses: Counter = Counter()

        def start_response(status: str, headers: list) -> None:
            statuses[int(status.split()[0])] += 1

        def send(batch: list[SignedEvent]) -> None:
            signed_at = int(time.time())
            for event in batch:
                environ = wsgi_environ(event, stripe_signature_header(event.body, secret, signed_at))
                response = app(environ, start_response)
                b"".join(response)
                response.close()

        send(warm)
        statements: Counter = Counter()

        def count(execute, sql, params, many, context):
            statements[sql.split(None, 1)[0].upper()] += 1
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            send(warm[:10])
        per_event = {k: v / 10 for k, v in statements.items()}

        profiler = cProfile.Profile() if args.profile else None
        wall, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        send(events)
        if profiler:
            profiler.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        problems = fulfilled_exactly_once(events)
        connections.close_all()
    finally:
        db.drop()

    n = len(events)
    say(f"profile_webhook: {db.label}, {n} events one after the other through the WSGI app (no HTTP)")
    say(f"  statuses {dict(statuses)}; checks: {'; '.join(problems) or 'every order fulfilled exactly once'}")
    say(
        f"  per event: {1000 * wall / n:.2f} ms wall, {1000 * cpu / n:.2f} ms CPU in this process"
        + (" (under cProfile, which inflates both)" if profiler else "")
    )
    say(
        "  statements per event through Django's cursor: "
        + ", ".join(f"{k} {v:g}" for k, v in sorted(per_event.items()))
        + " (plus, outside the cursor: BEGIN and COMMIT of each transaction"
        + (", and the health check's SELECT 1 per request)" if db.vendor == "postgresql" else ")")
    )
    if profiler:
        for key, title in (("tottime", "own time"), ("cumulative", "cumulative time")):
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats(key).print_stats(args.top)
            say(f"\n  top {args.top} functions by {title}:")
            say("\n".join("    " + line for line in out.getvalue().splitlines() if line.strip())[:20000])
    return 0 if not problems and set(statuses) == {200} else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="default: a fresh PostgreSQL database checkout_profile")
    parser.add_argument("--sqlite", action="store_true", help="use a fresh SQLite file in /tmp")
    parser.add_argument("-n", "--events", type=int, default=2000, help="events to send (default 2000)")
    parser.add_argument("--no-profile", dest="profile", action="store_false", help="time only, no cProfile")
    parser.add_argument("--top", type=int, default=30, help="functions to list (default 30)")
    parser.add_argument("--log-level", default="WARNING", help="DJANGO_LOG_LEVEL (default WARNING)")
    args = parser.parse_args(argv)
    if not args.database_url:
        args.database_url = default_database_url(
            "sqlite" if args.sqlite else "postgresql", "checkout_profile"
        )
    try:
        return profile(args)
    except HarnessError as exc:
        say(f"profile_webhook: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
