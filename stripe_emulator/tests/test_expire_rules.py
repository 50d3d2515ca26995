"""Expiring and paying one session: whichever comes first wins, the other is refused."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
import stripe

from .conftest import control, event_types, session_params


def refusal(client: stripe.StripeClient, session_id: str) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.checkout.sessions.expire(session_id)
    return info.value


def test_expire_refuses_a_complete_session(emu: Any, client: stripe.StripeClient, session: Any) -> None:
    emu.pay(session.id)
    error = refusal(client, session.id)
    assert (error.http_status, error.error.type) == (400, "invalid_request_error")
    assert error.user_message == (
        'Only Checkout Sessions with a status in ["open"] can be expired. '
        "This Checkout Session has a status of `complete`."
    )
    assert client.v1.checkout.sessions.retrieve(session.id).status == "complete"
    assert event_types(client) == ["checkout.session.completed"]


def test_expire_refuses_a_session_whose_delayed_payment_is_under_way(
    emu: Any, client: stripe.StripeClient, session: Any
) -> None:
    emu.pay(session.id, "delayed_success")
    assert refusal(client, session.id).user_message.endswith("has a status of `complete`.")
    emu.settle(session.id)
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"


def test_expire_refuses_an_expired_session(emu: Any, client: stripe.StripeClient, session: Any) -> None:
    client.v1.checkout.sessions.expire(session.id)
    assert refusal(client, session.id).user_message.endswith("has a status of `expired`.")
    assert event_types(client) == ["checkout.session.expired"]


def test_expire_then_pay_is_refused_and_charges_nothing(
    emu: Any, client: stripe.StripeClient, session: Any
) -> None:
    client.v1.checkout.sessions.expire(session.id)
    by_control = control(emu, "POST", f"/checkout/sessions/{session.id}/pay", {"method": "card"})
    assert by_control.status_code == 409
    assert "has expired" in by_control.json()["error"]["message"]
    page = requests.post(
        f"{emu.base_url}/pay/{session.id}", data={"method": "card"}, allow_redirects=False, timeout=5
    )
    assert page.status_code == 409
    assert "This checkout has expired" in page.text and "Nothing was charged" in page.text
    assert 'id="pay-card"' not in page.text
    shown = requests.get(f"{emu.base_url}/pay/{session.id}", timeout=5)
    assert "This checkout has expired" in shown.text
    expired = client.v1.checkout.sessions.retrieve(session.id)
    assert (expired.status, expired.payment_status, expired.payment_intent) == ("expired", "unpaid", None)
    assert client.v1.charges.list().data == []
    assert event_types(client) == ["checkout.session.expired"]


def test_pay_then_expire_is_refused(emu: Any, client: stripe.StripeClient, session: Any) -> None:
    emu.pay(session.id)
    assert control(emu, "POST", f"/checkout/sessions/{session.id}/expire").status_code == 400
    refusal(client, session.id)
    paid = client.v1.checkout.sessions.retrieve(session.id)
    assert (paid.status, paid.payment_status) == ("complete", "paid")
    assert len(client.v1.charges.list().data) == 1
    assert event_types(client) == ["checkout.session.completed"]


def race_expire_and_pay(emu: Any, client: stripe.StripeClient, session_id: str) -> list[str]:
    """Expire (API) and pay (control API) one session from two threads at once; return who won."""
    start = threading.Barrier(2)
    won: list[str] = []

    def expire() -> None:
        start.wait(5)
        try:
            client.v1.checkout.sessions.expire(session_id)
            won.append("expire")
        except stripe.InvalidRequestError:
            pass

    def pay() -> None:
        start.wait(5)
        response = control(emu, "POST", f"/checkout/sessions/{session_id}/pay", {"method": "card"})
        if response.status_code == 200:
            won.append("pay")

    threads = [threading.Thread(target=expire), threading.Thread(target=pay)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return won


def test_expire_and_pay_at_the_same_moment_never_both_win(
    emu: Any, client: stripe.StripeClient, price: stripe.Price
) -> None:
    for _ in range(30):
        session = client.v1.checkout.sessions.create(params=session_params(price.id))
        won = race_expire_and_pay(emu, client, session.id)
        assert len(won) == 1, won
        final = client.v1.checkout.sessions.retrieve(session.id)
        if won == ["expire"]:
            assert final.status == "expired" and final.payment_intent is None
        else:
            assert final.status == "complete" and final.payment_status == "paid"
            assert client.v1.charges.list(params={"payment_intent": final.payment_intent}).data
    types = event_types(client)
    assert len(types) == 30
    assert len(client.v1.charges.list(params={"limit": 100}).data) == types.count(
        "checkout.session.completed"
    )
