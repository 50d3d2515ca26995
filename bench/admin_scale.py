"""How fast is the admin with a million orders, transitions and Stripe events?

    .venv/bin/python bench/admin_scale.py                  # PostgreSQL, 1,000,000 of each
    .venv/bin/python bench/admin_scale.py --orders 20000   # a quicker look
    .venv/bin/python bench/admin_scale.py --keep           # keep the database (and reuse it next time)

It creates a fresh PostgreSQL database (dropping one of the same name), migrates it, and seeds it in SQL
with `INSERT ... SELECT generate_series`: N orders (statuses, amounts, e-mails, Checkout Session and
PaymentIntent ids spread as a shop's are, over the last 90 days), about N transitions (one per order
that left `pending`, two for those confirmed by the redirect first) and N Stripe events (one per such
order, the rest events that name no order). Every value derives from the row's number, so a run can
name a row it knows exists (the e-mail, session id, payment intent and order id it searches for). Then
VACUUM ANALYZE, and each admin page is requested through Django's test client as a superuser, in this process,
once to warm up and three times timed: the server's time, without HTTP. It prints the median per page,
how many queries the page ran and its slowest query, and checks that each page answered 200 and that
each search found the row it looked for. Exit status 1 when a check fails, 2 when set-up fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datetime import UTC

from bench.harness import (
    Database,
    HarnessError,
    bench_environment,
    default_database_url,
    django_configure,
    say,
)

RUNS = 3
DAYS = 90
# Every order's creation time is NOW minus a permutation of the seconds in DAYS days (STRIDE is prime and
# does not divide the period), so creation times are spread evenly and no two orders share a second.
PERIOD = DAYS * 86400
STRIDE = 7919
CUSTOMERS = 200_000

# Shares of orders per status, out of 100: the n-th order's status is decided by n % 100.
STATUS_SQL = """CASE
    WHEN g % 100 < 80 THEN 'fulfilled'
    WHEN g % 100 < 88 THEN 'expired'
    WHEN g % 100 < 92 THEN 'pending'
    WHEN g % 100 < 96 THEN 'failed'
    ELSE 'confirmed' END"""

# One order in a thousand is an expired one its buyer paid anyway: flagged, its event needs_review.
FLAGGED_SQL = "g % 1000 = 881"

# Expressions of the row number g that the three seeds share, so an event and a transition point at
# their order, and the timing runs can name rows that exist.
ORDER_ID_SQL = "md5('order-' || g)::uuid"
CREATED_SQL = f"%(now)s - ((g::bigint * {STRIDE}) % {PERIOD}) * interval '1 second'"
SESSION_SQL = "'cs_test_a1' || md5('session-' || g) || substr(md5('s2-' || g), 1, 16)"
INTENT_SQL = "'pi_3' || substr(md5('intent-' || g), 1, 23)"
# Most buyers type their address in lower case; one in ten with capitals, as Stripe passes it on.
EMAIL_SQL = f"""CASE WHEN g % 10 = 3
    THEN 'Buyer' || (g % {CUSTOMERS}) || '@Example.com'
    ELSE 'buyer' || (g % {CUSTOMERS}) || '@example.com' END"""

SEED_ORDERS = f"""
INSERT INTO orders_order (
    id, amount_subtotal, amount_discount, amount_tax, amount_shipping, amount_total, currency, status,
    previous_status, promotion_code, shipping_address, shipping_rate, holds_stock,
    stripe_checkout_session_id, checkout_token, stripe_payment_intent_id, customer_email, payment_pending,
    failure_reason, created_at, updated_at, confirmed_at, fulfilled_at, failed_at, expired_at,
    fulfillment_signalled_at, amount_refunded, refunded_at, needs_attention, attention_reason,
    attention_settled_by)
SELECT id, unit_amount * quantity, 0, 0, 0, unit_amount * quantity, 'usd', status,
    CASE WHEN status = 'pending' THEN '' WHEN g % 20 = 0 AND status = 'fulfilled' THEN 'confirmed'
         ELSE 'pending' END, '', '', '', false,
    session_id, NULL,
    CASE WHEN status IN ('fulfilled', 'failed', 'confirmed') THEN intent ELSE '' END,
    CASE WHEN status = 'pending' THEN '' ELSE email END,
    status = 'confirmed' AND g % 2 = 0,
    CASE WHEN status = 'failed' THEN 'The delayed payment failed (checkout.session.async_payment_failed).'
         ELSE '' END,
    created, created + interval '3 minutes',
    CASE WHEN status = 'confirmed' OR (status = 'fulfilled' AND g % 20 = 0)
         THEN created + interval '1 minute' END,
    CASE WHEN status = 'fulfilled' THEN created + interval '2 minutes' END,
    CASE WHEN status = 'failed' THEN created + interval '2 minutes' END,
    CASE WHEN status = 'expired' THEN created + interval '1 hour' END,
    CASE WHEN status = 'fulfilled' THEN created + interval '2 minutes' END,
    0, NULL, {FLAGGED_SQL},
    CASE WHEN {FLAGGED_SQL} THEN 'A payment arrived after the order had closed (' ||
        'evt_1' || substr(md5('event-' || g), 1, 23) || '); it is being refunded.' ELSE '' END, ''
FROM (
    SELECT g, {ORDER_ID_SQL} AS id, {STATUS_SQL} AS status, {CREATED_SQL} AS created,
        {SESSION_SQL} AS session_id, {INTENT_SQL} AS intent, {EMAIL_SQL} AS email,
        (%(products)s)[1 + g % 3] AS product_id, (%(prices)s)[1 + g % 3] AS unit_amount,
        1 + (g / 7) % 4 AS quantity
    FROM generate_series(1, %(n)s) AS g
) AS seed
"""

# Each order's one line, as the migration to orders of several lines left the orders made before it.
SEED_LINES = f"""
INSERT INTO orders_orderline (order_id, product_id, quantity, unit_amount)
SELECT {ORDER_ID_SQL}, (%(products)s)[1 + g % 3], 1 + (g / 7) % 4, (%(prices)s)[1 + g % 3]
FROM generate_series(1, %(n)s) AS g
"""

SEED_TRANSITIONS = f"""
INSERT INTO orders_ordertransition (
    order_id, from_status, to_status, source, stripe_event_id, note, created_at)
SELECT {ORDER_ID_SQL}, 'pending', 'confirmed', 'redirect', NULL, '', {CREATED_SQL} + interval '1 minute'
FROM generate_series(1, %(n)s) AS g
WHERE {STATUS_SQL} = 'confirmed' OR ({STATUS_SQL} = 'fulfilled' AND g % 20 = 0)
UNION ALL
SELECT {ORDER_ID_SQL}, CASE WHEN g % 20 = 0 THEN 'confirmed' ELSE 'pending' END, {STATUS_SQL}, 'webhook',
    'evt_1' || substr(md5('event-' || g), 1, 23), '', {CREATED_SQL} + interval '2 minutes'
FROM generate_series(1, %(n)s) AS g
WHERE {STATUS_SQL} IN ('fulfilled', 'failed', 'expired')
"""

EVENT_TYPE_SQL = f"""CASE {STATUS_SQL}
    WHEN 'fulfilled' THEN 'checkout.session.completed'
    WHEN 'expired' THEN 'checkout.session.expired'
    WHEN 'failed' THEN 'checkout.session.async_payment_failed'
    WHEN 'confirmed' THEN 'checkout.session.completed'
    ELSE CASE WHEN g % 2 = 0 THEN 'charge.succeeded' ELSE 'payment_intent.created' END END"""
# One event per order that left pending; a pending order's number gives an event about no order. Its body
# is stored as text (payload_text) beside the queryable copy; an unfinished one is the queue's (received:
# due at once, failed: its retry due later).
SEED_EVENTS = f"""
INSERT INTO payments_stripeevent (
    stripe_id, type, api_version, livemode, stripe_created, payload_text, payload, source, request_id, status,
    attempts, outcome, last_error, order_id, received_at, processed_at, next_attempt_at)
SELECT stripe_id, type, '2025-03-31.basil', false, received - interval '1 second', payload::text, payload,
    CASE WHEN g % 50 = 7 THEN 'backfill' ELSE 'webhook' END, '',
    status, CASE WHEN status = 'received' THEN 0 WHEN status = 'failed' THEN 3 ELSE 1 END,
    CASE status WHEN 'processed' THEN 'fulfilled' WHEN 'ignored' THEN 'no handler for this type'
        ELSE '' END,
    CASE WHEN status = 'failed' THEN 'Traceback (most recent call last): RuntimeError: backend down'
        ELSE '' END,
    CASE WHEN order_status = 'pending' THEN NULL ELSE order_id END,
    received, CASE WHEN status IN ('processed', 'ignored', 'needs_review')
        THEN received + interval '20 milliseconds' END,
    CASE status WHEN 'received' THEN received WHEN 'failed' THEN received + interval '40 seconds' END
FROM (
    SELECT *, jsonb_build_object('id', stripe_id, 'object', 'event', 'type', type,
        'data', jsonb_build_object('object', jsonb_build_object('id', session_id, 'object',
            'checkout.session', 'client_reference_id', order_id::text))) AS payload
    FROM (
        SELECT g, 'evt_1' || substr(md5('event-' || g), 1, 23) AS stripe_id, {EVENT_TYPE_SQL} AS type,
            {SESSION_SQL} AS session_id, {ORDER_ID_SQL} AS order_id,
            {STATUS_SQL} AS order_status, {CREATED_SQL} + interval '2 minutes' AS received,
            CASE WHEN {STATUS_SQL} = 'pending' THEN 'ignored'
                 WHEN {FLAGGED_SQL} THEN 'needs_review'
                 WHEN g % 100 = 93 THEN 'failed' WHEN g % 200 = 1 THEN 'received'
                 ELSE 'processed' END AS status
        FROM generate_series(1, %(n)s) AS g
    ) AS rows
) AS seed
"""

# One fulfilled order in fifty has a refund: most succeeded, one in a thousand orders still pending at
# Stripe, failed, or requested and never answered (the ones the Needs attention page lists).
SEED_REFUNDS = f"""
INSERT INTO orders_orderrefund (
    id, order_id, stripe_refund_id, amount, currency, status, reason, requested_by, requested_by_user,
    failure_reason, signalled_at, created_at, updated_at)
SELECT md5('refund-' || g)::uuid, {ORDER_ID_SQL},
    CASE WHEN status = 'requested' THEN NULL ELSE 're_3' || substr(md5('refund-' || g), 1, 23) END,
    100, 'usd', status, 'requested_by_customer', 'admin', 'bench-admin',
    CASE WHEN status = 'failed' THEN 'The card was closed.' ELSE '' END,
    NULL, created, created
FROM (
    SELECT g, {CREATED_SQL} + interval '1 day' AS created,
        CASE g % 1000 WHEN 11 THEN 'pending' WHEN 61 THEN 'failed' WHEN 111 THEN 'requested'
            ELSE 'succeeded' END AS status
    FROM generate_series(1, %(n)s) AS g
    WHERE g % 50 = 11
) AS seed
"""

# One fulfilled order in five hundred is disputed; one in ten of those waits for the shop's evidence.
SEED_DISPUTES = f"""
INSERT INTO orders_orderdispute (
    stripe_dispute_id, order_id, amount, currency, reason, status, evidence_due_by, signalled_status,
    created_at, updated_at)
SELECT 'dp_1' || substr(md5('dispute-' || g), 1, 23), {ORDER_ID_SQL}, 100, 'usd', 'fraudulent', status,
    CASE WHEN status IN ('needs_response', 'warning_needs_response')
        THEN %(now)s + ((g / 500) % 21) * interval '1 day' + (g % 500) * interval '1 minute'
        ELSE created + interval '14 days' END,
    status, created, created
FROM (
    SELECT g, {CREATED_SQL} + interval '2 days' AS created,
        CASE g % 5000 WHEN 17 THEN 'needs_response' WHEN 517 THEN 'warning_needs_response'
            WHEN 1017 THEN 'under_review' WHEN 1517 THEN 'lost' ELSE 'won' END AS status
    FROM generate_series(1, %(n)s) AS g
    WHERE g % 500 = 17
) AS seed
"""


def sql_for(template: str) -> str:
    """Return a seed statement with literal % doubled where psycopg parameters are not meant."""
    # The f-strings above mix psycopg's %(name)s with SQL's modulo; modulo is written `%` and doubled here.
    marker = "\0"
    for name in ("now", "products", "prices", "n"):
        template = template.replace(f"%({name})s", f"{marker}{name}{marker}")
    template = template.replace("%%", "%").replace("%", "%%")
    for name in ("now", "products", "prices", "n"):
        template = template.replace(f"{marker}{name}{marker}", f"%({name})s")
    return template


@dataclass(frozen=True)
class Page:
    """One admin page to time, and the text that proves it found what it was asked for."""

    name: str
    url: str
    expect: str | None = None


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def order_id(g: int) -> str:
    return str(uuid.UUID(_md5(f"order-{g}")))


def session_id(g: int) -> str:
    return "cs_test_a1" + _md5(f"session-{g}") + _md5(f"s2-{g}")[:16]


def intent_id(g: int) -> str:
    return "pi_3" + _md5(f"intent-{g}")[:23]


def event_id(g: int) -> str:
    return "evt_1" + _md5(f"event-{g}")[:23]


def pages(n: int) -> list[Page]:
    """Return the pages to time: the lists, their filters and searches, and one record of each kind."""
    from datetime import datetime, timedelta

    g = probe_row(n)
    day = datetime.now(UTC) - timedelta(days=10)
    email = f"buyer{g % CUSTOMERS}@example.com"
    order_list, event_list = "/admin/orders/order/", "/admin/payments/stripeevent/"
    transitions = "/admin/orders/ordertransition/"
    last_page = max(1, min(5000, n // 100))
    return [
        Page("order list", order_list),
        Page("orders: status fulfilled", f"{order_list}?status__exact=fulfilled"),
        Page("orders: status pending", f"{order_list}?status__exact=pending"),
        Page("orders: delayed payment", f"{order_list}?payment_pending__exact=1"),
        Page("orders: product", f"{order_list}?product=1"),
        Page("orders: created past 10 days", f"{order_list}?created_at__gte={day.date()}+00:00:00%2B00:00"),
        Page(f"orders: page {last_page}", f"{order_list}?p={last_page}"),
        Page("orders: search e-mail", f"{order_list}?q={email}", email),
        Page("orders: search e-mail, capitals", f"{order_list}?q={email.upper()}", email),
        Page("orders: search session id", f"{order_list}?q={session_id(g)}", order_id(g)[:8]),
        Page("orders: search payment intent", f"{order_list}?q={intent_id(g)}", order_id(g)[:8]),
        Page("orders: search order id", f"{order_list}?q={order_id(g)}", order_id(g)[:8]),
        Page("orders: search short reference", f"{order_list}?q={order_id(g)[:8]}", order_id(g)[:8]),
        Page("orders: year", f"{order_list}?created_at__year={day.year}"),
        Page("orders: month", f"{order_list}?created_at__year={day.year}&created_at__month={day.month}"),
        Page(
            "orders: day",
            f"{order_list}?created_at__year={day.year}&created_at__month={day.month}&created_at__day={day.day}",
        ),
        Page("order page", f"{order_list}{order_id(g)}/change/", session_id(g)),
        Page("events list", event_list),
        Page("events: status failed", f"{event_list}?status__exact=failed"),
        Page("events: type", f"{event_list}?type__exact=checkout.session.expired"),
        Page("events: source backfill", f"{event_list}?source__exact=backfill"),
        Page("events: of one order", f"{event_list}?order__id__exact={order_id(g)}", event_id(g)),
        Page("events: search event id", f"{event_list}?q={event_id(g)}", event_id(g)),
        Page("events: page 5000", f"{event_list}?p={last_page}"),
        Page("event page", "EVENT", event_id(g)),
        Page("transitions list", transitions),
        Page("transitions: source redirect", f"{transitions}?source__exact=redirect"),
        Page("transitions: search order id", f"{transitions}?q={order_id(g)}", order_id(g)[:8]),
        Page("needs attention", "/admin/needs-attention/", "Disputes waiting for a response"),
        Page("admin index (dashboard)", "/admin/", "Orders created today"),
        Page("orders: open past their session", f"{order_list}?session=expired_open"),
        Page("orders: needs attention", f"{order_list}?needs_attention__exact=1"),
        Page("refunds: not settled", "/admin/orders/orderrefund/?status__in=requested,pending,failed"),
        Page(
            "disputes: open", "/admin/orders/orderdispute/?status__in=needs_response,warning_needs_response"
        ),
    ]


def seed(n: int) -> dict[str, Any]:
    """Insert the rows, ANALYZE, and return how many of each and how long it took."""
    from django.db import connection
    from django.utils import timezone

    from orders.models import Product

    products = list(Product.objects.order_by("pk").values_list("pk", "unit_amount")[:3])
    if len(products) < 3:
        raise HarnessError("the demo catalog (three products) is missing: did the seed migration run?")
    params = {
        "now": timezone.now(),
        "products": [p for p, _ in products],
        "prices": [a for _, a in products],
        "n": n,
    }
    took = {}
    with connection.cursor() as cursor:
        for table, statement in (
            ("orders", SEED_ORDERS),
            ("order lines", SEED_LINES),
            ("transitions", SEED_TRANSITIONS),
            ("events", SEED_EVENTS),
            ("refunds", SEED_REFUNDS),
            ("disputes", SEED_DISPUTES),
        ):
            started = time.perf_counter()
            cursor.execute(sql_for(statement), params)
            took[table] = time.perf_counter() - started
            say(f"  seeded {cursor.rowcount:>9,} {table} in {took[table]:5.1f} s")
        started = time.perf_counter()
        # What autovacuum does to a real table: statistics, and the visibility map index-only scans need.
        cursor.execute(
            "VACUUM (ANALYZE) orders_order, orders_orderline, orders_ordertransition, payments_stripeevent,"
            " orders_orderrefund, orders_orderdispute"
        )
        took["vacuum_analyze"] = time.perf_counter() - started
    return {"seconds": {k: round(v, 1) for k, v in took.items()}}


def counts() -> dict[str, int]:
    from orders.models import Order, OrderTransition
    from payments.models import StripeEvent

    return {
        "orders": Order.objects.count(),
        "transitions": OrderTransition.objects.count(),
        "events": StripeEvent.objects.count(),
    }


def time_page(client: Any, url: str) -> dict[str, Any]:
    """Request a page once with its queries captured, then RUNS times timed; return the figures."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    # Read them now: the next request's request_started signal clears the connection's query log.
    captured = list(queries.captured_queries)
    slowest = max(captured, key=lambda q: float(q["time"]), default=None)
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
    return {
        "url": url,
        "status": response.status_code,
        "content": response.content.decode(errors="replace"),
        "median_ms": round(statistics.median(times), 1),
        "times_ms": [round(t, 1) for t in times],
        "queries": len(captured),
        "slowest_query_ms": round(float(slowest["time"]) * 1000, 1) if slowest else 0.0,
        "slowest_query": slowest["sql"][:300] if slowest else "",
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    db = Database.from_url(args.database_url)
    if db.vendor != "postgresql":
        raise HarnessError("this bench measures PostgreSQL; give a postgres:// --database-url")
    env = bench_environment(
        db.url, DJANGO_ALLOWED_HOSTS="testserver", STRIPE_SECRET_KEY="sk_test_bench_unused"
    )
    reuse = args.reuse and _database_exists(db)
    if not reuse:
        say(f"admin_scale: seeding a fresh PostgreSQL database ({db.name}) with {args.orders:,} orders")
        db.create_fresh()
    else:
        say(f"admin_scale: reusing {db.name}")
    try:
        django_configure(env)
        # The pages that answer 404 before their admin exists are reported in the table, not logged.
        logging.getLogger("django.request").setLevel(logging.ERROR)
        from django.contrib.auth.models import User
        from django.db import connection
        from django.test import Client

        seeded = {"seconds": {}} if reuse else seed(args.orders)
        rows = counts()
        say(f"  {rows['orders']:,} orders, {rows['transitions']:,} transitions, {rows['events']:,} events")
        user, _ = User.objects.get_or_create(
            username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
        )
        client = Client()
        client.force_login(user)
        from payments.models import StripeEvent

        event = StripeEvent.objects.filter(stripe_id=event_id(probe_row(args.orders))).first()
        results: dict[str, dict[str, Any]] = {}
        say(f"  {'page':<36} {'median':>9} {'queries':>8} {'slowest query':>14}  status")
        for page in pages(args.orders):
            url = page.url
            if url == "EVENT":
                url = f"/admin/payments/stripeevent/{event.pk if event else 0}/change/"
            figures = time_page(client, url)
            content = figures.pop("content")
            figures["found"] = page.expect is None or page.expect in content
            results[page.name] = figures
            note = "" if figures["found"] else f"  MISSING {page.expect}"
            say(
                f"  {page.name:<36} {figures['median_ms']:>6.1f} ms {figures['queries']:>8}"
                f" {figures['slowest_query_ms']:>11.1f} ms  {figures['status']}{note}"
            )
        server_version = connection.pg_version
        connection.close()
    finally:
        if not args.keep:
            try:
                db.drop()
            except Exception as exc:  # the figures matter more than the cleanup
                say(f"  could not drop {db.name}: {exc}")
    problems = [
        f"{name}: answered {page['status']}" for name, page in results.items() if page["status"] != 200
    ] + [f"{name}: did not show what it searched for" for name, page in results.items() if not page["found"]]
    for problem in problems:
        say(f"  CHECK FAILED: {problem}")
    slow = [name for name, page in results.items() if page["median_ms"] >= 100]
    say(f"  pages at or over 100 ms: {', '.join(slow) if slow else 'none'}")
    return {
        "ok": not problems,
        "problems": problems,
        "database": db.label,
        "server_version": server_version,
        "rows": rows,
        "seed_seconds": seeded["seconds"],
        "pages": results,
    }


def probe_row(n: int) -> int:
    """Return the number of a fulfilled order from the middle of the table, confirmed by no redirect."""
    return next(i for i in range(max(1, n // 2), n + 1) if i % 100 < 80 and i % 20 != 0)


def _database_exists(db: Database) -> bool:
    import psycopg

    try:
        with psycopg.connect(db.psycopg_dsn(), connect_timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM orders_order").fetchone()[0] > 0
    except psycopg.Error:
        return False


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=default_database_url("postgresql", "checkout_admin_bench"),
        help="the bench database, created fresh and dropped at the end "
        f"(default {default_database_url('postgresql', 'checkout_admin_bench')})",
    )
    parser.add_argument(
        "--orders", type=int, default=1_000_000, help="orders to seed; about as many transitions and events"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    parser.add_argument(
        "--reuse", action="store_true", help="time a database kept by --keep instead of seeding a new one"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file as JSON")
    args = parser.parse_args(argv)
    if args.orders < 200:
        parser.error("--orders must be at least 200")
    return args


def main(argv: list[str] | None = None, run: Callable[[argparse.Namespace], dict] = measure) -> int:
    args = parse_args(argv)
    try:
        figures = run(args)
    except HarnessError as exc:
        say(f"admin_scale: {exc}")
        return 2
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
