"""LOG_FORMAT=json: one JSON object a line, with the request, event and order as fields, from a request,
a management command and gunicorn alike; a request id a client made up is never believed."""

import io
import json
import logging
import logging.config
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.conf import settings

from checkout_demo.logs import logging_config
from conftest import _database_url
from orders.models import OrderStatus
from payments.inbox import stripe_event_intake
from payments.tests.conftest import WEBHOOK_SECRET
from payments.tests.events import deliver, open_order, session_event

ROOT = Path(__file__).resolve().parents[2]
COMPLETED = "checkout.session.completed"


@pytest.fixture
def json_lines():
    """Log as production does, LOG_FORMAT=json, into a buffer; return a reader of its lines, parsed."""
    logging.config.dictConfig(logging_config(log_format="json", level="INFO"))
    buffer = io.StringIO()
    logging.getLogger("payments").handlers[0].setStream(buffer)  # the one handler every logger shares
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    logging.config.dictConfig(settings.LOGGING)


def _env(**env: str) -> dict[str, str]:
    prefixes = ("DJANGO_", "STRIPE_", "SENTRY_", "LOG_", "GUNICORN_")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return {**clean, "DJANGO_SETTINGS_MODULE": "checkout_demo.settings_test", **env}


def test_a_webhook_and_its_processing_write_json_lines_naming_the_request_event_and_order(
    client, settings, product, worker_run, json_lines
):
    settings.STRIPE_WEBHOOK_SECRETS = [WEBHOOK_SECRET]
    order = open_order(product)
    event = session_event(COMPLETED, order)

    response = deliver(client, event)
    worker_run()

    assert response.status_code == 200
    lines = json_lines()
    assert lines and all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    (stored,) = [line for line in lines if "stored, queued" in line["message"]]
    assert stored["request_id"] == response["X-Request-ID"]
    assert (stored["event_id"], stored["event_type"]) == (event["id"], COMPLETED)
    (moved,) = [line for line in lines if line.get("transition") == "fulfill"]
    # The worker's lines for the event carry the request id of the delivery that stored it.
    assert moved["request_id"] == response["X-Request-ID"]
    (processed,) = [line for line in lines if " processed" in line["message"]]
    assert (processed["request_id"], processed["order_id"]) == (response["X-Request-ID"], str(order.pk))
    assert moved["order_id"] == str(order.pk)
    assert moved["checkout_session_id"] == order.stripe_checkout_session_id
    assert (moved["event_id"], moved["event_type"]) == (event["id"], COMPLETED)
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED


def test_a_4xx_answer_logged_after_the_request_still_names_its_request(client, json_lines):
    response = client.get("/nothing-here")

    (line,) = [line for line in json_lines() if line["logger"] == "django.request"]
    assert line["message"] == "Not Found: /nothing-here"
    assert line["request_id"] == response["X-Request-ID"]


@pytest.mark.parametrize("proxies", [0, 1])
def test_an_untrusted_clients_request_id_is_never_used(client, settings, proxies):
    settings.TRUSTED_PROXY_COUNT = proxies
    # Behind a trusted proxy the id is its own, but a value that is not a plain token is replaced too.
    header = "forged-by-the-client" if proxies == 0 else 'forged" \\n{"level": "ERROR"}'

    response = client.get("/nothing-here", headers={"X-Request-ID": header})

    assert response["X-Request-ID"] != header
    assert len(response["X-Request-ID"]) == 32


def test_a_trusted_proxys_request_id_is_used_and_echoed(client, settings):
    settings.TRUSTED_PROXY_COUNT = 1

    response = client.get("/nothing-here", headers={"X-Request-ID": "proxy-7f3a"})

    assert response["X-Request-ID"] == "proxy-7f3a"


@pytest.mark.django_db(transaction=True)
def test_a_management_command_writes_one_json_object_a_line(product):
    order = open_order(product)
    event = session_event(COMPLETED, order)
    stripe_event_intake(event=event)

    result = subprocess.run(
        [sys.executable, "manage.py", "process_events", "--once"],
        cwd=ROOT,
        env=_env(LOG_FORMAT="json", DATABASE_URL=_database_url()),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert any(line["message"].endswith("started (batch 50, lease 300.0s)") for line in lines)
    (moved,) = [line for line in lines if line.get("transition") == "fulfill"]
    assert (moved["order_id"], moved["event_id"], moved["level"]) == (str(order.pk), event["id"], "INFO")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _accepts(port: int, server: subprocess.Popen) -> bool:
    assert server.poll() is None, "gunicorn stopped"
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_gunicorns_own_lines_are_json_too(tmp_path, wait_until):
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "checkout_demo.wsgi"],
        cwd=ROOT,
        env=_env(
            LOG_FORMAT="json",
            GUNICORN_BIND=f"127.0.0.1:{port}",
            GUNICORN_ACCESS_LOG="-",
            WEB_CONCURRENCY="1",
            DATABASE_URL=f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: _accepts(port, server))
        response = requests.get(f"http://127.0.0.1:{port}/nothing-here", timeout=10)
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)

    lines = [json.loads(line) for line in stderr.splitlines()]
    assert any(line["logger"] == "gunicorn.error" and "Listening at" in line["message"] for line in lines)
    (access,) = [line for line in lines if line["logger"] == "gunicorn.access"]
    assert '"GET /nothing-here HTTP/1.1" 404' in access["message"]
    assert access["request_id"] == response.headers["X-Request-ID"]
