"""Charges and refunds through stripe-python and the control API: amounts, refusals, events."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import stripe

from .conftest import SECRET, Receiver, control, event_types, session_params


def test_a_paid_intent_has_a_charge_carrying_its_metadata(
    client: stripe.StripeClient, paid_intent: stripe.PaymentIntent
) -> None:
    assert (paid_intent.status, paid_intent.amount, paid_intent.amount_received) == ("succeeded", 4999, 4999)
    assert paid_intent.currency == "usd" and paid_intent.metadata.to_dict() == {"order_id": "42"}
    charge = client.v1.charges.retrieve(paid_intent.latest_charge)
    assert charge.id.startswith("ch_") and charge.object == "charge"
    assert (charge.amount, charge.amount_captured, charge.amount_refunded) == (4999, 4999, 0)
    assert (charge.refunded, charge.disputed, charge.paid, charge.status) == (False, False, True, "succeeded")
    assert charge.payment_intent == paid_intent.id and charge.currency == "usd"
    assert charge.metadata.to_dict() == {"order_id": "42"}
    expanded = client.v1.payment_intents.retrieve(paid_intent.id, params={"expand": ["latest_charge"]})
    assert expanded.latest_charge.id == charge.id
    listed = client.v1.charges.list(params={"payment_intent": paid_intent.id}).data
    assert [c.id for c in listed] == [charge.id]


def test_a_delayed_payment_has_a_charge_only_once_it_succeeds(
    emu: Any, client: stripe.StripeClient, session: Any
) -> None:
    intent_id = emu.pay(session.id, "delayed_success")["session"]["payment_intent"]
    assert client.v1.payment_intents.retrieve(intent_id).latest_charge is None
    assert client.v1.charges.list().data == []
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": intent_id})
    assert "does not have a successful charge to refund" in info.value.user_message
    emu.settle(session.id)
    charge = client.v1.charges.retrieve(client.v1.payment_intents.retrieve(intent_id).latest_charge)
    assert (charge.amount, charge.payment_intent) == (4999, intent_id)
    assert charge.payment_method_details.type == "us_bank_account"


def test_full_refund_by_payment_intent(
    client: stripe.StripeClient, paid_intent: stripe.PaymentIntent
) -> None:
    refund = client.v1.refunds.create(params={"payment_intent": paid_intent.id, "metadata": {"by": "test"}})
    assert refund.id.startswith("re_") and refund.object == "refund"
    assert (refund.amount, refund.currency, refund.status) == (4999, "usd", "succeeded")
    assert (refund.charge, refund.payment_intent) == (paid_intent.latest_charge, paid_intent.id)
    assert refund.reason is None and refund.metadata.to_dict() == {"by": "test"}
    assert refund.created > 0 and "failure_reason" not in refund
    charge = client.v1.charges.retrieve(paid_intent.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (4999, True)
    assert client.v1.refunds.retrieve(refund.id).to_dict() == refund.to_dict()
    assert event_types(client)[-2:] == ["refund.created", "charge.refunded"]


def test_partial_refunds_by_charge_add_up(
    client: stripe.StripeClient, paid_intent: stripe.PaymentIntent
) -> None:
    charge_id = paid_intent.latest_charge
    first = client.v1.refunds.create(params={"charge": charge_id, "amount": 1000, "reason": "duplicate"})
    assert (first.amount, first.reason, first.payment_intent) == (1000, "duplicate", paid_intent.id)
    charge = client.v1.charges.retrieve(charge_id)
    assert (charge.amount_refunded, charge.refunded) == (1000, False)
    rest = client.v1.refunds.create(params={"payment_intent": paid_intent.id})
    assert rest.amount == 3999
    charge = client.v1.charges.retrieve(charge_id)
    assert (charge.amount_refunded, charge.refunded) == (4999, True)


def test_list_refunds_filters_and_paginates(
    client: stripe.StripeClient, paid_intent: stripe.PaymentIntent, price: stripe.Price, emu: Any
) -> None:
    ids = [
        client.v1.refunds.create(params={"payment_intent": paid_intent.id, "amount": 100}).id
        for _ in range(3)
    ]
    other = client.v1.checkout.sessions.create(params=session_params(price.id))
    other_intent = emu.pay(other.id)["session"]["payment_intent"]
    other_refund = client.v1.refunds.create(params={"payment_intent": other_intent}).id
    page = client.v1.refunds.list(params={"payment_intent": paid_intent.id, "limit": 2})
    assert [r.id for r in page.data] == ids[::-1][:2] and page.has_more
    assert [r.id for r in page.auto_paging_iter()] == ids[::-1]
    by_charge = client.v1.refunds.list(params={"charge": paid_intent.latest_charge}).data
    assert [r.id for r in by_charge] == ids[::-1]
    assert [r.id for r in client.v1.refunds.list().data] == [other_refund, *ids[::-1]]


@pytest.mark.parametrize(
    ("params", "code", "param", "status"),
    [
        ({"amount": "5000"}, "amount_too_large", "amount", 400),
        ({"amount": "0"}, "parameter_invalid_integer", "amount", 400),
        ({"reason": "changed_my_mind"}, None, "reason", 400),
        ({"payment_intent": "pi_unknown"}, "resource_missing", "payment_intent", 400),
        ({"payment_intent": None, "charge": "ch_unknown"}, "resource_missing", "charge", 400),
        ({"payment_intent": None}, "parameter_missing", "charge", 400),
        ({"charge": "CHARGE"}, None, "charge", 400),
        ({"refund_application_fee": "true"}, "parameter_unknown", "refund_application_fee", 400),
        ({"expand": ["balance_transaction"]}, None, "expand", 400),
    ],
)
def test_refund_refusals(
    client: stripe.StripeClient,
    paid_intent: stripe.PaymentIntent,
    params: dict[str, Any],
    code: str | None,
    param: str,
    status: int,
) -> None:
    merged = {"payment_intent": paid_intent.id, **params}
    merged = {
        k: (paid_intent.latest_charge if v == "CHARGE" else v) for k, v in merged.items() if v is not None
    }
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params=merged)
    assert (info.value.http_status, info.value.code, info.value.param) == (status, code, param)
    assert client.v1.refunds.list().data == []
    assert client.v1.charges.retrieve(paid_intent.latest_charge).amount_refunded == 0


def test_amount_above_what_remains_names_both_amounts(
    client: stripe.StripeClient, paid_intent: stripe.PaymentIntent
) -> None:
    client.v1.refunds.create(params={"payment_intent": paid_intent.id, "amount": 1000})
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": paid_intent.id, "amount": 4000})
    assert info.value.code == "amount_too_large"
    assert info.value.user_message == (
        "Refund amount ($40.00) is greater than unrefunded amount on charge ($39.99)"
    )


def test_a_fully_refunded_charge_is_refused(
    client: stripe.StripeClient, paid_intent: stripe.PaymentIntent
) -> None:
    client.v1.refunds.create(params={"payment_intent": paid_intent.id})
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": paid_intent.id, "amount": 1})
    assert info.value.code == "charge_already_refunded"
    assert info.value.user_message == f"Charge {paid_intent.latest_charge} has already been refunded."
    assert len(client.v1.refunds.list().data) == 1


def test_an_unpaid_intent_is_refused(emu: Any, client: stripe.StripeClient, session: Any) -> None:
    intent_id = emu.pay(session.id, "delayed_failure")["session"]["payment_intent"]
    emu.settle(session.id)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": intent_id})
    assert info.value.param == "payment_intent"
    assert (
        info.value.user_message
        == f"This PaymentIntent ({intent_id}) does not have a successful charge to refund."
    )


def test_idempotent_refund_create_replays_the_same_refund(
    client: stripe.StripeClient, paid_intent: stripe.PaymentIntent
) -> None:
    params = {"payment_intent": paid_intent.id, "amount": 500, "reason": "requested_by_customer"}
    first = client.v1.refunds.create(params=params, options={"idempotency_key": "refund-order-42"})
    second = client.v1.refunds.create(params=params, options={"idempotency_key": "refund-order-42"})
    assert second.id == first.id
    assert second.last_response.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert len(client.v1.refunds.list().data) == 1
    assert client.v1.charges.retrieve(paid_intent.latest_charge).amount_refunded == 500
    created = client.v1.events.list(params={"type": "refund.created"}).data
    assert [e.request.idempotency_key for e in created] == ["refund-order-42"]
    assert created[0].request.id == first.last_response.request_id
    with pytest.raises(stripe.IdempotencyError):
        client.v1.refunds.create(
            params={**params, "amount": 501}, options={"idempotency_key": "refund-order-42"}
        )


def test_two_refunds_of_the_rest_at_once_make_one_refund(
    client: stripe.StripeClient, paid_intent: stripe.PaymentIntent
) -> None:
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def refund_the_rest() -> None:
        start.wait(5)
        try:
            client.v1.refunds.create(params={"payment_intent": paid_intent.id, "amount": 4999})
            outcomes.append("refunded")
        except stripe.InvalidRequestError as exc:
            outcomes.append(exc.code or "")

    threads = [threading.Thread(target=refund_the_rest) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(outcomes) == ["charge_already_refunded"] * 7 + ["refunded"]
    assert client.v1.charges.retrieve(paid_intent.latest_charge).amount_refunded == 4999


def test_pending_refund_counts_against_what_remains_then_succeeds(
    emu: Any, client: stripe.StripeClient, paid_intent: stripe.PaymentIntent
) -> None:
    emu.configure(refund_mode="pending")
    refund = client.v1.refunds.create(params={"payment_intent": paid_intent.id, "amount": 4000})
    assert refund.status == "pending"
    charge = client.v1.charges.retrieve(paid_intent.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (0, False)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": paid_intent.id, "amount": 1000})
    assert info.value.code == "amount_too_large"
    settled = control(emu, "POST", f"/refunds/{refund.id}/settle", {"outcome": "succeeded"})
    assert settled.status_code == 200 and settled.json()["refund"]["status"] == "succeeded"
    assert client.v1.refunds.retrieve(refund.id).status == "succeeded"
    assert client.v1.charges.retrieve(paid_intent.latest_charge).amount_refunded == 4000
    assert event_types(client)[-3:] == ["refund.created", "refund.updated", "charge.refunded"]
    again = control(emu, "POST", f"/refunds/{refund.id}/settle", {"outcome": "failed"})
    assert again.status_code == 409 and "only pending refunds settle" in again.json()["error"]["message"]


def test_pending_refund_that_fails_gives_the_amount_back(
    emu: Any, client: stripe.StripeClient, paid_intent: stripe.PaymentIntent
) -> None:
    emu.configure(refund_mode="pending")
    refund = client.v1.refunds.create(params={"payment_intent": paid_intent.id})
    settled = control(
        emu,
        "POST",
        f"/refunds/{refund.id}/settle",
        {"outcome": "failed", "failure_reason": "lost_or_stolen_card"},
    )
    failed = settled.json()["refund"]
    assert (failed["status"], failed["failure_reason"]) == ("failed", "lost_or_stolen_card")
    assert failed["failure_balance_transaction"].startswith("txn_")
    assert client.v1.refunds.retrieve(refund.id).failure_reason == "lost_or_stolen_card"
    charge = client.v1.charges.retrieve(paid_intent.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (0, False)
    assert event_types(client)[-3:] == ["refund.created", "refund.updated", "refund.failed"]
    emu.configure(refund_mode="succeeded")
    assert client.v1.refunds.create(params={"payment_intent": paid_intent.id}).amount == 4999


def test_canceled_refund_and_bad_settlements(
    emu: Any, client: stripe.StripeClient, paid_intent: stripe.PaymentIntent
) -> None:
    emu.configure(pending_next_refunds=1)
    refund = client.v1.refunds.create(params={"payment_intent": paid_intent.id, "amount": 100})
    assert refund.status == "pending" and emu.get_config()["pending_next_refunds"] == 0
    assert control(emu, "POST", f"/refunds/{refund.id}/settle", {}).status_code == 400
    assert control(emu, "POST", f"/refunds/{refund.id}/settle", {"outcome": "maybe"}).status_code == 400
    bad_reason = control(
        emu, "POST", f"/refunds/{refund.id}/settle", {"outcome": "succeeded", "failure_reason": "x"}
    )
    assert bad_reason.status_code == 400
    assert control(emu, "POST", "/refunds/re_nope/settle", {"outcome": "failed"}).status_code == 404
    canceled = control(emu, "POST", f"/refunds/{refund.id}/settle", {"outcome": "canceled"})
    assert canceled.json()["refund"]["status"] == "canceled"
    assert client.v1.refunds.create(params={"payment_intent": paid_intent.id}).amount == 4999


def test_fail_next_refunds_fails_after_the_create(
    emu: Any, client: stripe.StripeClient, paid_intent: stripe.PaymentIntent
) -> None:
    emu.configure(fail_next_refunds=1)
    refund = client.v1.refunds.create(params={"payment_intent": paid_intent.id, "amount": 1500})
    assert refund.status == "pending"
    assert client.v1.refunds.retrieve(refund.id).status == "failed"
    assert emu.get_config()["fail_next_refunds"] == 0
    assert event_types(client)[-3:] == ["refund.created", "refund.updated", "refund.failed"]
    created, *later = client.v1.events.list(params={"type": "refund.*"}).data[::-1]
    assert created.request.id == refund.last_response.request_id
    assert [e.request.id for e in later] == [None, None]
    assert client.v1.charges.retrieve(paid_intent.latest_charge).amount_refunded == 0
    assert client.v1.refunds.create(params={"payment_intent": paid_intent.id}).status == "succeeded"


def test_a_refused_refund_does_not_use_up_the_next_refund_knobs(
    emu: Any, client: stripe.StripeClient, paid_intent: stripe.PaymentIntent
) -> None:
    emu.configure(fail_next_refunds=1)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(params={"payment_intent": paid_intent.id, "amount": 9999})
    assert emu.get_config()["fail_next_refunds"] == 1


def test_dashboard_refund_has_no_request_and_emits_the_same_events(
    emu: Any, client: stripe.StripeClient, paid_intent: stripe.PaymentIntent
) -> None:
    response = control(
        emu, "POST", "/refunds", {"payment_intent": paid_intent.id, "amount": 999, "reason": "fraudulent"}
    )
    assert response.status_code == 200
    refund = response.json()["refund"]
    assert (refund["amount"], refund["reason"], refund["status"]) == (999, "fraudulent", "succeeded")
    created, refunded = client.v1.events.list(params={"types": ["refund.created", "charge.refunded"]}).data[
        ::-1
    ]
    assert created.request.id is None and created.request.idempotency_key is None
    assert created.data.object.id == refund["id"] and created.data.object.payment_intent == paid_intent.id
    assert (refunded.data.object.amount_refunded, refunded.data.object.payment_intent) == (
        999,
        paid_intent.id,
    )
    assert refunded.data.object.metadata.to_dict() == {"order_id": "42"}
    assert "metadata" in created.data.object and created.data.object.metadata.to_dict() == {}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"payment_intent": "pi_nope"}, 400),
        ({"amount": -1, "payment_intent": "PI"}, 400),
        ({"amount": "ten", "payment_intent": "PI"}, 400),
        ({"payment_intent": "PI", "colour": "red"}, 400),
        ({"payment_intent": "PI", "reason": "bored"}, 400),
        ({}, 400),
    ],
)
def test_dashboard_refund_refusals(
    emu: Any, paid_intent: stripe.PaymentIntent, body: dict[str, Any], status: int
) -> None:
    body = {k: (paid_intent.id if v == "PI" else v) for k, v in body.items()}
    response = control(emu, "POST", "/refunds", body)
    assert response.status_code == status
    assert response.json()["error"]["message"]


def test_refund_events_are_signed_and_delivered_with_the_knobs(
    emu: Any, receiver: Receiver, client: stripe.StripeClient, paid_intent: stripe.PaymentIntent
) -> None:
    assert emu.wait_for_idle(timeout=10)
    receiver.requests.clear()
    emu.configure(duplicates=2)
    refund = client.v1.refunds.create(params={"payment_intent": paid_intent.id, "amount": 1234})
    assert emu.wait_for_idle(timeout=10)
    events = [
        stripe.Webhook.construct_event(r["body"], r["headers"]["Stripe-Signature"], SECRET)
        for r in receiver.requests
    ]
    assert sorted(e.type for e in events) == ["charge.refunded"] * 2 + ["refund.created"] * 2
    by_type = {e.type: e for e in events}
    assert by_type["refund.created"].data.object.id == refund.id
    assert by_type["charge.refunded"].data.object.amount_refunded == 1234

    receiver.requests.clear()
    emu.configure(duplicates=1, drop_next=1)
    client.v1.refunds.create(params={"payment_intent": paid_intent.id, "amount": 1})
    assert emu.wait_for_idle(timeout=10)
    assert [e["type"] for e in receiver.events()] == ["charge.refunded"]
    undelivered = client.v1.events.list(params={"delivery_success": False}).data
    assert [e.type for e in undelivered] == ["refund.created"]

    receiver.requests.clear()
    emu.configure(webhook_timing="hold")
    client.v1.refunds.create(params={"payment_intent": paid_intent.id, "amount": 1})
    assert emu.wait_for_idle(timeout=1) and receiver.requests == []
    assert emu.release_webhooks() == 2
    assert emu.wait_for_idle(timeout=10)
    assert sorted(e["type"] for e in receiver.events()) == ["charge.refunded", "refund.created"]


def test_before_redirect_timing_delivers_refund_events_before_the_api_answers(
    emu: Any, receiver: Receiver, client: stripe.StripeClient, paid_intent: stripe.PaymentIntent
) -> None:
    assert emu.wait_for_idle(timeout=10)
    receiver.timeline.clear()
    emu.configure(webhook_timing="before_redirect")
    client.v1.refunds.create(params={"payment_intent": paid_intent.id})
    receiver.timeline.append("api answered")
    assert receiver.timeline == ["webhook:refund.created", "webhook:charge.refunded", "api answered"]
