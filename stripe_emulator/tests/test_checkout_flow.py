"""Paying, settling and expiring sessions: hosted page, control API and timers."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests
import stripe

from .conftest import Receiver, session_params


def control(emu: Any, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(method, f"{emu.base_url}/_emulator{path}", json=body, timeout=10)


def event_types(client: stripe.StripeClient) -> list[str]:
    return [e.type for e in client.v1.events.list().data][::-1]


def test_control_pay_with_card(emu: Any, client: stripe.StripeClient, session: Any) -> None:
    response = control(emu, "POST", f"/checkout/sessions/{session.id}/pay", {"method": "card"})
    assert response.status_code == 200
    body = response.json()
    assert body["redirect_url"] == f"http://shop.test/success?session_id={session.id}"
    paid = body["session"]
    assert (paid["status"], paid["payment_status"], paid["url"]) == ("complete", "paid", None)
    assert paid["customer_details"]["email"] == "customer@example.com"
    intent = client.v1.payment_intents.retrieve(paid["payment_intent"])
    assert (intent.status, intent.amount_received) == ("succeeded", 4999)
    assert event_types(client) == ["checkout.session.completed"]


def test_paying_twice_is_refused_without_a_second_event(
    emu: Any, client: stripe.StripeClient, session: Any
) -> None:
    emu.pay(session.id)
    again = control(emu, "POST", f"/checkout/sessions/{session.id}/pay", {"method": "card"})
    assert again.status_code == 409
    assert "already complete" in again.json()["error"]["message"]
    page = requests.post(
        f"{emu.base_url}/pay/{session.id}", data={"method": "card"}, allow_redirects=False, timeout=5
    )
    assert page.status_code == 409 and "Already paid" in page.text
    assert event_types(client) == ["checkout.session.completed"]


def test_delayed_success_settled_through_control_api(
    emu: Any, client: stripe.StripeClient, session: Any
) -> None:
    paid = emu.pay(session.id, "delayed_success")["session"]
    assert (paid["status"], paid["payment_status"]) == ("complete", "unpaid")
    intent = client.v1.payment_intents.retrieve(paid["payment_intent"])
    assert intent.status == "processing"
    settled = control(emu, "POST", f"/checkout/sessions/{session.id}/settle")
    assert settled.json()["session"]["payment_status"] == "paid"
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    assert event_types(client) == ["checkout.session.completed", "checkout.session.async_payment_succeeded"]
    assert control(emu, "POST", f"/checkout/sessions/{session.id}/settle").status_code == 409


def test_delayed_failure_settles_by_itself(
    emu: Any, receiver: Receiver, client: stripe.StripeClient, session: Any
) -> None:
    emu.configure(async_delay=0.05)
    emu.pay(session.id, "delayed_failure")
    deadline = time.monotonic() + 10
    while len(receiver.requests) < 2 and time.monotonic() < deadline:
        emu.wait_for_idle(timeout=1)
        time.sleep(0.01)
    assert [e["type"] for e in receiver.events()] == [
        "checkout.session.completed",
        "checkout.session.async_payment_failed",
    ]
    failed = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert (failed.status, failed.payment_status) == ("complete", "unpaid")
    assert failed.payment_intent.status == "requires_payment_method"
    assert failed.payment_intent.last_payment_error.message


def test_reset_cancels_pending_settlements(
    emu: Any, client: stripe.StripeClient, session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The settlement's timer still fires after the reset; wait until it has run, then look.
    settlement_ran = threading.Event()
    settle_later = emu.flow._settle_later

    def settle_later_and_say_so(session_id: str, generation: int) -> None:
        try:
            settle_later(session_id, generation)
        finally:
            settlement_ran.set()

    monkeypatch.setattr(emu.flow, "_settle_later", settle_later_and_say_so)
    emu.configure(async_delay=0.05)
    emu.pay(session.id, "delayed_success")
    emu.reset()

    assert settlement_ran.wait(timeout=10)
    assert client.v1.events.list().data == []


def test_expire_through_control_api(emu: Any, client: stripe.StripeClient, session: Any) -> None:
    response = control(emu, "POST", f"/checkout/sessions/{session.id}/expire")
    assert response.json()["session"]["status"] == "expired"
    assert event_types(client) == ["checkout.session.expired"]
    assert control(emu, "POST", f"/checkout/sessions/{session.id}/expire").status_code == 400
    assert control(emu, "POST", "/checkout/sessions/cs_test_nope/expire").status_code == 404
    refused = control(emu, "POST", f"/checkout/sessions/{session.id}/pay", {"method": "card"})
    assert refused.status_code == 409


def test_sessions_expire_when_expires_at_passes(emu: Any, client: stripe.StripeClient, session: Any) -> None:
    emu.store.get("sessions", session.id)["expires_at"] = int(time.time()) - 1
    fetched = client.v1.checkout.sessions.retrieve(session.id)
    assert (fetched.status, fetched.url) == ("expired", None)
    assert event_types(client) == ["checkout.session.expired"]


def test_hosted_page_shows_the_session(emu: Any, client: stripe.StripeClient, price: stripe.Price) -> None:
    session = client.v1.checkout.sessions.create(
        params=session_params(
            price.id, line_items=[{"price": price.id, "quantity": 2}], customer_email="buyer@example.com"
        )
    )
    response = requests.get(session.url, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    html = response.text
    assert "Test widget" in html and "Qty 2" in html
    assert "$49.99" in html and "$99.98" in html
    assert "buyer@example.com" in html
    for element_id in ("pay-card", "pay-delayed-success", "pay-delayed-failure", "cancel"):
        assert f'id="{element_id}"' in html
    assert 'href="http://shop.test/cancel"' in html
    assert "4242 4242 4242 4242" in html


def test_hosted_page_form_post_redirects_to_success_url(
    emu: Any, receiver: Receiver, client: stripe.StripeClient, session: Any
) -> None:
    response = requests.post(
        f"{emu.base_url}/pay/{session.id}",
        data={"method": "card", "email": "typed@example.com"},
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 303
    assert response.headers["Location"] == (f"http://shop.test/success?session_id={session.id}")
    assert emu.wait_for_idle(timeout=10)
    assert [e["type"] for e in receiver.events()] == ["checkout.session.completed"]
    paid = client.v1.checkout.sessions.retrieve(session.id)
    assert paid.customer_details.email == "typed@example.com"
    after = requests.get(f"{emu.base_url}/pay/{session.id}", timeout=5)
    assert "Already paid" in after.text and 'id="pay-card"' not in after.text


def test_hosted_page_for_expired_and_unknown_sessions(emu: Any, session: Any) -> None:
    emu.expire(session.id)
    expired = requests.get(f"{emu.base_url}/pay/{session.id}", timeout=5)
    assert "expired" in expired.text and 'id="pay-card"' not in expired.text
    missing = requests.get(f"{emu.base_url}/pay/cs_test_nope", timeout=5)
    assert missing.status_code == 404 and "Page not found" in missing.text


def test_zero_total_needs_no_payment(emu: Any, client: stripe.StripeClient) -> None:
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "success_url": "http://shop.test/ok",
            "line_items": [
                {
                    "price_data": {"currency": "usd", "unit_amount": 0, "product_data": {"name": "Free"}},
                    "quantity": 1,
                }
            ],
        }
    )
    assert session.payment_status == "no_payment_required"
    paid = emu.pay(session.id)["session"]
    assert (paid["status"], paid["payment_status"], paid["payment_intent"]) == (
        "complete",
        "no_payment_required",
        None,
    )


def test_control_config_health_reset_and_wait(emu: Any, client: stripe.StripeClient, session: Any) -> None:
    assert control(emu, "GET", "/health").json() == {"ok": True}
    updated = control(emu, "POST", "/config", {"duplicates": 2, "webhook_timing": "hold"})
    assert updated.status_code == 200
    assert (updated.json()["duplicates"], updated.json()["webhook_timing"]) == (2, "hold")
    assert control(emu, "GET", "/config").json()["duplicates"] == 2
    bad = control(emu, "POST", "/config", {"webhook_timing": "sometime"})
    assert bad.status_code == 400 and "webhook_timing" in bad.json()["error"]["message"]
    assert control(emu, "POST", "/config", {"nope": 1}).status_code == 400
    assert control(emu, "POST", "/wait_idle", {"timeout": 1}).json() == {"idle": True}
    assert control(emu, "GET", "/deliveries").json() == []
    assert control(emu, "POST", "/reset").json() == {"ok": True}
    assert client.v1.checkout.sessions.list().data == []
    assert control(emu, "GET", "/nowhere").status_code == 404
    assert control(emu, "GET", "/reset").status_code == 405


def test_configure_rejects_bad_values(emu: Any) -> None:
    for bad in (
        {"duplicates": 0},
        {"drop_rate": 2},
        {"webhook_url": "ftp://x"},
        {"max_attempts": 1.5},
        {"unknown_knob": 1},
    ):
        with pytest.raises(ValueError):
            emu.configure(**bad)


def test_sweep_expires_due_sessions_once(
    emu: Any, client: stripe.StripeClient, price: stripe.Price, monkeypatch: pytest.MonkeyPatch
) -> None:
    soon = client.v1.checkout.sessions.create(
        params=session_params(price.id, expires_at=int(time.time()) + 1900)
    )
    later = client.v1.checkout.sessions.create(params=session_params(price.id))
    in_an_hour = time.time() + 3600
    monkeypatch.setattr("stripe_emulator.checkout.time.time", lambda: in_an_hour)
    emu.flow.expire_overdue()
    emu.flow.expire_overdue()
    monkeypatch.undo()
    assert client.v1.checkout.sessions.retrieve(soon.id).status == "expired"
    assert client.v1.checkout.sessions.retrieve(later.id).status == "open"
    assert event_types(client) == ["checkout.session.expired"]
