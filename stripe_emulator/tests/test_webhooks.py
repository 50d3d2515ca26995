"""Webhook delivery: signatures, retries, duplicates, drops, hold and timing."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests
import stripe

from stripe_emulator.webhooks import compute_signature, signature_header

from .conftest import SECRET, Receiver


def pay_and_wait(emu: Any, session_id: str, method: str = "card") -> dict[str, Any]:
    result = emu.pay(session_id, method)
    assert emu.wait_for_idle(timeout=10)
    return result


def test_signature_header_matches_stripe_python() -> None:
    payload = '{"id": "evt_1"}'
    header = signature_header(payload, ["whsec_a"], 1_700_000_000)
    expected = stripe.WebhookSignature.generate_signature_header(payload, "whsec_a", timestamp=1_700_000_000)
    assert header == expected
    assert compute_signature(payload, "whsec_a", 1) != compute_signature(payload, "whsec_b", 1)


def test_payment_delivers_a_verifiable_event(emu: Any, receiver: Receiver, session: Any) -> None:
    pay_and_wait(emu, session.id)
    (request,) = receiver.requests
    headers = request["headers"]
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["User-Agent"] == "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
    event = stripe.Webhook.construct_event(request["body"], headers["Stripe-Signature"], SECRET)
    assert event.type == "checkout.session.completed"
    assert event.id.startswith("evt_") and event.object == "event"
    assert event.api_version == stripe.api_version
    assert event.livemode is False and event.pending_webhooks == 1
    assert event.request.id is None
    data = event.data.object
    assert (data.id, data.status, data.payment_status) == (session.id, "complete", "paid")
    assert data.payment_intent.startswith("pi_")
    assert data.customer_details.email
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(request["body"], headers["Stripe-Signature"], "whsec_wrong")

    (entry,) = emu.deliveries()
    assert (entry["event_id"], entry["type"], entry["status"]) == (
        event.id,
        "checkout.session.completed",
        "delivered",
    )
    assert entry["attempts"][0]["status_code"] == 200
    assert entry["attempts"][0]["error"] is None


def test_pending_webhooks_drops_to_zero_once_delivered(
    emu: Any, receiver: Receiver, client: stripe.StripeClient, session: Any
) -> None:
    pay_and_wait(emu, session.id)
    (event,) = client.v1.events.list().data
    assert event.pending_webhooks == 0


def test_one_v1_signature_per_secret(emu: Any, receiver: Receiver, session: Any) -> None:
    emu.configure(webhook_secrets=["whsec_old", "whsec_new"])
    pay_and_wait(emu, session.id)
    (request,) = receiver.requests
    header = request["headers"]["Stripe-Signature"]
    assert header.startswith("t=") and header.count("v1=") == 2
    for secret in ("whsec_old", "whsec_new"):
        stripe.Webhook.construct_event(request["body"], header, secret)


def test_retries_non_2xx_then_succeeds(emu: Any, receiver: Receiver, session: Any) -> None:
    receiver.plan = [500, 503]
    pay_and_wait(emu, session.id)
    assert [r["status"] for r in receiver.requests] == [500, 503, 200]
    assert len({r["body"] for r in receiver.requests}) == 1
    (entry,) = emu.deliveries()
    assert entry["status"] == "delivered"
    assert [a["status_code"] for a in entry["attempts"]] == [500, 503, 200]


def test_gives_up_after_max_attempts(
    emu: Any, receiver: Receiver, client: stripe.StripeClient, session: Any
) -> None:
    receiver.default_status = 400
    pay_and_wait(emu, session.id)
    (entry,) = emu.deliveries()
    assert entry["status"] == "failed" and len(entry["attempts"]) == 3
    (event,) = client.v1.events.list(params={"delivery_success": False}).data
    assert event.pending_webhooks == 1


def test_connection_errors_and_timeouts_are_retried(emu: Any, receiver: Receiver, session: Any) -> None:
    emu.configure(webhook_url="http://127.0.0.1:9/nothing-listens-here", max_attempts=2)
    pay_and_wait(emu, session.id)
    (entry,) = emu.deliveries()
    assert entry["status"] == "failed"
    assert [a["status_code"] for a in entry["attempts"]] == [None, None]
    assert all(a["error"] for a in entry["attempts"])

    emu.reset()
    emu.configure(webhook_url=receiver.url, delivery_timeout=0.2, max_attempts=2)
    receiver.delay = 0.5
    session_id = _open_session(emu)
    pay_and_wait(emu, session_id)
    (entry,) = emu.deliveries()
    assert entry["status"] == "failed" and len(entry["attempts"]) == 2
    assert "timed out" in entry["attempts"][0]["error"].lower()


def test_answer_cut_off_mid_body_is_recorded_and_retried(emu: Any, receiver: Receiver, session: Any) -> None:
    receiver.cut_off_next = 1
    pay_and_wait(emu, session.id)
    (entry,) = emu.deliveries()
    assert entry["status"] == "delivered"
    first, second = entry["attempts"]
    assert first["status_code"] is None and "IncompleteRead" in first["error"]
    assert second["status_code"] == 200


def _open_session(emu: Any) -> str:
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
    return session.id


def test_duplicates_deliver_one_event_several_times(emu: Any, receiver: Receiver, session: Any) -> None:
    emu.configure(duplicates=3)
    pay_and_wait(emu, session.id)
    events = receiver.events()
    assert len(events) == 3 and len({e["id"] for e in events}) == 1
    assert len({r["body"] for r in receiver.requests}) == 1
    for request in receiver.requests:
        stripe.Webhook.construct_event(request["body"], request["headers"]["Stripe-Signature"], SECRET)
    assert sorted(d["copy"] for d in emu.deliveries()) == [0, 1, 2]


def test_drop_next_drops_an_event_but_keeps_it_listed(
    emu: Any, receiver: Receiver, client: stripe.StripeClient, price: stripe.Price
) -> None:
    from .conftest import session_params

    emu.configure(drop_next=1)
    dropped = client.v1.checkout.sessions.create(params=session_params(price.id))
    kept = client.v1.checkout.sessions.create(params=session_params(price.id))
    pay_and_wait(emu, dropped.id)
    pay_and_wait(emu, kept.id)
    assert [e["data"]["object"]["id"] for e in receiver.events()] == [kept.id]
    assert [d["status"] for d in emu.deliveries()] == ["dropped", "delivered"]
    assert emu.get_config()["drop_next"] == 0
    undelivered = client.v1.events.list(params={"delivery_success": False}).data
    assert [e.data.object.id for e in undelivered] == [dropped.id]
    delivered = client.v1.events.list(params={"delivery_success": True}).data
    assert [e.data.object.id for e in delivered] == [kept.id]


def test_drop_rate_one_drops_everything(
    emu: Any, receiver: Receiver, session: Any, client: stripe.StripeClient
) -> None:
    emu.configure(drop_rate=1.0, seed=7)
    pay_and_wait(emu, session.id)
    assert receiver.requests == []
    assert [d["status"] for d in emu.deliveries()] == ["dropped"]
    assert len(client.v1.events.list().data) == 1


def test_hold_then_release(emu: Any, receiver: Receiver, session: Any) -> None:
    emu.configure(webhook_timing="hold")
    result = emu.pay(session.id)
    assert result["redirect_url"] == (f"http://shop.test/success?session_id={session.id}")
    assert emu.wait_for_idle(timeout=1)
    assert receiver.requests == []
    assert [d["status"] for d in emu.deliveries()] == ["held"]
    released = requests.post(f"{emu.base_url}/_emulator/webhooks/release", timeout=5)
    assert released.json() == {"released": 1}
    assert emu.wait_for_idle(timeout=10)
    assert [e["type"] for e in receiver.events()] == ["checkout.session.completed"]
    assert [d["status"] for d in emu.deliveries()] == ["delivered"]
    over_http = requests.get(f"{emu.base_url}/_emulator/deliveries", timeout=5).json()
    assert over_http == emu.deliveries()


def test_before_redirect_delivers_before_the_303(emu: Any, receiver: Receiver, session: Any) -> None:
    emu.configure(webhook_timing="before_redirect")
    receiver.delay = 0.2
    response = requests.post(
        f"{emu.base_url}/pay/{session.id}", data={"method": "card"}, allow_redirects=False, timeout=10
    )
    receiver.timeline.append("redirect")
    assert response.status_code == 303
    assert receiver.timeline == ["webhook:checkout.session.completed", "redirect"]
    assert emu.deliveries()[0]["status"] == "delivered"


def test_async_timing_does_not_wait_for_the_endpoint(emu: Any, receiver: Receiver, session: Any) -> None:
    receiver.gate = threading.Event()
    result = emu.pay(session.id)
    # pay() returned while the endpoint has not answered yet.
    assert result["session"]["status"] == "complete"
    assert not emu.wait_for_idle(timeout=0)
    receiver.gate.set()
    assert emu.wait_for_idle(timeout=10)
    assert emu.deliveries()[0]["status"] == "delivered"


def test_webhook_delay_postpones_the_first_attempt(emu: Any, receiver: Receiver, session: Any) -> None:
    emu.configure(webhook_delay=0.2)
    paid_at = time.time()
    pay_and_wait(emu, session.id)
    assert receiver.requests[0]["at"] - paid_at >= 0.2


def test_without_endpoint_events_are_listed_not_sent(
    emu: Any, client: stripe.StripeClient, session: Any
) -> None:
    pay_and_wait(emu, session.id)
    (entry,) = emu.deliveries()
    assert entry["status"] == "no_endpoint" and entry["attempts"] == []
    (event,) = client.v1.events.list().data
    assert event.pending_webhooks == 0


def test_redirect_answers_count_as_failures(emu: Any, receiver: Receiver, session: Any) -> None:
    receiver.plan = [302]
    pay_and_wait(emu, session.id)
    assert [a["status_code"] for a in emu.deliveries()[0]["attempts"]] == [302, 200]


def test_signature_uses_current_time(emu: Any, receiver: Receiver, session: Any) -> None:
    pay_and_wait(emu, session.id)
    header = receiver.requests[0]["headers"]["Stripe-Signature"]
    timestamp = int(header.split(",")[0][2:])
    assert abs(timestamp - time.time()) < 60


def test_seed_makes_random_drops_repeatable(emu: Any, receiver: Receiver) -> None:
    emu.configure(drop_rate=0.5, seed=3)

    def run() -> list[str]:
        for _ in range(12):
            pay_and_wait(emu, _open_session(emu))
        return [d["status"] for d in emu.deliveries()]

    first = run()
    emu.reset()
    second = run()
    assert first == second
    assert set(first) == {"dropped", "delivered"}
