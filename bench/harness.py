"""What the benchmark and the chaos run share: databases, gunicorn, signed Stripe events, a load generator.

Nothing here is imported by the project; the scripts import it. Django is configured by
`django_configure` (with `bench.settings`), so only call ORM code after that.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

from stripe_emulator import objects as emulator_objects

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONF = ROOT / "gunicorn.conf.py"
DEFAULT_POSTGRES_SERVER = "postgres://postgres@127.0.0.1:5432"
WEBHOOK_PATH = "/stripe-webhook"
_ALNUM = string.ascii_letters + string.digits


class HarnessError(Exception):
    """The harness could not set something up; the message says what and how to fix it."""


def script_exit(name: str, args: Any, run: Any) -> int:
    """Run a bench script's measurement and return its exit status: 0 ok, 1 invariants broken, 2 set-up.

    Writes the figures to `args.json` when asked, and keeps the run's logs when it failed or was told to.
    """
    try:
        figures = run(args)
    except HarnessError as exc:
        say(f"{name}: {exc}")
        return 2
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    if figures["ok"] and not args.keep_logs:
        shutil.rmtree(figures["logs"], ignore_errors=True)
    else:
        say(f"  logs kept in {figures['logs']}")
    return 0 if figures["ok"] else 1


def say(message: str) -> None:
    print(message, flush=True)


# --- databases -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    """A database the harness owns: created fresh, migrated, dropped at the end."""

    url: str
    vendor: str  # "postgresql" or "sqlite"
    name: str  # database name, or the SQLite file path

    @classmethod
    def from_url(cls, url: str) -> Database:
        """Parse a DATABASE_URL the harness can create and drop (PostgreSQL or an SQLite file)."""
        parsed = urlparse(url)
        if parsed.scheme in ("postgres", "postgresql", "pgsql"):
            name = parsed.path.lstrip("/")
            if not name:
                raise HarnessError(
                    f"{url!r} names no database; add one, e.g. {url.rstrip('/')}/checkout_bench"
                )
            if name in ("postgres", "template0", "template1"):
                raise HarnessError(f"refusing to drop and recreate the {name!r} database: name a bench one")
            return cls(url=url, vendor="postgresql", name=name)
        if parsed.scheme == "sqlite":
            path = parsed.path
            if url.startswith("sqlite:////"):
                path = "/" + path.lstrip("/")
            if not path or path == "/" or ":memory:" in url:
                raise HarnessError("SQLite needs a file (sqlite:////tmp/bench.sqlite3): gunicorn runs apart")
            return cls(url=url, vendor="sqlite", name=path)
        raise HarnessError(f"unsupported database URL {url!r}: use postgres://... or sqlite:////path")

    @property
    def label(self) -> str:
        return "PostgreSQL" if self.vendor == "postgresql" else "SQLite"

    def _maintenance_dsn(self) -> str:
        parsed = urlparse(self.url)
        return urlunparse(parsed._replace(scheme="postgresql", path="/postgres"))

    def psycopg_dsn(self) -> str:
        """Return the URL in the form psycopg accepts."""
        return urlunparse(urlparse(self.url)._replace(scheme="postgresql"))

    def create_fresh(self) -> None:
        """Drop the database if it exists and create it empty."""
        if self.vendor == "sqlite":
            self.drop()
            Path(self.name).parent.mkdir(parents=True, exist_ok=True)
            return
        import psycopg

        try:
            with psycopg.connect(self._maintenance_dsn(), autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{self.name}"')
        except psycopg.OperationalError as exc:
            raise HarnessError(f"cannot reach PostgreSQL for {self.url}: {exc}".strip()) from exc

    def drop(self) -> None:
        """Remove the database (and SQLite's WAL files)."""
        if self.vendor == "sqlite":
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(self.name + suffix).unlink(missing_ok=True)
            return
        import psycopg

        with psycopg.connect(self._maintenance_dsn(), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def default_database_url(vendor: str, name: str) -> str:
    """Return the URL of a bench database called `name` on the local server or in /tmp."""
    if vendor == "sqlite":
        return f"sqlite:////tmp/{name}.sqlite3"
    return f"{DEFAULT_POSTGRES_SERVER}/{name}"


def bench_environment(database_url: str, **extra: str) -> dict[str, str]:
    """Return the environment every process of a run shares: bench settings, this database, the extras."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": database_url,
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    # A test database name from pytest's environment must not redirect the run's own database.
    env.pop("DJANGO_TEST_DATABASE_NAME", None)
    return env


def django_configure(env: dict[str, str]) -> None:
    """Configure Django in this process from the run's environment and migrate the database."""
    for key in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL"):
        os.environ[key] = env[key]
    for key, value in env.items():
        if key.startswith(("STRIPE_", "DJANGO_", "BENCH_", "SITE_")):
            os.environ[key] = value
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    # Without collectstatic there is no STATIC_ROOT; whitenoise says so once per process. Not our topic.
    warnings.filterwarnings("ignore", message="No directory at")
    django.setup()
    call_command("migrate", interactive=False, verbosity=0)


# --- processes -------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_cpu_seconds(pid: int, *, with_children: bool = False) -> float:
    """Return the CPU seconds (user + system) a process has used; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if with_children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime: children already reaped
    return ticks / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    """Return the ids of a process's direct children."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


class Gunicorn:
    """The project served by gunicorn with its production config, as a child process."""

    def __init__(
        self, *, env: dict[str, str], workers: int, threads: int, log_path: Path, port: int | None = None
    ):
        self.port = port or free_port()
        self.workers = workers
        self.threads = threads
        self.log_path = log_path
        self.env = {
            **env,
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(workers),
            "GUNICORN_THREADS": str(threads),
        }
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Gunicorn:
        """Start the server and return once every worker answers."""
        log = self.log_path.open("ab")
        cmd = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "checkout_demo.wsgi"]
        self.process = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HarnessError(f"gunicorn exited with {self.process.returncode}; see {self.log_path}")
            if len(self.worker_pids()) >= self.workers and self._answers():
                return self
            time.sleep(0.05)
        self.stop()
        raise HarnessError(f"gunicorn did not start within {timeout:.0f} s; see {self.log_path}")

    def _answers(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            conn.request("GET", WEBHOOK_PATH)
            conn.getresponse().read()
            conn.close()
            return True
        except OSError:
            return False

    def worker_pids(self) -> list[int]:
        return child_pids(self.process.pid) if self.process else []

    def kill_worker(self, pid: int) -> None:
        """SIGKILL one of this server's workers (the master starts a new one)."""
        if pid in self.worker_pids():
            os.kill(pid, signal.SIGKILL)

    def wait_workers(self, timeout: float = 10.0) -> bool:
        """Wait until the master runs its full count of workers again."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.worker_pids()) >= self.workers:
                return True
            time.sleep(0.02)
        return False

    def cpu_seconds(self) -> float:
        """Return the CPU used by the master and every worker, living or reaped."""
        if not self.process:
            return 0.0
        return proc_cpu_seconds(self.process.pid, with_children=True) + sum(
            proc_cpu_seconds(pid) for pid in self.worker_pids()
        )

    def stop(self) -> None:
        if not self.process or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class EventWorkers:
    """`manage.py process_events` processes beside gunicorn: they claim and process the stored events.

    `kill` SIGKILLs one and `revive` starts a new one in its place, as a supervisor would.
    """

    def __init__(
        self,
        *,
        env: dict[str, str],
        count: int,
        log_path: Path,
        threads: int = 1,
        batch: int = 0,
        nice: int = 0,
    ):
        self.env = env
        self.count = count
        self.nice = nice
        self.threads = threads
        self.batch = batch
        self.log_path = log_path
        self.processes: list[subprocess.Popen] = []
        self.reaped_cpu = 0.0

    def _start_one(self) -> subprocess.Popen:
        log = self.log_path.open("ab")
        cmd = [sys.executable, str(ROOT / "manage.py"), "process_events", "--poll", "0.05"]
        if self.nice:
            # Below the web server, so that a busy queue does not delay Stripe's answers on a shared machine.
            cmd = ["nice", "-n", str(self.nice), *cmd]
        cmd += ["--concurrency", str(self.threads)]
        if self.batch:
            cmd += ["--batch-size", str(self.batch)]
        process = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=log)
        log.close()
        return process

    def start(self) -> EventWorkers:
        self.processes += [self._start_one() for _ in range(self.count)]
        return self

    def kill(self, index: int) -> int:
        """SIGKILL the worker at this index (mid-batch, likely) and return its pid."""
        process = self.processes[index]
        self.reaped_cpu += proc_cpu_seconds(process.pid)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        return process.pid

    def busiest(self, window: float = 0.1) -> int:
        """Return the index of the worker that used the most CPU over the window: the one mid-batch."""
        before = [proc_cpu_seconds(p.pid) for p in self.processes]
        time.sleep(window)
        used = [proc_cpu_seconds(p.pid) - cpu for p, cpu in zip(self.processes, before, strict=True)]
        return max(range(len(used)), key=used.__getitem__)

    def revive(self, index: int) -> None:
        """Start a new worker in the place of a dead one."""
        self.processes[index] = self._start_one()

    def cpu_seconds(self) -> float:
        """Return the CPU the living workers have used, plus what killed ones had used."""
        return self.reaped_cpu + sum(proc_cpu_seconds(p.pid) for p in self.processes if p.poll() is None)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def queue_depth() -> int:
    """Return how many stored events are still to process: waiting, claimed or scheduled for a retry.

    ORM code: after django_configure. Read as /metrics reads it (payments.health.event_queue).
    """
    from payments.health import event_queue

    queue = event_queue()
    return queue.waiting + queue.claimed + queue.scheduled


class QueueSampler:
    """Read the queue's figures every `interval` seconds in a thread of its own; keep the peaks."""

    def __init__(self, interval: float = 0.25):
        self.interval = interval
        self.peak = 0
        self.peak_age = 0.0  # the oldest waiting event's age, in seconds, at its highest
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> QueueSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        from django.db import connection

        from payments.health import event_queue

        began = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    queue = event_queue()
                except Exception:  # the database restarting under the chaos run: sample again later
                    connection.close()
                else:
                    depth = queue.waiting + queue.claimed + queue.scheduled
                    self.samples.append((time.monotonic() - began, depth))
                    self.peak = max(self.peak, depth)
                    if queue.oldest_waiting_age is not None:
                        self.peak_age = max(self.peak_age, queue.oldest_waiting_age.total_seconds())
                self._stop.wait(self.interval)
        finally:
            connection.close()


def queue_drained(timeout: float) -> tuple[bool, float]:
    """Wait until no stored event is left to process (ORM code); return (drained, seconds waited).

    An event whose retries ran out (failed, no next attempt) is not the queue's any more: it waits for
    `replay_events`, and the checks report it.
    """
    from django.db import connections

    began = time.monotonic()
    try:
        while queue_depth():
            if time.monotonic() - began > timeout:
                return False, time.monotonic() - began
            time.sleep(0.05)
        return True, time.monotonic() - began
    finally:
        connections.close_all()


class EmulatorProcess:
    """The Stripe emulator in its own process (as Stripe is another machine), driven by its control API."""

    def __init__(self, *, log_path: Path, webhook_secret: str, **knobs: Any):
        self.port = free_port()
        self.log_path = log_path
        self.webhook_secret = webhook_secret
        self.knobs = knobs
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> EmulatorProcess:
        cmd = [sys.executable, "-m", "stripe_emulator", "--port", str(self.port)]
        cmd += ["--webhook-secret", self.webhook_secret]
        for name, value in self.knobs.items():
            if value is not None:
                cmd += [f"--{name.replace('_', '-')}", str(value)]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HarnessError(f"the emulator exited with {self.process.returncode}; see {self.log_path}")
            try:
                http_json("GET", f"{self.base_url}/_emulator/health", timeout=2)
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise HarnessError(f"the emulator did not start within {timeout:.0f} s; see {self.log_path}")

    def configure(self, **knobs: Any) -> dict[str, Any]:
        return http_json("POST", f"{self.base_url}/_emulator/config", knobs)

    def deliveries(self) -> list[dict[str, Any]]:
        answer = http_json("GET", f"{self.base_url}/_emulator/deliveries")
        # A bare list (the emulator's brief said a list object; accept both).
        return answer["data"] if isinstance(answer, dict) else answer

    def wait_for_idle(self, timeout: float = 10.0) -> bool:
        answer = http_json("POST", f"{self.base_url}/_emulator/wait_idle", {"timeout": timeout}, timeout + 10)
        return bool(answer["idle"])

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run_manage(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a management command in its own process, as an operator would."""
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- Stripe-shaped events --------------------------------------------------------------------------------


def stripe_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


def stripe_signature_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """Return a Stripe-Signature header for the payload, computed exactly as Stripe does."""
    t = int(time.time()) if timestamp is None else timestamp
    signed = f"{t}.".encode() + payload
    return f"t={t},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


def checkout_session_object(
    *,
    session_id: str,
    order_id: str,
    amount_total: int,
    currency: str,
    created: int,
    site: str = "https://shop.example.com",
) -> dict[str, Any]:
    """Return a completed, paid card Checkout Session as Stripe serialises it in an event.

    Built by the emulator's own object builders, then paid as its hosted page pays one, so the bench's
    payloads have the shape and size of the sessions the emulator (and Stripe) send.
    """
    session = emulator_objects.checkout_session(
        currency=currency,
        amount_total=amount_total,
        success_url=f"{site}/success?session_id={{CHECKOUT_SESSION_ID}}",
        cancel_url=f"{site}/cancel?session_id={session_id}",
        client_reference_id=order_id,
        customer_email=None,
        metadata={"order_id": order_id},
        expires_at=created + 3600,
        locale=None,
        submit_type=None,
        created=created,
        base_url=site,
    )
    session.update(
        id=session_id,
        status="complete",
        payment_status="paid",
        url=None,
        payment_intent=stripe_id("pi_3Q"),
        customer_details=emulator_objects.customer_details(
            email="jenny.rosen@example.com", name="Jenny Rosen"
        ),
    )
    return session


def event_payload(*, event_id: str, event_type: str, data_object: dict[str, Any], created: int) -> bytes:
    """Return an event body as Stripe sends it (pretty-printed JSON)."""
    event = {
        "id": event_id,
        "object": "event",
        "api_version": emulator_objects.API_VERSION,
        "created": created,
        "data": {"object": data_object},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
    return json.dumps(event, indent=2).encode()


@dataclass(frozen=True)
class SignedEvent:
    """One webhook delivery ready to send, and what it should do."""

    event_id: str
    order_id: str
    session_id: str
    payment_intent_id: str
    customer_email: str
    created: int
    body: bytes


def completed_events(orders: list[tuple[str, str, int, str]], *, created: int) -> list[SignedEvent]:
    """Build one distinct checkout.session.completed event per (order id, session id, amount, currency)."""
    events = []
    for order_id, session_id, amount, currency in orders:
        session = checkout_session_object(
            session_id=session_id, order_id=order_id, amount_total=amount, currency=currency, created=created
        )
        event_id = stripe_id("evt_1Q")
        body = event_payload(
            event_id=event_id, event_type="checkout.session.completed", data_object=session, created=created
        )
        events.append(
            SignedEvent(
                event_id=event_id,
                order_id=order_id,
                session_id=session_id,
                payment_intent_id=session["payment_intent"],
                customer_email=session["customer_details"]["email"],
                created=created,
                body=body,
            )
        )
    return events


def wsgi_environ(event: SignedEvent, signature: str) -> dict[str, Any]:
    """Return the WSGI environ gunicorn would build for one delivery of this event."""
    import io

    return {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": WEBHOOK_PATH,
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json; charset=utf-8",
        "CONTENT_LENGTH": str(len(event.body)),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        "HTTP_STRIPE_SIGNATURE": signature,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(event.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


IN_TRANSACTION = " (in transaction)"


SAVEPOINT_NAME = re.compile(r"\bs\d+_x\d+\b")


def sql_normalised(sql: str) -> str:
    """Return a statement's SQL without quotes and with its white space folded, to compare it whole."""
    return " ".join(sql.replace('"', "").split())


def statement_name(statement: str) -> str:
    """Return a normalised statement's verb and table, as 'UPDATE orders_order (in transaction)'."""
    words = statement.split()
    verb = words[0].upper()
    table = next((w for w in words[1:] if "_" in w and w.islower() and "." not in w), "")
    if verb == "SELECT" and " FROM " in statement:
        table = statement.split(" FROM ", 1)[1].split()[0]
    suffix = " (in transaction)" if statement.endswith(IN_TRANSACTION) else ""
    return f"{verb} {table}".strip() + suffix


def webhook_statements(
    events: list[SignedEvent], secret: str
) -> tuple[list[str], list[list[Any]], list[int]]:
    """Send events through the WSGI app in this process; return the last one's statements and their
    parameters, and every answer's status.

    Each statement is its whole SQL, normalised (`sql_normalised`), plus " (in transaction)" when inside
    an atomic block, as Django's cursor sent it; its parameters as Django adapted them for the driver.
    BEGIN and COMMIT do not pass through that cursor on PostgreSQL.
    """
    from django.core.wsgi import get_wsgi_application
    from django.db import connection

    app = get_wsgi_application()
    statuses: list[int] = []
    seen: list[str] = []
    sent: list[list[Any]] = []

    def record(execute, sql, params, many, context):
        if sql.split()[0].upper() != "BEGIN":  # SQLite's BEGIN IMMEDIATE goes through the cursor
            # A savepoint is named after the thread and a counter: name them all `sp` to compare them.
            statement = SAVEPOINT_NAME.sub("sp", sql_normalised(sql))
            seen.append(statement + (IN_TRANSACTION if connection.in_atomic_block else ""))
            sent.append(list(params or ()))
        return execute(sql, params, many, context)

    for event in events:
        seen.clear()
        sent.clear()
        environ = wsgi_environ(event, stripe_signature_header(event.body, secret))
        with connection.execute_wrapper(record):
            response = app(environ, lambda status, headers: statuses.append(int(status.split()[0])))
            b"".join(response)
            response.close()
    return list(seen), [list(p) for p in sent], statuses


# --- load generation -------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    """What a load run measured."""

    sent: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    reconnects: int = 0

    @property
    def per_second(self) -> float:
        return self.sent / self.elapsed if self.elapsed else 0.0

    @property
    def failed(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200) + sum(self.errors.values())

    def latency_ms(self, pct: float) -> float:
        return percentile(sorted(self.latencies), pct) * 1000


def percentile(sorted_values: list[float], pct: float) -> float:
    """Return the nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(pct / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def fire_webhooks(port: int, events: list[SignedEvent], *, secret: str, concurrency: int) -> LoadResult:
    """POST every event once, signed now, over `concurrency` keep-alive connections; measure each request."""
    signed_at = int(time.time())
    requests = [
        (
            event.body,
            {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "Stripe-Signature": stripe_signature_header(event.body, secret, signed_at),
            },
        )
        for event in events
    ]
    result = LoadResult()
    lock = threading.Lock()
    next_index = itertools.count()
    start_gate = threading.Barrier(concurrency + 1)

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        latencies: list[float] = []
        statuses: Counter = Counter()
        errors: Counter = Counter()
        reconnects = 0
        conn.connect()
        start_gate.wait()
        while (i := next(next_index)) < len(requests):
            body, headers = requests[i]
            for attempt in (1, 2):
                began = time.perf_counter()
                try:
                    conn.request("POST", WEBHOOK_PATH, body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                    # The server closed an idle keep-alive connection: open a new one and send again
                    # (a webhook is safe to send twice), as Stripe would.
                    conn.close()
                    reconnects += 1
                    if attempt == 2:
                        errors[type(exc).__name__] += 1
                    continue
                except OSError as exc:
                    conn.close()
                    errors[type(exc).__name__] += 1
                    break
                latencies.append(time.perf_counter() - began)
                statuses[response.status] += 1
                break
        conn.close()
        with lock:
            result.latencies.extend(latencies)
            result.statuses.update(statuses)
            result.errors.update(errors)
            result.reconnects += reconnects

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    start_gate.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    result.elapsed = time.perf_counter() - began
    result.sent = len(requests)
    if time.time() - signed_at > 290:
        say("warning: the run outlasted Stripe's 300 s signature tolerance; late events were refused (400)")
    return result


def http_json(method: str, url: str, body: dict[str, Any] | None = None, timeout: float = 30) -> Any:
    """Send a JSON request and return the decoded answer (raise HTTPError on 4xx/5xx)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")
