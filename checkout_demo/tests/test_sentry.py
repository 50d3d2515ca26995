"""Sentry, for real: a small HTTP server stands for Sentry, and the envelopes it receives are read back.

Each report comes from a fresh interpreter whose settings read SENTRY_DSN, as a deployment's would.
"""

import gzip
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from checkout_demo.logs import scrub
from conftest import _database_url
from orders.models import Order
from orders.transitions import order_fulfill
from payments.inbox import stripe_event_intake
from payments.tests.events import checkout_session, event, open_order

ROOT = Path(__file__).resolve().parents[2]
# What must never leave: a Stripe key, a webhook secret, a signature header, a buyer's e-mail address.
SECRET_KEY = "sk_test_sentrySuiteSecretKey0123"
WEBHOOK_SECRET = "whsec_sentrySuiteWebhookSecret0123"
BUYER = "buyer.sentry@example.com"
SIGNATURE = "t=1700000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd"


class _Sentry(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.envelopes.append(body)  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def sentry_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sentry)
    server.envelopes = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _items(envelope: bytes) -> Iterator[tuple[dict, bytes]]:
    """Yield (header, payload) of each item: a JSON header line, then `length` bytes or one line."""
    _, _, rest = envelope.partition(b"\n")
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        header = json.loads(line)
        if "length" in header:
            payload, rest = rest[: header["length"]], rest[header["length"] + 1 :]
        else:
            payload, _, rest = rest.partition(b"\n")
        yield header, payload


def _events(server: ThreadingHTTPServer) -> list[dict]:
    envelopes = server.envelopes  # type: ignore[attr-defined]
    return [json.loads(p) for e in envelopes for h, p in _items(e) if h.get("type") == "event"]


def _raw(server: ThreadingHTTPServer) -> bytes:
    return b"".join(server.envelopes)  # type: ignore[attr-defined]


def _run(args: list[str], server: ThreadingHTTPServer, **env: str) -> subprocess.CompletedProcess:
    prefixes = ("DJANGO_", "STRIPE_", "SENTRY_", "LOG_")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    dsn = f"http://public@127.0.0.1:{server.server_address[1]}/1"
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "checkout_demo.settings_test",
            "SENTRY_DSN": dsn,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def _exception_type(report: dict) -> str:
    return report["exception"]["values"][-1]["type"]


def _assert_nothing_secret_left(server: ThreadingHTTPServer) -> None:
    raw = _raw(server)
    assert raw, "nothing reached the server"
    for secret in (SECRET_KEY, WEBHOOK_SECRET, SIGNATURE, "5257a869e7ecebeda32a", BUYER, b"@example.com"):
        assert (secret if isinstance(secret, bytes) else secret.encode()) not in raw


# Through the WSGI application gunicorn serves (the test client skips Sentry's WSGI layer, which adds the
# headers), a webhook whose inbox raises, with the secrets and the buyer in its locals and its request.
VIEW_RAISES = textwrap.dedent(
    f"""
    import io, json, wsgiref.util
    import django
    django.setup()
    from django.conf import settings
    from payments.views import webhook

    def intake(*, event, payload):
        key, secrets, buyer = settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRETS, {BUYER!r}
        raise RuntimeError(f"the inbox broke on {{payload[:80]!r}}")

    webhook.stripe_event_intake = intake
    webhook.gateway.webhook_event_verify = lambda payload, signature_header: json.loads(payload)
    from checkout_demo.wsgi import application
    body = json.dumps({{"id": "evt_sentry_view", "object": "event", "type": "checkout.session.completed",
                        "data": {{"object": {{"customer_details": {{"email": {BUYER!r}}}}}}}}}).encode()
    environ = {{"REQUEST_METHOD": "POST", "PATH_INFO": "/stripe-webhook", "CONTENT_TYPE": "application/json",
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
               "HTTP_STRIPE_SIGNATURE": {SIGNATURE!r}, "HTTP_COOKIE": "sessionid=abc"}}
    wsgiref.util.setup_testing_defaults(environ)
    answers = []
    application(environ, lambda status, headers, exc_info=None: answers.append(status))
    assert answers == ["500 Internal Server Error"], answers
    import sentry_sdk
    sentry_sdk.flush()
    """
)


def test_an_unhandled_error_in_a_view_is_reported_tagged_and_without_secrets(sentry_server):
    result = _run(["-c", VIEW_RAISES], sentry_server, STRIPE_SECRET_KEY=SECRET_KEY)

    assert result.returncode == 0, result.stderr
    (report,) = [r for r in _events(sentry_server) if "exception" in r and r.get("request")]
    assert _exception_type(report) == "RuntimeError"
    assert report["tags"]["event_id"] == "evt_sentry_view"
    assert report["tags"]["event_type"] == "checkout.session.completed"
    assert len(report["tags"]["request_id"]) == 32
    assert report["request"]["headers"]["Stripe-Signature"] == "[Filtered]"
    assert "data" not in report["request"]  # no request body: a webhook's holds the buyer's details
    _assert_nothing_secret_left(sentry_server)


def test_an_unhandled_error_in_a_management_command_is_reported(sentry_server):
    command = (
        "from orders.logs import log_fields\n"
        "with log_fields(order_id='0b5e3c1d-order', checkout_session_id='cs_test_sentry'):\n"
        f"    key = {SECRET_KEY!r}\n"
        f"    raise LookupError('no order for {BUYER}, key ' + key)\n"
    )

    result = _run(["manage.py", "shell", "-c", command], sentry_server)

    assert result.returncode == 1
    (report,) = [r for r in _events(sentry_server) if "exception" in r]
    assert _exception_type(report) == "LookupError"
    assert report["tags"]["order_id"] == "0b5e3c1d-order"
    assert report["tags"]["checkout_session_id"] == "cs_test_sentry"
    assert "[Filtered email]" in report["exception"]["values"][-1]["value"]
    _assert_nothing_secret_left(sentry_server)


@pytest.mark.django_db(transaction=True)
def test_events_that_end_needs_review_or_failed_in_the_worker_are_reported_tagged(sentry_server, product):
    # Charged 1.00 for an order of 49.99: needs_review.
    underpaid = open_order(product)
    mismatch = event("checkout.session.completed", checkout_session(underpaid, amount_total=100, email=BUYER))
    stripe_event_intake(event=mismatch)
    # A refund whose refunds must be asked of Stripe, not configured here: failed, to be retried.
    refunded = open_order(product)
    Order.objects.filter(pk=refunded.pk).update(stripe_payment_intent_id="pi_sentry_refunded")
    order_fulfill(order_id=refunded.pk, source="webhook")
    charge = {"id": "ch_sentry", "object": "charge", "payment_intent": "pi_sentry_refunded", "refunds": {}}
    refund = event("charge.refunded", charge)
    stripe_event_intake(event=refund)

    result = _run(["manage.py", "process_events", "--once"], sentry_server, DATABASE_URL=_database_url())

    assert result.returncode == 0, result.stderr
    reports = _events(sentry_server)
    # The refusal, and the event's outcome (the inbox's line), each carry the event's tags.
    reviewed = [r for r in reports if r["tags"].get("event_id") == mismatch["id"]]
    (review,) = [r for r in reviewed if "not applied" in r["logentry"]["message"]]
    assert review["level"] == "error"
    (outcome,) = [r for r in reviewed if r["logentry"]["message"].startswith("event ")]
    assert outcome["tags"]["order_id"] == str(underpaid.pk)
    assert review["tags"]["order_id"] == str(underpaid.pk)
    assert review["tags"]["checkout_session_id"] == underpaid.stripe_checkout_session_id
    (failed,) = [r for r in reports if r["tags"].get("event_id") == refund["id"]]
    assert _exception_type(failed) == "PaymentProviderNotConfigured"
    assert failed["tags"]["order_id"] == str(refunded.pk)
    _assert_nothing_secret_left(sentry_server)


def test_a_worker_thread_that_crashes_is_reported_and_the_command_fails(sentry_server):
    crash = (
        "import django; django.setup()\n"
        "from django.core.management import CommandError, call_command\n"
        "from payments.worker import Worker\n"
        "def run_batch(self):\n"
        "    raise RuntimeError('the worker loop broke')\n"
        "Worker.run_batch = run_batch\n"
        "try:\n"
        "    call_command('process_events', '--once')\n"
        "except CommandError as exc:\n"
        "    print(exc)\n"
        "import sentry_sdk; sentry_sdk.flush()\n"
    )

    ran = _run(["-c", crash], sentry_server)

    # A supervisor restarts a worker that exits with an error, not one that looks done.
    assert "a worker thread crashed: RuntimeError: the worker loop broke" in ran.stdout
    (report,) = [r for r in _events(sentry_server) if "exception" in r]
    assert _exception_type(report) == "RuntimeError"


def test_without_a_dsn_sentry_is_not_even_imported(sentry_server):
    check = (
        "import sys, django; django.setup(); from checkout_demo.wsgi import application; "
        "print('sentry_sdk' in sys.modules)"
    )

    without = _run(["-c", check], sentry_server, SENTRY_DSN="")
    with_dsn = _run(["-c", check], sentry_server)

    assert (without.stdout.strip(), with_dsn.stdout.strip()) == ("False", "True")


def test_secrets_are_scrubbed_by_the_name_they_are_kept_under_and_by_their_look():
    report = {
        "headers": {"Stripe-Signature": "v1=anything,t=1", "Authorization": "Bearer abc"},
        "vars": {"api_key": repr(SECRET_KEY), "note": f"signed {SIGNATURE} for {BUYER}"},
        "breadcrumbs": [f"secret {WEBHOOK_SECRET}", "pk_live_51Publishable"],
    }

    assert scrub(report, send_emails=False) == {
        "headers": {"Stripe-Signature": "[Filtered]", "Authorization": "[Filtered]"},
        "vars": {"api_key": "'[Filtered]'", "note": "signed [Filtered] for [Filtered email]"},
        "breadcrumbs": ["secret [Filtered]", "[Filtered]"],
    }
    assert scrub(f"to {BUYER}", send_emails=True) == f"to {BUYER}"
