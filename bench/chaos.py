"""Race and chaos: thousands of real payments while workers die and the database restarts; nothing lost.

    .venv/bin/python bench/chaos.py                       # PostgreSQL, 2000 orders
    .venv/bin/python bench/chaos.py --quick               # about 100 orders, seconds
    .venv/bin/python bench/chaos.py --database-url sqlite:////tmp/checkout_chaos.sqlite3
    .venv/bin/python bench/chaos.py --database-url postgres://postgres@127.0.0.1:5433/checkout_chaos

What happens, on a fresh database, with the project served by gunicorn (gunicorn.conf.py, production
settings) and the Stripe emulator in this process, its webhooks aimed at gunicorn:

1. Every order is created through the project's own API (`POST /api/checkout/create-session`), which
   opens a real Checkout Session on the emulator.
2. The orders are paid in rounds through the emulator's control API (mostly by card, some by delayed
   methods that later succeed or fail). Each round draws new emulator knobs: 1 to 3 copies of every
   webhook (sent concurrently, in random order), a delivery delay, whether the webhook goes out before
   the buyer is redirected, and a drop rate (a dropped delivery is never sent). Right after paying, the
   buyer's browser follows the redirect to `/success`, racing the webhooks.
3. Meanwhile gunicorn workers are killed with SIGKILL (the master replaces them; the emulator retries
   what failed). The `process_events` workers (`--workers`) start only after a third of the rounds, so a
   queue has built up, and then drain it while `--worker-kills` of them are killed with SIGKILL, mid-batch
   most likely (each is started again, as a supervisor would; its claims lapse after the lease, `--lease`
   seconds for the run, and another worker takes them), and while the PostgreSQL server is restarted once,
   the queue draining, when this script may: the database is PostgreSQL on this machine, `pg_lsclusters`
   knows its port and we are root. Otherwise that step is skipped and the report says why
   (`--no-db-restart` skips it on purpose). A signal a killed worker owed is sent by a worker's sweep.
4. Recovery, as an operator would: `manage.py replay_events --from-stripe --undelivered-only` receives
   every event Stripe (the emulator) could not deliver, then `manage.py reconcile_orders --older-than 0s`
   sends the fulfillment signals still owed (none, when the sweep did its work). Before it, and after it,
   the script waits for the workers to drain the queue.
5. The invariants, printed, and the exit status 1 if any fails:
   - every paid order is fulfilled exactly once (one fulfilling transition), and every order whose
     delayed payment failed is failed, never fulfilled;
   - one `order_fulfilled` signal per fulfilled order, none for the others: a receiver installed by
     bench.settings writes a witness row in the transaction that marks the order signalled, as a shop's
     receiver writing to its database would, so a signal counts only if it committed;
   - no order in an impossible state: its transitions chain from pending through allowed moves only,
     nothing follows a final state, the last one is the order's status, the timestamps agree;
   - every event the emulator delivered (answered 2xx) was stored and processed before any recovery:
     an acknowledged event is never lost;
   - every event stored once (one row per event id) and, after recovery, every event the emulator
     created for these sessions stored and processed: nothing lost;
   - the queue drained: no stored event left waiting, failed or claimed at the end;
   - none processed twice: no two transitions name one event, and the order each event moved is the one
     its session names (the event's final status is a conditional UPDATE, so only one run commits);
   - every signal delivered exactly once (the witness rows above).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    Database,
    EmulatorProcess,
    EventWorkers,
    Gunicorn,
    HarnessError,
    bench_environment,
    default_database_url,
    django_configure,
    queue_depth,
    queue_drained,
    run_manage,
    say,
    script_exit,
)

SKU = "bench-chaos-item"
UNIT_AMOUNT = 1500
PAY_METHODS = (("card", 0.85), ("delayed_success", 0.10), ("delayed_failure", 0.05))
ALLOWED_MOVES = {
    ("pending", "confirmed"),
    ("pending", "fulfilled"),
    ("confirmed", "fulfilled"),
    ("pending", "failed"),
    ("confirmed", "failed"),
    ("pending", "expired"),
}
FINAL = {"fulfilled", "failed", "expired"}


@dataclass
class Purchase:
    """One order of the run and what happened to it from the buyer's side."""

    order_id: str
    session_id: str
    method: str = ""
    redirect_statuses: list[str] = field(default_factory=list)

    @property
    def expected(self) -> str:
        return "failed" if self.method == "delayed_failure" else "fulfilled"


@dataclass
class ChaosLog:
    """What the chaos did, for the report."""

    kills: int = 0
    worker_kills: int = 0
    claimed_at_worker_kills: list[int] = field(default_factory=list)
    depth_at_db_restart: int | None = None
    db_restart: str = "not attempted"
    rounds: list[dict[str, Any]] = field(default_factory=list)


# --- PostgreSQL restart ----------------------------------------------------------------------------------


def pg_restart_command(db: Database) -> tuple[list[str] | None, str]:
    """Return the command that restarts this database's server, or None and why it cannot be done."""
    if db.vendor != "postgresql":
        return None, "the database is not PostgreSQL"
    parsed = urlparse(db.url)
    if (parsed.hostname or "localhost") not in ("localhost", "127.0.0.1", "::1"):
        return None, f"the server {parsed.hostname} is not on this machine"
    if not shutil.which("pg_lsclusters") or not shutil.which("pg_ctlcluster"):
        return None, "pg_lsclusters/pg_ctlcluster not found (not Debian's PostgreSQL packaging)"
    if os.geteuid() != 0:
        return None, "not root: pg_ctlcluster may not restart the server"
    port = parsed.port or 5432
    listing = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True).stdout
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] == str(port):
            return ["pg_ctlcluster", "--skip-systemctl-redirect", parts[0], parts[1], "restart"], (
                f"cluster {parts[0]}/{parts[1]} on port {port}"
            )
    return None, f"no cluster in pg_lsclusters listens on port {port}"


# --- the buyer's side ------------------------------------------------------------------------------------


def _request(method: str, url: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, Any]:
    """Send a JSON request; return (status, decoded body or None); status 0 when no answer came."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", "Accept": "application/json", **(headers or {})},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code, None
    except (OSError, http.client.HTTPException):
        return 0, None


def order_open(base_url: str) -> Purchase:
    """Create an order and its Checkout Session through the project's API (retrying like a client)."""
    key = str(uuid.uuid4())
    for _ in range(5):
        status, body = _request(
            "POST",
            f"{base_url}/api/checkout/create-session",
            {"item_id": SKU, "quantity": 1},
            {"Idempotency-Key": key},
        )
        if status in (200, 201):
            return Purchase(order_id=body["order_id"], session_id=body["session_id"])
        time.sleep(0.2)
    raise HarnessError(f"could not create an order through the API (last status {status})")


def pay_and_return(purchase: Purchase, emulator_url: str, rng: random.Random) -> None:
    """Pay on the emulator, then follow the redirect to /success as the buyer's browser does."""
    time.sleep(rng.random() * 0.02)
    status, body = _request(
        "POST",
        f"{emulator_url}/_emulator/checkout/sessions/{purchase.session_id}/pay",
        {"method": purchase.method},
    )
    if status != 200:
        raise HarnessError(f"the emulator refused to pay {purchase.session_id}: {status} {body}")
    # A buyer whose page failed to load reloads it, a few times.
    for _ in range(3):
        status, _ = _request("GET", body["redirect_url"])
        purchase.redirect_statuses.append(str(status or "no answer"))
        if status and status < 500:
            return
        time.sleep(0.2)


# --- the chaos -------------------------------------------------------------------------------------------


def chaos_round_knobs(rng: random.Random, drop_rate: float) -> dict[str, Any]:
    return {
        "duplicates": rng.choice((1, 2, 3)),
        "webhook_delay": rng.choice((0.0, 0.0, 0.02, 0.1, 0.3)),
        "webhook_timing": rng.choice(("async", "async", "async", "before_redirect")),
        "drop_rate": drop_rate,
        "async_delay": rng.choice((0.1, 0.3, 0.8)),
    }


def kill_a_web_worker_soon(
    server: Gunicorn, rng: random.Random, log: ChaosLog, lock: threading.Lock
) -> threading.Thread:
    def kill() -> None:
        time.sleep(rng.random() * 0.3)
        pids = server.worker_pids()
        if pids:
            server.kill_worker(rng.choice(pids))
            with lock:
                log.kills += 1

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


worker_kill_lock = threading.Lock()


def kill_an_event_worker_soon(
    workers: EventWorkers, rng: random.Random, log: ChaosLog, lock: threading.Lock
) -> threading.Thread:
    """SIGKILL a process_events worker soon, mid-batch, and start another in its place, as a supervisor
    would; note how many events the workers held claimed just before."""

    def kill() -> None:
        time.sleep(rng.random() * 0.3)
        with worker_kill_lock:  # one at a time: each kills a living worker and starts its successor
            # Mid-batch: wait (a while at most) until a worker holds claims, and kill the busiest.
            deadline = time.monotonic() + 5
            while not (claimed := claimed_or_none()) and time.monotonic() < deadline:
                time.sleep(0.02)
            index = workers.busiest()
            workers.kill(index)
            with lock:
                log.worker_kills += 1
                if claimed is not None:
                    log.claimed_at_worker_kills.append(claimed)
            time.sleep(0.5)
            workers.revive(index)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def queue_depth_or_none() -> int | None:
    from django.db import connection

    try:
        return queue_depth()
    except Exception:  # the database is restarting: no figure this time
        return None
    finally:
        connection.close()


def claimed_or_none() -> int | None:
    """Return how many events workers hold claimed now, as /metrics reads it; None if it cannot be read."""
    from django.db import connection

    from payments.health import event_queue

    try:
        return event_queue().claimed
    except Exception:  # the database is restarting: no figure this time
        return None
    finally:
        connection.close()


def restart_database_soon(command: list[str], log: ChaosLog) -> threading.Thread:
    def restart() -> None:
        time.sleep(0.1)
        log.depth_at_db_restart = queue_depth_or_none()
        began = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True)
        took = time.monotonic() - began
        if done.returncode == 0:
            log.db_restart = f"restarted with `{' '.join(command)}` ({took:.1f} s)"
        else:
            log.db_restart = f"FAILED: `{' '.join(command)}` exited {done.returncode}: {done.stderr.strip()}"

    thread = threading.Thread(target=restart, daemon=True)
    thread.start()
    return thread


def run_chaos(
    purchases: list[Purchase],
    *,
    server: Gunicorn,
    workers: EventWorkers,
    emulator: Any,
    args: argparse.Namespace,
    db: Database,
) -> ChaosLog:
    """Pay every order in rounds with fresh knobs, killing workers and restarting the database meanwhile.

    The event workers start after a third of the rounds, on the queue built up by then; the database
    restarts while they drain it.
    """
    rng = random.Random(args.seed)
    log = ChaosLog()
    lock = threading.Lock()
    methods, weights = zip(*PAY_METHODS, strict=True)
    for purchase in purchases:
        purchase.method = rng.choices(methods, weights)[0]
    rounds = [purchases[i : i + args.round_size] for i in range(0, len(purchases), args.round_size)]
    kill_plan = Counter(rng.randrange(len(rounds)) for _ in range(args.kills))
    workers_round = len(rounds) // 3
    worker_kill_plan = Counter(rng.randrange(workers_round, len(rounds)) for _ in range(args.worker_kills))
    restart_cmd, why = (None, "skipped (--no-db-restart)") if args.no_db_restart else pg_restart_command(db)
    if restart_cmd is None:
        log.db_restart = why if why.startswith("skipped") else f"skipped: {why}"
    restart_round = max(len(rounds) // 2, workers_round) if restart_cmd else None
    background: list[threading.Thread] = []
    with ThreadPoolExecutor(max_workers=args.buyers) as pool:
        for index, batch in enumerate(rounds):
            knobs = chaos_round_knobs(rng, args.drop_rate)
            emulator.configure(**knobs)
            log.rounds.append(knobs)
            if index == workers_round:
                say(
                    f"  round {index + 1}/{len(rounds)}: event workers start, on {queue_depth_or_none()} "
                    "waiting events"
                )
                workers.start()
            background += [kill_a_web_worker_soon(server, rng, log, lock) for _ in range(kill_plan[index])]
            background += [
                kill_an_event_worker_soon(workers, rng, log, lock) for _ in range(worker_kill_plan[index])
            ]
            if index == restart_round:
                say(f"  round {index + 1}/{len(rounds)}: restarting PostgreSQL ({why})")
                background.append(restart_database_soon(restart_cmd, log))
            seeds = [rng.random() for _ in batch]
            list(
                pool.map(
                    lambda p_s: pay_and_return(p_s[0], emulator.base_url, random.Random(p_s[1])),
                    zip(batch, seeds, strict=True),
                )
            )
    for thread in background:
        thread.join()
    server.wait_workers()
    return log


# --- the invariants --------------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def emulator_events(session_ids: set[str]) -> dict[str, dict[str, Any]]:
    """Return, by id, every event the emulator (Stripe) created for these sessions, via its Events API."""
    from payments import gateway

    found = {}
    for event in gateway.events_list():
        data = event.get("data", {}).get("object", {})
        if data.get("object") == "checkout.session" and data.get("id") in session_ids:
            found[event["id"]] = event
    return found


def stored_events() -> dict[str, tuple[str, str | None, int]]:
    """Return, by Stripe event id, (status, order id, rows) of every stored event."""
    from django.db.models import Count

    from payments.models import StripeEvent

    rows = StripeEvent.objects.values("stripe_id").annotate(n=Count("id"))
    counts = {row["stripe_id"]: row["n"] for row in rows}
    return {
        sid: (status, str(order_id) if order_id else None, counts[sid])
        for sid, status, order_id in StripeEvent.objects.values_list("stripe_id", "status", "order_id")
    }


def signals_by_order() -> Counter:
    from bench.models import FulfillmentWitness

    witnessed = FulfillmentWitness.objects.values_list("order_id", flat=True)
    return Counter(str(order_id) for order_id in witnessed)


SIGNAL_CHECK = "one fulfillment signal per fulfilled order, none for the others"


def check_orders(purchases: list[Purchase], signals: Counter) -> list[Check]:
    from orders.models import Order, OrderTransition

    orders = {str(o.pk): o for o in Order.objects.filter(pk__in=[p.order_id for p in purchases])}
    chains: dict[str, list[OrderTransition]] = defaultdict(list)
    for t in OrderTransition.objects.filter(order_id__in=list(orders)).order_by("created_at", "id"):
        chains[str(t.order_id)].append(t)

    exactly_once, signalled, impossible = [], [], []
    for p in purchases:
        order = orders.get(p.order_id)
        if order is None:
            exactly_once.append(f"order {p.order_id} is missing")
            continue
        chain = chains[p.order_id]
        fulfilling = [t for t in chain if t.to_status == "fulfilled"]
        if order.status != p.expected or len(fulfilling) != (p.expected == "fulfilled"):
            exactly_once.append(
                f"order {p.order_id} ({p.method}): status {order.status} (expected {p.expected}), "
                f"{len(fulfilling)} fulfilling transitions"
            )
        expected_signals = len(fulfilling[:1])
        if signals[p.order_id] != expected_signals:
            signalled.append(
                f"order {p.order_id}: {signals[p.order_id]} fulfillment signals, expected {expected_signals}"
            )
        impossible += chain_problems(order, chain)
    return [
        Check(
            "every paid order fulfilled exactly once (one fulfilling transition); failed payments failed",
            exactly_once,
        ),
        Check(SIGNAL_CHECK, signalled),
        Check("no order in an impossible state (transition chains, final states, timestamps)", impossible),
    ]


def chain_problems(order: Any, chain: list[Any]) -> list[str]:
    """Return what is impossible about an order's transitions and fields."""
    problems = []
    state = "pending"
    for t in chain:
        if t.from_status != state:
            problems.append(f"order {order.pk}: transition from {t.from_status} while it was {state}")
        if (t.from_status, t.to_status) not in ALLOWED_MOVES:
            problems.append(f"order {order.pk}: forbidden move {t.from_status} -> {t.to_status}")
        if state in FINAL:
            problems.append(f"order {order.pk}: a transition after the final state {state}")
        state = t.to_status
    if state != order.status:
        problems.append(f"order {order.pk}: status {order.status} but its transitions end at {state}")
    stamps = {
        "confirmed": order.confirmed_at,
        "fulfilled": order.fulfilled_at,
        "failed": order.failed_at,
        "expired": order.expired_at,
    }
    reached = {t.to_status for t in chain}
    for status, stamp in stamps.items():
        if (stamp is not None) != (status in reached):
            was = "was" if status in reached else "was never"
            problems.append(f"order {order.pk}: {status}_at is {stamp} though it {was} {status}")
    if order.status == "fulfilled" and order.payment_pending:
        problems.append(f"order {order.pk}: fulfilled but still marked payment pending")
    return problems


def check_events(
    before: dict[str, tuple[str, str | None, int]],
    after: dict[str, tuple[str, str | None, int]],
    created: dict[str, dict[str, Any]],
    delivered: set[str],
    purchases: list[Purchase],
) -> list[Check]:
    order_of_session = {p.session_id: p.order_id for p in purchases}
    acked = [
        f"event {eid} was delivered (2xx) but is {'not stored' if eid not in before else before[eid][0]}"
        for eid in sorted(delivered)
        if eid not in before or before[eid][0] != "processed"
    ]
    once = [f"event {eid} stored {rows} times" for eid, (_, _, rows) in after.items() if rows != 1]
    lost = []
    for eid, event in created.items():
        if eid not in after:
            lost.append(f"event {eid} ({event['type']}) was never stored")
        elif after[eid][0] != "processed":
            lost.append(f"event {eid} ({event['type']}) is {after[eid][0]}")
        elif after[eid][1] != order_of_session[event["data"]["object"]["id"]]:
            lost.append(f"event {eid} is linked to order {after[eid][1]}, not its session's")
    strays = sorted(set(after) - set(created))
    if strays:
        lost.append(
            f"{len(strays)} stored events the emulator never created for these sessions: {strays[:3]}"
        )
    return [
        Check("every event the emulator delivered (2xx) was stored and processed before recovery", acked),
        Check("every event stored once (one row per event id)", once),
        Check("nothing lost: every event created for these sessions stored and processed", lost),
    ]


def events_by_status() -> dict[str, int]:
    """Return the stored events by status and attempts ("processed after 2 attempts": one failed first)."""
    from django.db.models import Count

    from payments.models import StripeEvent

    rows = StripeEvent.objects.values("status", "attempts").annotate(n=Count("id")).order_by("status")
    return {f"{r['status']} after {r['attempts']}": r["n"] for r in rows}


def check_queue(*, drained: bool, lease: float) -> list[Check]:
    """The queue drained, nothing held past its lease; no event's work committed twice."""
    from django.db.models import Count
    from django.utils import timezone

    from orders.models import OrderTransition
    from payments.models import UNFINISHED_STATUSES, StripeEvent

    left = []
    unfinished = StripeEvent.objects.filter(status__in=UNFINISHED_STATUSES)
    if not drained or unfinished.exists():
        by_status = Counter(unfinished.values_list("status", flat=True))
        left.append(f"the queue did not drain: {dict(by_status)} events unfinished")
    stuck = StripeEvent.objects.filter(claimed_until__lt=timezone.now() - timedelta(seconds=lease)).count()
    if stuck:
        left.append(f"{stuck} events still claimed past their {lease:g} s lease")
    twice = (
        OrderTransition.objects.exclude(stripe_event_id__isnull=True)
        .exclude(stripe_event_id="")
        .values("stripe_event_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    return [
        Check("the queue drained: no event left waiting, failed or claimed past its lease", left),
        Check(
            "none processed twice: no two transitions name one event",
            [f"event {row['stripe_event_id']} moved orders {row['n']} times" for row in twice[:10]],
        ),
    ]


# --- the run ---------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    db = Database.from_url(args.database_url)
    workdir = Path(tempfile.mkdtemp(prefix="chaos-"))
    secret = "whsec_chaos_" + uuid.uuid4().hex
    emulator = EmulatorProcess(
        log_path=workdir / "emulator.log",
        webhook_secret=secret,
        max_attempts=args.max_attempts,
        retry_backoff=args.retry_backoff,
        seed=args.seed,
    ).start()
    env = bench_environment(
        db.url,
        STRIPE_SECRET_KEY="sk_test_chaos",
        STRIPE_API_BASE=emulator.base_url,
        STRIPE_WEBHOOK_SECRET=secret,
        BENCH_SIGNAL_WITNESS="true",
        DJANGO_LOG_LEVEL=args.log_level,
        WORKER_LEASE_SECONDS=str(args.lease),
        # Owed signals and failed events (the database restarting) are taken up again within seconds.
        WORKER_SWEEP_SECONDS=str(args.sweep),
        RETRY_BASE_SECONDS="0.5",
        RETRY_MAX_SECONDS="5",
    )
    say(f"chaos: a fresh {db.label} database ({db.name}), the emulator at {emulator.base_url}")
    say(f"  logs in {workdir}")
    db.create_fresh()
    server = None
    workers = None
    try:
        django_configure(env)
        from django.db import connections

        from orders.models import OrderTransition, Product
        from payments import gateway

        product = Product.objects.create(sku=SKU, name="Chaos item", unit_amount=UNIT_AMOUNT, currency="usd")
        product.stripe_product_id = gateway.product_create(name=product.name, description="", sku=SKU)
        product.stripe_price_id = gateway.price_create(
            product_id=product.stripe_product_id, unit_amount=UNIT_AMOUNT, currency="usd", sku=SKU
        ).id
        product.save()
        connections.close_all()

        server = Gunicorn(
            env=env, workers=args.web_workers, threads=args.web_threads, log_path=workdir / "gunicorn.log"
        ).start()
        workers = EventWorkers(env=env, count=args.workers, log_path=workdir / "process_events.log")
        emulator.configure(webhook_url=f"{server.base_url}/stripe-webhook", drop_next=args.drop_first)
        began = time.monotonic()
        with ThreadPoolExecutor(max_workers=args.buyers) as pool:
            purchases = list(pool.map(lambda _: order_open(server.base_url), range(args.orders)))
        say(f"  {len(purchases)} orders opened through the API in {time.monotonic() - began:.1f} s")

        began = time.monotonic()
        log = run_chaos(purchases, server=server, workers=workers, emulator=emulator, args=args, db=db)
        idle = emulator.wait_for_idle(timeout=args.settle_timeout)
        time.sleep(max(r["async_delay"] for r in log.rounds) + 0.5)  # delayed payments settle
        # A delivery the emulator lost track of keeps it busy forever: do not wait for it twice.
        idle = emulator.wait_for_idle(timeout=args.settle_timeout if idle else 5)
        chaos_seconds = time.monotonic() - began
        deliveries = emulator.deliveries()
        if not idle:
            stuck = sum(1 for d in deliveries if d["status"] == "pending")
            say(
                f"  note: {stuck} deliveries still pending {args.settle_timeout:.0f} s after the last "
                "payment; the emulator stops retrying a delivery whose answer was cut off mid-body (a killed "
                "worker), so recovery has to find those events"
            )
        delivered = {d["event_id"] for d in deliveries if d["status"] == "delivered"}
        say(
            f"  {len(purchases)} orders paid in {len(log.rounds)} rounds in {chaos_seconds:.1f} s; "
            f"{log.kills} gunicorn workers killed; {log.worker_kills} event workers killed (events "
            f"claimed then: {log.claimed_at_worker_kills}); database restart: {log.db_restart} (queue "
            f"depth then: {log.depth_at_db_restart})"
        )

        drained, drain_seconds = queue_drained(timeout=args.settle_timeout + 60)
        say(
            f"  event queue {'drained' if drained else 'NOT drained'} by {args.workers} worker(s) "
            f"{drain_seconds:.1f} s after the last delivery"
        )
        connections.close_all()
        before = stored_events()
        recovery = run_manage(env, "replay_events", "--from-stripe", "--undelivered-only")
        recovery_text = (recovery.stdout + recovery.stderr).strip().splitlines()
        say(
            f"  recovery: replay_events --from-stripe --undelivered-only (exit {recovery.returncode}): "
            + (recovery_text[-1] if recovery_text else "no output")
        )

        owed = run_manage(env, "reconcile_orders", "--older-than", "0s")
        owed_text = (owed.stdout + owed.stderr).strip().splitlines()
        summary = next((line for line in owed_text if " owed signal" in line), "")
        signals_owed = summary.rsplit("; ", 1)[-1] if summary else "no output"
        say(f"  recovery: reconcile_orders --older-than 0s (exit {owed.returncode}): {signals_owed}")

        # The recovery stored events of its own: let the workers process them and send their signals.
        final_drained, _ = queue_drained(timeout=60 + 2 * args.lease)
        time.sleep(0.5)  # the signals of the last events, sent right after their commits
        after = stored_events()
        queue_checks = check_queue(drained=final_drained, lease=args.lease)
        created = emulator_events({p.session_id for p in purchases})
        signals = signals_by_order()
        checks = (
            check_orders(purchases, signals)
            + check_events(before, after, created, delivered, purchases)
            + queue_checks
        )
        if recovery.returncode != 0:
            checks.append(Check("the recovery command succeeded", recovery_text[-5:]))
        if owed.returncode != 0:
            checks.append(Check("the reconcile command succeeded", owed_text[-5:]))
        queue_summary = events_by_status()
        sources = Counter(
            OrderTransition.objects.filter(order_id__in=[p.order_id for p in purchases]).values_list(
                "source", flat=True
            )
        )
        connections.close_all()
    finally:
        if workers:
            workers.stop()
        if server:
            server.stop()
        emulator.stop()
        if not args.keep_db:
            try:
                db.drop()
            except Exception as exc:  # the verdict matters more than the cleanup
                say(f"  could not drop {db.name}: {exc}")

    attempts = Counter()
    for d in deliveries:
        for a in d["attempts"]:
            attempts[str(a["status_code"]) if a["status_code"] else "no answer"] += 1
    statuses = Counter(d["status"] for d in deliveries)
    redirects = Counter(s for p in purchases for s in p.redirect_statuses)
    methods = Counter(p.method for p in purchases)
    say(f"  payments: {dict(methods)}")
    say(
        f"  events: {len(created)} created for these sessions, {len(deliveries)} deliveries "
        f"({dict(statuses)}); attempts by answer: {dict(attempts)}"
    )
    say(f"  success redirects by answer: {dict(redirects)}")
    say(f"  transitions by source: {dict(sources)}; fulfillment signals: {sum(signals.values())}")
    say(f"  stored events by status and attempts: {queue_summary}")
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        say(f"  [{mark}] {check.name}" + ("" if check.ok else f": {len(check.problems)} problems"))
        for problem in check.problems[:10]:
            say(f"         {problem}")
    ok = all(c.ok for c in checks)
    say(f"chaos: {'all invariants hold' if ok else 'INVARIANTS VIOLATED'}")
    return {
        "logs": str(workdir),
        "database": db.label,
        "orders": len(purchases),
        "payments": dict(methods),
        "kills": log.kills,
        "worker_kills": log.worker_kills,
        "claimed_at_worker_kills": log.claimed_at_worker_kills,
        "depth_at_db_restart": log.depth_at_db_restart,
        "lease_seconds": args.lease,
        "events_by_status": queue_summary,
        "db_restart": log.db_restart,
        "events_created": len(created),
        "deliveries": dict(statuses),
        "attempts": dict(attempts),
        "redirects": dict(redirects),
        "transition_sources": dict(sources),
        "signals": sum(signals.values()),
        "signals_owed": int(signals_owed.split()[0]) if signals_owed[:1].isdigit() else None,
        "recovered": len(after) - len(before),
        "checks": {c.name: c.problems for c in checks},
        "ok": ok,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        help="created fresh and dropped at the end "
        f"(default {default_database_url('postgresql', 'checkout_chaos')})",
    )
    parser.add_argument("--sqlite", action="store_true", help="use a fresh SQLite file in /tmp instead")
    parser.add_argument("-n", "--orders", type=int, help="orders to pay (default 2000; --quick 100)")
    parser.add_argument("--quick", action="store_true", help="about 100 orders: seconds, not minutes")
    parser.add_argument(
        "--workers", type=int, default=2, help="process_events workers draining the queue (default 2)"
    )
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--web-threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    parser.add_argument("--buyers", type=int, default=12, help="buyers paying at once (default 12)")
    parser.add_argument("--round-size", type=int, help="orders per round of knobs (default orders/20, >= 10)")
    parser.add_argument("--kills", type=int, help="workers to SIGKILL (default 1 per 200 orders, at least 2)")
    parser.add_argument("--drop-rate", type=float, default=0.05, help="share of deliveries dropped (0.05)")
    parser.add_argument(
        "--drop-first", type=int, default=0, help="also drop the first N events outright (default 0)"
    )
    parser.add_argument("--max-attempts", type=int, default=4, help="emulator delivery attempts (default 4)")
    parser.add_argument(
        "--retry-backoff", type=float, default=0.25, help="first retry after (s, default 0.25)"
    )
    parser.add_argument(
        "--settle-timeout", type=float, default=60, help="wait this long for deliveries to finish (60 s)"
    )
    parser.add_argument("--no-db-restart", action="store_true", help="do not restart PostgreSQL")
    parser.add_argument(
        "--worker-kills",
        type=int,
        help="event workers to SIGKILL while the queue drains (default 1 per 250 orders, >= 2)",
    )
    parser.add_argument(
        "--lease",
        type=float,
        default=3.0,
        help="WORKER_LEASE_SECONDS for the run (default 3: a killed worker's claims lapse soon)",
    )
    parser.add_argument(
        "--sweep",
        type=float,
        default=1.0,
        help="WORKER_SWEEP_SECONDS for the run (default 1: owed signals are swept soon)",
    )
    parser.add_argument("--seed", type=int, help="seed the random choices (knobs, methods, drops)")
    parser.add_argument("--log-level", default="WARNING", help="DJANGO_LOG_LEVEL of the server (WARNING)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the logs even when all went well")
    parser.add_argument("--keep-db", action="store_true", help="leave the database for inspection")
    parser.add_argument("--json", type=Path, help="also write the figures and checks to this file")
    args = parser.parse_args(argv)
    args.orders = args.orders or (100 if args.quick else 2000)
    args.round_size = args.round_size or max(10, args.orders // 20)
    args.kills = args.kills if args.kills is not None else max(2, args.orders // 200)
    args.worker_kills = args.worker_kills if args.worker_kills is not None else max(2, args.orders // 250)
    args.seed = args.seed if args.seed is not None else random.randrange(2**31)
    if min(args.orders, args.workers, args.web_workers, args.web_threads, args.buyers, args.round_size) < 1:
        parser.error("--orders, --workers, --web-workers, --web-threads, --buyers, --round-size: at least 1")
    if not 0 <= args.drop_rate < 1:
        parser.error("--drop-rate must be at least 0 and below 1")
    if not args.database_url:
        args.database_url = default_database_url("sqlite" if args.sqlite else "postgresql", "checkout_chaos")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    say(f"chaos: seed {args.seed} (--seed {args.seed} repeats the knobs, methods and drops)")
    return script_exit("chaos", args, run)


if __name__ == "__main__":
    sys.exit(main())
