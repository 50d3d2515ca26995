"""Fixtures shared by every app's tests."""

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.cache import cache
from django.db import connection

from orders.models import Product
from payments.worker import Worker

ROOT = Path(__file__).resolve().parent


def pytest_report_header(config: pytest.Config) -> str:
    return f"database: {connection.vendor} ({os.environ.get('DATABASE_URL') or 'default sqlite'})"


@pytest.fixture
def product(db) -> Product:
    """Return an active product priced at 49.99 USD with a Stripe price id."""
    return Product.objects.create(
        sku="test_product",
        name="Test product",
        unit_amount=4999,
        currency="usd",
        stripe_price_id="price_test_fixture",
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres_only") and connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's concurrent writers: it runs in the PostgreSQL pass")


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Start every test with empty rate-limit counters (they live in the local-memory cache)."""
    cache.clear()


def run_worker_once() -> int:
    """Process every due event and send every owed signal in this process; return how many events.

    `process_events --once` without its loop, which closes "old" connections between batches: inside a
    test's transaction that would be the test's own.
    """
    worker = Worker(name="pytest")
    while worker.run_batch():
        pass
    worker.sweep(grace=timedelta(0))
    return worker.processed


@pytest.fixture
def worker_run(db) -> Callable[[], int]:
    """Return a runner of the worker in this process: every due event, then every owed signal."""
    return run_worker_once


def _database_url() -> str:
    """Return a URL to the test database this run created, for processes started by the tests."""
    config = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{config['NAME']}"
    user = quote(config.get("USER") or "postgres")
    password = f":{quote(config['PASSWORD'])}" if config.get("PASSWORD") else ""
    host, port = config.get("HOST") or "127.0.0.1", config.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{config['NAME']}"


@pytest.fixture
def worker(transactional_db, tmp_path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Return a starter of real `manage.py process_events` processes on the test database.

    The workers run on the test database and are stopped after the test.
    """
    started: list[subprocess.Popen] = []

    def start(*, settings_module: str = "checkout_demo.settings_test", **env: str) -> subprocess.Popen:
        log = open(tmp_path / f"worker-{len(started)}.log", "wb")  # noqa: SIM115 (closed with the process)
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TASK_", "STRIPE_"))}
        process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "process_events",
                "--poll",
                "0.05",
            ],
            cwd=ROOT,
            env={
                **clean,
                "DATABASE_URL": _database_url(),
                "DJANGO_SETTINGS_MODULE": settings_module,
                "DJANGO_LOG_LEVEL": "INFO",
                **env,
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        process.log_path = log.name  # type: ignore[attr-defined]
        log.close()
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
    for process in started:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_together(jobs: Sequence[Callable], *, rounds: int | None = None) -> list:
    """Run each job on its own thread, so on its own database connection, released together by a barrier.

    Without `rounds`, each job is called once and its result returned, in order. With `rounds`, each is
    called with the round's index, every round released together; a job's results come back as a list.
    An exception in any thread stops the others and fails the caller with it.
    """
    barrier = threading.Barrier(len(jobs), timeout=60)
    results: list = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            if rounds is None:
                barrier.wait()
                results[index] = jobs[index]()
                return
            results[index] = []
            for number in range(rounds):
                barrier.wait()
                results[index].append(jobs[index](number))
        except BaseException as exc:  # raised in the caller below
            errors.append(exc)
            barrier.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)), errors[0])
    return results


def _wait_until(condition: Callable[[], object], *, timeout: float = 20.0, interval: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s: {condition}")
        time.sleep(interval)


@pytest.fixture
def wait_until() -> Callable[..., object]:
    """Return a waiter: it polls a condition and returns its first truthy value, or fails the test."""
    return _wait_until
