"""Disputes through the control API, read through stripe-python, with their events."""

from __future__ import annotations

import time
from typing import Any

import pytest
import stripe

from .conftest import SECRET, Receiver, control, event_types


def open_dispute(emu: Any, **body: Any) -> dict[str, Any]:
    response = control(emu, "POST", "/disputes", body)
    assert response.status_code == 200, response.text
    return response.json()["dispute"]


def test_open_dispute_defaults(
    emu: Any, client: stripe.StripeClient, paid_intent: stripe.PaymentIntent
) -> None:
    before = int(time.time())
    opened = open_dispute(emu, payment_intent=paid_intent.id)
    dispute = client.v1.disputes.retrieve(opened["id"])
    assert dispute.id.startswith("dp_") and dispute.object == "dispute"
    assert (dispute.status, dispute.reason, dispute.amount, dispute.currency) == (
        "needs_response",
        "fraudulent",
        4999,
        "usd",
    )
    assert (dispute.charge, dispute.payment_intent) == (paid_intent.latest_charge, paid_intent.id)
    assert before + 7 * 86400 <= dispute.evidence_details.due_by <= int(time.time()) + 7 * 86400
    assert dispute.is_charge_refundable is False and dispute.metadata.to_dict() == {}
    assert client.v1.charges.retrieve(paid_intent.latest_charge).disputed is True
    assert event_types(client)[-1] == "charge.dispute.created"
    listed = client.v1.disputes.list(params={"payment_intent": paid_intent.id}).data
    assert [d.id for d in listed] == [dispute.id]
    assert [d.id for d in client.v1.disputes.list(params={"charge": "ch_other"}).data] == []


def test_dispute_updated_then_lost(
    emu: Any, client: stripe.StripeClient, paid_intent: stripe.PaymentIntent
) -> None:
    dispute = open_dispute(emu, charge=paid_intent.latest_charge, reason="product_not_received", amount=2000)
    assert (dispute["reason"], dispute["amount"]) == ("product_not_received", 2000)
    updated = control(emu, "POST", f"/disputes/{dispute['id']}/update", {"status": "under_review"})
    assert updated.json()["dispute"]["status"] == "under_review"
    closed = control(emu, "POST", f"/disputes/{dispute['id']}/close", {"outcome": "lost"})
    assert closed.json()["dispute"]["status"] == "lost"
    assert client.v1.disputes.retrieve(dispute["id"]).status == "lost"
    assert event_types(client)[-3:] == [
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
    ]
    again = control(emu, "POST", f"/disputes/{dispute['id']}/close", {"outcome": "won"})
    assert again.status_code == 409 and "is closed" in again.json()["error"]["message"]
    assert (
        control(emu, "POST", f"/disputes/{dispute['id']}/update", {"status": "under_review"}).status_code
        == 409
    )


def test_dispute_won(emu: Any, client: stripe.StripeClient, paid_intent: stripe.PaymentIntent) -> None:
    dispute = open_dispute(emu, payment_intent=paid_intent.id)
    closed = control(emu, "POST", f"/disputes/{dispute['id']}/close", {"outcome": "won"})
    assert closed.json()["dispute"]["status"] == "won"
    (event,) = client.v1.events.list(params={"type": "charge.dispute.closed"}).data
    assert (event.data.object.status, event.data.object.payment_intent) == ("won", paid_intent.id)
    assert event.data.object.charge == paid_intent.latest_charge


def test_inquiry_closes_as_warning_closed_and_stays_refundable(
    emu: Any, client: stripe.StripeClient, paid_intent: stripe.PaymentIntent
) -> None:
    inquiry = open_dispute(
        emu, payment_intent=paid_intent.id, status="warning_needs_response", reason="general"
    )
    assert inquiry["is_charge_refundable"] is True
    refused = control(emu, "POST", f"/disputes/{inquiry['id']}/close", {"outcome": "won"})
    assert refused.status_code == 400 and "warning_closed" in refused.json()["error"]["message"]
    assert (
        client.v1.refunds.create(params={"payment_intent": paid_intent.id, "amount": 100}).status
        == "succeeded"
    )
    closed = control(emu, "POST", f"/disputes/{inquiry['id']}/close", {"outcome": "warning_closed"})
    assert closed.json()["dispute"]["status"] == "warning_closed"


def test_a_charged_back_payment_cannot_be_refunded(
    client: stripe.StripeClient, emu: Any, paid_intent: stripe.PaymentIntent
) -> None:
    open_dispute(emu, payment_intent=paid_intent.id)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": paid_intent.id})
    assert info.value.code == "charge_disputed"
    assert (
        info.value.user_message
        == f"Charge {paid_intent.latest_charge} has been charged back; cannot issue a refund."
    )


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"payment_intent": "pi_nope"}, 400),
        ({"payment_intent": "PI", "reason": "bored"}, 400),
        ({"payment_intent": "PI", "status": "won"}, 400),
        ({"payment_intent": "PI", "amount": 5000}, 400),
        ({"payment_intent": "PI", "amount": 0}, 400),
        ({}, 400),
    ],
)
def test_open_dispute_refusals(
    emu: Any, paid_intent: stripe.PaymentIntent, body: dict[str, Any], status: int
) -> None:
    body = {k: (paid_intent.id if v == "PI" else v) for k, v in body.items()}
    response = control(emu, "POST", "/disputes", body)
    assert response.status_code == status and response.json()["error"]["message"]


def test_one_dispute_per_charge_and_none_on_a_refunded_one(
    emu: Any, client: stripe.StripeClient, paid_intent: stripe.PaymentIntent, price: stripe.Price
) -> None:
    first = open_dispute(emu, payment_intent=paid_intent.id)
    second = control(emu, "POST", "/disputes", {"payment_intent": paid_intent.id})
    assert second.status_code == 409 and first["id"] in second.json()["error"]["message"]

    from .conftest import session_params

    session = client.v1.checkout.sessions.create(params=session_params(price.id))
    intent_id = emu.pay(session.id)["session"]["payment_intent"]
    client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 4000})
    partial = open_dispute(emu, payment_intent=intent_id)
    assert partial["amount"] == 999
    emu.close_dispute(partial["id"], "won")

    other = client.v1.checkout.sessions.create(params=session_params(price.id))
    other_intent = emu.pay(other.id)["session"]["payment_intent"]
    client.v1.refunds.create(params={"payment_intent": other_intent})
    refused = control(emu, "POST", "/disputes", {"payment_intent": other_intent})
    assert refused.status_code == 409 and "fully refunded" in refused.json()["error"]["message"]


def test_bad_updates_and_closes(emu: Any, paid_intent: stripe.PaymentIntent) -> None:
    dispute = open_dispute(emu, payment_intent=paid_intent.id)
    assert control(emu, "POST", f"/disputes/{dispute['id']}/update", {"status": "won"}).status_code == 400
    assert control(emu, "POST", f"/disputes/{dispute['id']}/update", {}).status_code == 400
    assert control(emu, "POST", f"/disputes/{dispute['id']}/close", {"outcome": "draw"}).status_code == 400
    assert control(emu, "POST", "/disputes/dp_nope/close", {"outcome": "won"}).status_code == 404


def test_dispute_events_are_signed_and_delivered_with_the_knobs(
    emu: Any, receiver: Receiver, client: stripe.StripeClient, paid_intent: stripe.PaymentIntent
) -> None:
    assert emu.wait_for_idle(timeout=10)
    receiver.requests.clear()
    emu.configure(duplicates=2)
    dispute = open_dispute(emu, payment_intent=paid_intent.id)
    emu.update_dispute(dispute["id"], "under_review")
    emu.configure(duplicates=1, webhook_timing="hold")
    emu.close_dispute(dispute["id"], "lost")
    assert emu.wait_for_idle(timeout=10)
    assert [d["status"] for d in emu.deliveries()][-1] == "held"
    assert emu.release_webhooks() == 1
    assert emu.wait_for_idle(timeout=10)
    events = [
        stripe.Webhook.construct_event(r["body"], r["headers"]["Stripe-Signature"], SECRET)
        for r in receiver.requests
    ]
    assert sorted(e.type for e in events) == [
        "charge.dispute.closed",
        "charge.dispute.created",
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.updated",
    ]
    for event in events:
        assert (event.data.object.id, event.data.object.payment_intent) == (dispute["id"], paid_intent.id)
        assert event.data.object.charge == paid_intent.latest_charge
