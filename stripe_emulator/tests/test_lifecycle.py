"""Starting, stopping and resetting an EmulatorServer."""

from __future__ import annotations

import threading
import time

import requests
import stripe

from stripe_emulator import EmulatorServer

from .conftest import Receiver


def test_context_manager_serves_then_frees_the_port() -> None:
    with EmulatorServer(webhook_secrets=["whsec_x"]) as emu:
        assert emu.base_url.startswith("http://127.0.0.1:") and emu.port > 0
        assert requests.get(f"{emu.base_url}/_emulator/health", timeout=5).ok
        base_url = emu.base_url
    try:
        requests.get(f"{base_url}/_emulator/health", timeout=1)
        raise AssertionError("still serving after stop()")
    except requests.ConnectionError:
        pass


def test_default_secret_is_generated() -> None:
    emu = EmulatorServer()
    (secret,) = emu.get_config()["webhook_secrets"]
    assert secret.startswith("whsec_")


def test_stop_does_not_wait_for_a_stuck_endpoint() -> None:
    receiver = Receiver()
    receiver.gate = threading.Event()
    emu = EmulatorServer(webhook_url=receiver.url, webhook_secrets=["whsec_x"]).start()
    try:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": emu.base_url}, max_network_retries=0)
        session = client.v1.checkout.sessions.create(
            params={
                "mode": "payment",
                "success_url": "http://shop.test/ok",
                "line_items": [
                    {
                        "price_data": {"currency": "usd", "unit_amount": 100, "product_data": {"name": "x"}},
                        "quantity": 1,
                    }
                ],
            }
        )
        emu.pay(session.id)
        started = time.monotonic()
        emu.stop()
        assert time.monotonic() - started < 5
    finally:
        receiver.gate.set()
        receiver.close()


def test_reset_keeps_config(emu: EmulatorServer, client: stripe.StripeClient) -> None:
    emu.configure(duplicates=4)
    client.v1.products.create(params={"name": "gone"}, options={"idempotency_key": "p"})
    emu.reset()
    assert emu.get_config()["duplicates"] == 4
    assert client.v1.products.list().data == []
    again = client.v1.products.create(params={"name": "new"}, options={"idempotency_key": "p"})
    assert again.name == "new"


def test_restart_after_stop() -> None:
    emu = EmulatorServer(async_delay=0.01)
    emu.start()
    emu.stop()
    emu.start()
    try:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": emu.base_url}, max_network_retries=0)
        session = client.v1.checkout.sessions.create(
            params={
                "mode": "payment",
                "success_url": "http://shop.test/ok",
                "line_items": [
                    {
                        "price_data": {"currency": "usd", "unit_amount": 100, "product_data": {"name": "x"}},
                        "quantity": 1,
                    }
                ],
            }
        )
        emu.pay(session.id, "delayed_success")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid":
                break
            time.sleep(0.01)
        assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"
    finally:
        emu.stop()
