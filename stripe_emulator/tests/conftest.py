"""Fixtures: an emulator on a free port, a stripe-python client, a webhook receiver."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import stripe

from stripe_emulator import EmulatorServer
from stripe_emulator.config import DEFAULT_TAX_RATES

API_KEY = "sk_test_emulator_tests"
SECRET = "whsec_emulator_tests"
FAST_KNOBS: dict[str, Any] = {
    "webhook_url": None,
    "webhook_secrets": [SECRET],
    "webhook_delay": 0.0,
    "webhook_timing": "async",
    "duplicates": 1,
    "drop_rate": 0.0,
    "drop_next": 0,
    "async_delay": 60.0,
    "max_attempts": 3,
    "retry_backoff": 0.01,
    "delivery_timeout": 5.0,
    "seed": None,
    "refund_mode": "succeeded",
    "pending_next_refunds": 0,
    "fail_next_refunds": 0,
    "tax_rates": DEFAULT_TAX_RATES,
}


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    """Serve one emulator for the whole session."""
    with EmulatorServer(host="127.0.0.1", port=0, webhook_secrets=[SECRET]) as server:
        yield server


@pytest.fixture
def emu(emulator_server: EmulatorServer) -> Iterator[EmulatorServer]:
    """Return the emulator, emptied, with fast knobs and no webhook endpoint."""
    emulator_server.configure(**FAST_KNOBS)
    emulator_server.reset()
    yield emulator_server
    emulator_server.configure(webhook_url=None)
    emulator_server.release_webhooks()
    emulator_server.wait_for_idle(timeout=5)
    emulator_server.reset()


@pytest.fixture
def client(emu: EmulatorServer) -> stripe.StripeClient:
    """Return a stripe-python client aimed at the emulator."""
    return stripe.StripeClient(API_KEY, base_addresses={"api": emu.base_url}, max_network_retries=0)


class Receiver:
    """A local webhook endpoint that records what it gets and answers as planned."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.plan: list[int] = []
        self.default_status = 200
        self.delay = 0.0
        self.cut_off_next = 0  # answers to break off mid-body, as a worker killed while answering does
        self.gate: threading.Event | None = None
        self.timeline: list[str] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    status = receiver.plan.pop(0) if receiver.plan else receiver.default_status
                    receiver.requests.append(
                        {
                            "headers": dict(self.headers),
                            "body": body.decode(),
                            "status": status,
                            "at": time.time(),
                        }
                    )
                    event = json.loads(body)
                    receiver.timeline.append(f"webhook:{event['type']}")
                if receiver.delay:
                    time.sleep(receiver.delay)
                if receiver.gate is not None:
                    receiver.gate.wait(10)
                with receiver._lock:
                    cut_off = receiver.cut_off_next > 0
                    receiver.cut_off_next -= cut_off
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "100" if cut_off else "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the emulator gave up waiting (delivery timeout tests)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhooks/stripe"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def events(self) -> list[dict[str, Any]]:
        """Return the bodies received, parsed."""
        with self._lock:
            return [json.loads(r["body"]) for r in self.requests]

    def close(self) -> None:
        """Stop listening."""
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver(emu: EmulatorServer) -> Iterator[Receiver]:
    """Start a webhook receiver and aim the emulator at it."""
    rec = Receiver()
    emu.configure(webhook_url=rec.url)
    yield rec
    emu.configure(webhook_url=None)
    emu.wait_for_idle(timeout=5)
    rec.close()


@pytest.fixture
def price(client: stripe.StripeClient) -> stripe.Price:
    """Return an active 49.99 USD price."""
    product = client.v1.products.create(params={"name": "Test widget"})
    return client.v1.prices.create(params={"product": product.id, "unit_amount": 4999, "currency": "usd"})


def session_params(price_id: str, **extra: Any) -> dict[str, Any]:
    """Return minimal valid Checkout Session parameters."""
    return {
        "mode": "payment",
        "line_items": [{"price": price_id, "quantity": 1}],
        "success_url": "http://shop.test/success?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "http://shop.test/cancel",
        **extra,
    }


@pytest.fixture
def session(client: stripe.StripeClient, price: stripe.Price) -> stripe.checkout.Session:
    """Return an open session for one unit of `price`."""
    return client.v1.checkout.sessions.create(params=session_params(price.id))


@pytest.fixture
def paid_intent(
    emu: EmulatorServer, client: stripe.StripeClient, price: stripe.Price
) -> stripe.PaymentIntent:
    """Return the PaymentIntent of a session paid by card (49.99 USD, order_id metadata)."""
    session = client.v1.checkout.sessions.create(
        params=session_params(price.id, payment_intent_data={"metadata": {"order_id": "42"}})
    )
    paid = emu.pay(session.id)["session"]
    return client.v1.payment_intents.retrieve(paid["payment_intent"])


def control(emu: EmulatorServer, method: str, path: str, body: Any = None) -> Any:
    """Call the control API with a JSON body; return the requests response."""
    import requests

    return requests.request(method, f"{emu.base_url}/_emulator{path}", json=body, timeout=10)


def event_types(client: stripe.StripeClient) -> list[str]:
    """Return the types of every event, oldest first."""
    return [e.type for e in client.v1.events.list(params={"limit": 100}).data][::-1]
