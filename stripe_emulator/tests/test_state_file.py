"""--state-file: the emulator's objects, events and idempotency keys outlive a restart."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe

from stripe_emulator import EmulatorServer

from .conftest import API_KEY, SECRET, session_params


@contextmanager
def running(state_file: Path, **knobs: Any) -> Iterator[tuple[EmulatorServer, stripe.StripeClient]]:
    """Serve an emulator on the state file; stop it (as a restart would) on the way out."""
    with EmulatorServer(webhook_secrets=[SECRET], state_file=state_file, **knobs) as emu:
        yield emu, stripe.StripeClient(API_KEY, base_addresses={"api": emu.base_url}, max_network_retries=0)


def create_session(client: stripe.StripeClient, **extra: Any) -> stripe.checkout.Session:
    product = client.v1.products.create(params={"name": "Widget"})
    price = client.v1.prices.create(params={"product": product.id, "unit_amount": 4999, "currency": "usd"})
    return client.v1.checkout.sessions.create(params=session_params(price.id, **extra))


def test_a_session_outlives_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    with running(state_file) as (_, client):
        session = create_session(client, metadata={"order_id": "42"})
    with running(state_file) as (emu, client):
        again = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items"]})
        assert (again.status, again.amount_total, again.metadata.to_dict()) == (
            "open",
            4999,
            {"order_id": "42"},
        )
        assert again.line_items.data[0].description == "Widget"
        assert again.url == f"{emu.base_url}/pay/{session.id}"
        assert requests.get(again.url, timeout=5).status_code == 200


def test_the_file_is_written_as_each_request_changes_something(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    with running(state_file) as (emu, client):
        assert not state_file.exists()
        session = create_session(client)
        saved = json.loads(state_file.read_text())
        assert session.id in saved["store"]["objects"]["sessions"]
        emu.pay(session.id)
        client.v1.refunds.create(
            params={"payment_intent": emu.store.get("sessions", session.id)["payment_intent"]}
        )
        saved = json.loads(state_file.read_text())
        assert saved["store"]["objects"]["sessions"][session.id]["status"] == "complete"
        assert len(saved["store"]["objects"]["refunds"]) == 1
        assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_money_events_and_cart_objects_outlive_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    with running(state_file) as (emu, client):
        rate = client.v1.shipping_rates.create(
            params={"display_name": "Post", "fixed_amount": {"amount": 500, "currency": "usd"}}
        )
        promo = emu.create_promotion_code(code="SAVE10", percent_off=10)["promotion_code"]
        session = create_session(
            client,
            allow_promotion_codes=True,
            shipping_options=[{"shipping_rate": rate.id}],
            payment_intent_data={"metadata": {"order_id": "7"}},
        )
        paid = emu.pay(session.id, promotion_code="SAVE10")["session"]
        refund = client.v1.refunds.create(params={"payment_intent": paid["payment_intent"], "amount": 100})
        events = [e.to_dict() for e in client.v1.events.list().data]
    with running(state_file) as (emu, client):
        assert client.v1.checkout.sessions.retrieve(session.id).to_dict() == paid
        assert client.v1.refunds.retrieve(refund.id).amount == 100
        assert client.v1.payment_intents.retrieve(paid["payment_intent"]).metadata.to_dict() == {
            "order_id": "7"
        }
        assert client.v1.promotion_codes.retrieve(promo["id"]).times_redeemed == 1
        assert client.v1.shipping_rates.retrieve(rate.id).display_name == "Post"
        assert [e.to_dict() for e in client.v1.events.list().data] == events
        newer = create_session(client)
        assert [s.id for s in client.v1.checkout.sessions.list().data] == [newer.id, session.id]


def test_an_idempotency_key_replays_after_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    with running(state_file) as (_, client):
        product = client.v1.products.create(params={"name": "Once"}, options={"idempotency_key": "k-1"})
    with running(state_file) as (emu, _):
        response = requests.post(
            f"{emu.base_url}/v1/products",
            data={"name": "Once"},
            headers={"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": "k-1"},
            timeout=5,
        )
        assert response.headers["Idempotent-Replayed"] == "true"
        assert response.json()["id"] == product.id


def test_a_delayed_payment_pending_at_shutdown_settles_after_the_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    with running(state_file, async_delay=600) as (emu, client):
        session = create_session(client)
        emu.pay(session.id, "delayed_success")
    with running(state_file, async_delay=0.05) as (emu, client):
        deadline = time.monotonic() + 10
        while client.v1.checkout.sessions.retrieve(session.id).payment_status != "paid":
            assert time.monotonic() < deadline, "the delayed payment never settled"
            time.sleep(0.05)
        assert [e.type for e in client.v1.events.list().data] == [
            "checkout.session.async_payment_succeeded",
            "checkout.session.completed",
        ]


def test_a_session_that_expired_while_the_emulator_was_down_expires_at_start(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    with running(state_file) as (_, client):
        session = create_session(client)
    saved = json.loads(state_file.read_text())
    saved["store"]["objects"]["sessions"][session.id]["expires_at"] = int(time.time()) - 60
    state_file.write_text(json.dumps(saved))
    with running(state_file) as (_, client):
        assert client.v1.checkout.sessions.retrieve(session.id).status == "expired"
        assert [e.type for e in client.v1.events.list().data] == ["checkout.session.expired"]


@pytest.mark.parametrize("text", ["not json", '{"format": "something else"}', "[]"])
def test_a_file_the_emulator_did_not_write_is_refused(tmp_path: Path, text: str) -> None:
    state_file = tmp_path / "state.json"
    state_file.write_text(text)
    with pytest.raises(ValueError, match="state file"):
        EmulatorServer(state_file=state_file)
    assert state_file.read_text() == text
