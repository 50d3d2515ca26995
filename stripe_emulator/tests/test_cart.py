"""Carts through stripe-python: several prices, promotion codes, shipping rates, automatic tax, totals."""

from __future__ import annotations

import time
from typing import Any

import pytest
import stripe

from .conftest import Receiver, control, session_params

BERLIN = {
    "name": "Max Mustermann",
    "address": {"line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115", "country": "DE"},
}


def new_price(client: stripe.StripeClient, name: str, unit_amount: int, currency: str = "eur") -> str:
    return client.v1.prices.create(
        params={"product_data": {"name": name}, "unit_amount": unit_amount, "currency": currency}
    ).id


def new_rate(client: stripe.StripeClient, name: str, amount: int, currency: str = "eur") -> str:
    return client.v1.shipping_rates.create(
        params={
            "display_name": name,
            "type": "fixed_amount",
            "fixed_amount": {"amount": amount, "currency": currency},
        }
    ).id


def new_code(emu: Any, **body: Any) -> dict[str, Any]:
    response = control(emu, "POST", "/promotion_codes", body)
    assert response.status_code == 200, response.text
    return response.json()["promotion_code"]


def assert_adds_up(session: dict[str, Any]) -> None:
    details = session["total_details"]
    assert session["amount_total"] == (
        session["amount_subtotal"]
        - details["amount_discount"]
        + details["amount_shipping"]
        + details["amount_tax"]
    )


def test_a_cart_of_several_prices(client: stripe.StripeClient) -> None:
    mug, tea, card = (
        new_price(client, "Mug", 1250),
        new_price(client, "Tea", 899),
        new_price(client, "Card", 300),
    )
    session = client.v1.checkout.sessions.create(
        params=session_params(
            mug,
            line_items=[
                {"price": mug, "quantity": 2},
                {"price": tea, "quantity": 3},
                {"price": card, "quantity": 1},
            ],
        )
    )
    assert (session.currency, session.amount_subtotal, session.amount_total) == ("eur", 5497, 5497)
    assert session.total_details.to_dict() == {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}
    items = client.v1.checkout.sessions.line_items.list(session.id).data
    assert [(i.description, i.quantity, i.amount_subtotal) for i in items] == [
        ("Mug", 2, 2500),
        ("Tea", 3, 2697),
        ("Card", 1, 300),
    ]
    expanded = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items"]})
    assert [i.id for i in expanded.line_items.data] == [i.id for i in items]


def test_prices_in_different_currencies_are_refused(client: stripe.StripeClient) -> None:
    euros, dollars = new_price(client, "Mug", 1250), new_price(client, "Cap", 1500, "usd")
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.checkout.sessions.create(
            params=session_params(
                euros, line_items=[{"price": euros, "quantity": 1}, {"price": dollars, "quantity": 1}]
            )
        )
    assert (info.value.http_status, info.value.error.type) == (400, "invalid_request_error")
    assert info.value.param == "line_items[1][price]"


def test_up_to_100_line_items(client: stripe.StripeClient) -> None:
    price = new_price(client, "Pin", 100)
    hundred = client.v1.checkout.sessions.create(
        params=session_params(price, line_items=[{"price": price, "quantity": 1}] * 100)
    )
    assert hundred.amount_subtotal == 10000
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.checkout.sessions.create(
            params=session_params(price, line_items=[{"price": price, "quantity": 1}] * 101)
        )
    assert info.value.param == "line_items"


def test_shipping_rates_round_trip(client: stripe.StripeClient) -> None:
    rate = client.v1.shipping_rates.create(
        params={
            "display_name": "Standard",
            "type": "fixed_amount",
            "fixed_amount": {"amount": 490, "currency": "EUR"},
            "metadata": {"zone": "eu"},
        }
    )
    assert rate.id.startswith("shr_") and rate.object == "shipping_rate"
    assert (rate.display_name, rate.type, rate.active, rate.tax_behavior) == (
        "Standard",
        "fixed_amount",
        True,
        "unspecified",
    )
    assert rate.fixed_amount.to_dict() == {"amount": 490, "currency": "eur"}
    assert client.v1.shipping_rates.retrieve(rate.id).to_dict() == rate.to_dict()
    assert [r.id for r in client.v1.shipping_rates.list(params={"currency": "eur"}).data] == [rate.id]
    archived = client.v1.shipping_rates.update(rate.id, params={"active": False})
    assert archived.active is False
    assert client.v1.shipping_rates.list(params={"active": True}).data == []


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"display_name": None}, "display_name"),
        ({"fixed_amount": None}, "fixed_amount"),
        ({"fixed_amount": {"amount": 490}}, "fixed_amount[currency]"),
        ({"fixed_amount": {"amount": -1, "currency": "eur"}}, "fixed_amount[amount]"),
        ({"tax_behavior": "inclusive"}, "tax_behavior"),
        ({"delivery_estimate": {"minimum": {"unit": "day", "value": 1}}}, "delivery_estimate"),
    ],
)
def test_shipping_rate_validation(client: stripe.StripeClient, params: dict[str, Any], param: str) -> None:
    merged = {"display_name": "Standard", "fixed_amount": {"amount": 490, "currency": "eur"}}
    merged.update(params)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.shipping_rates.create(params={k: v for k, v in merged.items() if v is not None})
    assert info.value.param == param


def test_promotion_codes_are_created_through_the_control_api(emu: Any, client: stripe.StripeClient) -> None:
    save10 = new_code(emu, code="SAVE10", percent_off=10)
    five_off = new_code(emu, code="FIVEOFF", amount_off=500, currency="usd")
    old = new_code(emu, code="SUMMER", percent_off=20, active=False)
    assert save10["id"].startswith("promo_") and save10["object"] == "promotion_code"
    assert (save10["code"], save10["active"], old["active"]) == ("SAVE10", True, False)
    coupon = client.v1.coupons.retrieve(five_off["promotion"]["coupon"])
    assert (coupon.amount_off, coupon.currency, coupon.percent_off) == (500, "usd", None)
    assert client.v1.coupons.retrieve(save10["promotion"]["coupon"]).percent_off == 10

    (found,) = client.v1.promotion_codes.list(params={"code": "save10"}).data
    assert found.id == save10["id"] and found.promotion.coupon == save10["promotion"]["coupon"]
    assert [p.id for p in client.v1.promotion_codes.list(params={"active": False}).data] == [old["id"]]
    assert client.v1.promotion_codes.retrieve(five_off["id"]).code == "FIVEOFF"
    assert client.v1.promotion_codes.update(save10["id"], params={"active": False}).active is False


@pytest.mark.parametrize(
    "body",
    [
        {"code": "BOTH", "percent_off": 10, "amount_off": 500, "currency": "usd"},
        {"code": "NEITHER"},
        {"code": "NOCURRENCY", "amount_off": 500},
        {"code": "ZERO", "percent_off": 0},
        {"code": "TOOMUCH", "percent_off": 101},
        {"code": "has space", "percent_off": 10},
        {"code": "SAVE10", "percent_off": 10, "colour": "red"},
        {"percent_off": 10},
    ],
)
def test_bad_promotion_codes_are_refused(emu: Any, body: dict[str, Any]) -> None:
    response = control(emu, "POST", "/promotion_codes", body)
    assert response.status_code == 400 and response.json()["error"]["message"]


def test_an_active_code_exists_once(emu: Any) -> None:
    new_code(emu, code="SAVE10", percent_off=10)
    again = control(emu, "POST", "/promotion_codes", {"code": "save10", "percent_off": 15})
    assert again.status_code == 400 and "already exists" in again.json()["error"]["message"]
    new_code(emu, code="SAVE10", percent_off=15, active=False)


def cart_session(client: stripe.StripeClient, **extra: Any) -> stripe.checkout.Session:
    mug, tea = new_price(client, "Mug", 1250), new_price(client, "Tea", 899)
    return client.v1.checkout.sessions.create(
        params=session_params(
            mug, line_items=[{"price": mug, "quantity": 2}, {"price": tea, "quantity": 3}], **extra
        )
    )


def test_a_new_session_with_shipping_counts_the_first_rate_and_waits_for_the_address_for_tax(
    client: stripe.StripeClient,
) -> None:
    standard, express = new_rate(client, "Standard", 490), new_rate(client, "Express", 990)
    session = cart_session(
        client,
        allow_promotion_codes=True,
        shipping_address_collection={"allowed_countries": ["DE", "FR"]},
        shipping_options=[{"shipping_rate": standard}, {"shipping_rate": express}],
        automatic_tax={"enabled": True},
    )
    assert session.allow_promotion_codes is True
    assert session.shipping_address_collection.allowed_countries == ["DE", "FR"]
    assert [o.to_dict() for o in session.shipping_options] == [
        {"shipping_amount": 490, "shipping_rate": standard},
        {"shipping_amount": 990, "shipping_rate": express},
    ]
    assert session.shipping_cost.to_dict() == {
        "amount_subtotal": 490,
        "amount_tax": 0,
        "amount_total": 490,
        "shipping_rate": standard,
    }
    assert (session.automatic_tax.enabled, session.automatic_tax.status) == (True, "requires_location_inputs")
    assert (session.amount_subtotal, session.amount_total) == (5197, 5687)
    assert session.total_details.to_dict() == {"amount_discount": 0, "amount_shipping": 490, "amount_tax": 0}
    assert session.collected_information is None and session.discounts == []


def test_a_paid_cart_with_a_code_shipping_and_tax_adds_up_everywhere(
    emu: Any, receiver: Receiver, client: stripe.StripeClient
) -> None:
    standard, express = new_rate(client, "Standard", 490), new_rate(client, "Express", 990)
    code = new_code(emu, code="SAVE10", percent_off=10)
    session = cart_session(
        client,
        allow_promotion_codes=True,
        shipping_address_collection={"allowed_countries": ["DE", "FR"]},
        shipping_options=[{"shipping_rate": standard}, {"shipping_rate": express}],
        automatic_tax={"enabled": True},
    )
    body = {"method": "card", "promotion_code": "save10", "shipping": BERLIN, "shipping_rate": express}
    paid = control(emu, "POST", f"/checkout/sessions/{session.id}/pay", body).json()["session"]

    # 5197 - 520 (10 %, half up) + 990 shipping, and 19 % German tax on 5667.
    assert (paid["amount_subtotal"], paid["amount_total"]) == (5197, 6744)
    assert paid["total_details"] == {"amount_discount": 520, "amount_shipping": 990, "amount_tax": 1077}
    assert_adds_up(paid)
    assert paid["discounts"] == [{"coupon": None, "promotion_code": code["id"]}]
    assert paid["shipping_cost"] == {
        "amount_subtotal": 990,
        "amount_tax": 188,
        "amount_total": 1178,
        "shipping_rate": express,
    }
    assert paid["collected_information"]["shipping_details"] == {
        "name": "Max Mustermann",
        "address": {
            "city": "Berlin",
            "country": "DE",
            "line1": "Hauptstr. 1",
            "line2": None,
            "postal_code": "10115",
            "state": None,
        },
    }
    assert paid["automatic_tax"]["status"] == "complete"

    items = client.v1.checkout.sessions.line_items.list(session.id).data
    assert sum(i.amount_discount for i in items) == 520
    assert sum(i.amount_tax for i in items) + paid["shipping_cost"]["amount_tax"] == 1077
    for item in items:
        assert item.amount_total == item.amount_subtotal - item.amount_discount + item.amount_tax

    intent = client.v1.payment_intents.retrieve(paid["payment_intent"])
    assert intent.amount == intent.amount_received == 6744
    assert intent.shipping.name == "Max Mustermann" and intent.shipping.address.country == "DE"
    assert client.v1.charges.retrieve(intent.latest_charge).amount == 6744
    assert client.v1.promotion_codes.retrieve(code["id"]).times_redeemed == 1

    assert emu.wait_for_idle(timeout=10)
    (event,) = receiver.events()
    sent = event["data"]["object"]
    assert event["type"] == "checkout.session.completed"
    for field in ("amount_subtotal", "amount_total", "total_details", "shipping_cost", "discounts"):
        assert sent[field] == paid[field]
    fetched = client.v1.checkout.sessions.retrieve(session.id)
    assert fetched.to_dict() == client.v1.events.retrieve(event["id"]).data.object.to_dict()


def test_tax_without_an_address_is_the_billing_countrys(emu: Any, client: stripe.StripeClient) -> None:
    emu.configure(tax_rates={"US": 0.0725})
    price = new_price(client, "Cap", 2000, "usd")
    session = client.v1.checkout.sessions.create(
        params=session_params(price, automatic_tax={"enabled": True})
    )
    paid = emu.pay(session.id)["session"]
    assert paid["customer_details"]["address"]["country"] == "US"
    assert paid["total_details"]["amount_tax"] == 145
    assert paid["amount_total"] == 2145 and paid["automatic_tax"]["status"] == "complete"


def test_tax_is_rounded_half_up_once_on_the_whole_base(emu: Any, client: stripe.StripeClient) -> None:
    emu.configure(tax_rates={"DE": 0.19})
    price = new_price(client, "Sticker", 50)
    session = client.v1.checkout.sessions.create(
        params=session_params(
            price,
            line_items=[{"price": price, "quantity": 1}] * 3,
            shipping_address_collection={"allowed_countries": ["DE"]},
            automatic_tax={"enabled": True},
        )
    )
    paid = emu.pay(session.id, shipping=BERLIN)["session"]
    # 150 x 0.19 = 28.5, rounded once to 29, although each line's 9.5 would round to 10.
    assert paid["total_details"]["amount_tax"] == 29 and paid["amount_total"] == 179
    items = client.v1.checkout.sessions.line_items.list(session.id).data
    assert sorted(i.amount_tax for i in items) == [9, 10, 10]


def test_a_country_without_a_rate_has_no_tax(emu: Any, client: stripe.StripeClient) -> None:
    session = cart_session(
        client, shipping_address_collection={"allowed_countries": ["CH"]}, automatic_tax={"enabled": True}
    )
    paid = emu.pay(session.id)["session"]
    assert paid["collected_information"]["shipping_details"]["address"]["country"] == "CH"
    assert paid["total_details"]["amount_tax"] == 0 and paid["automatic_tax"]["status"] == "complete"


def test_amount_off_is_capped_at_the_subtotal_and_never_touches_shipping(
    emu: Any, client: stripe.StripeClient
) -> None:
    new_code(emu, code="FIVEOFF", amount_off=500, currency="usd")
    price = new_price(client, "Pencil", 300, "usd")
    rate = new_rate(client, "Post", 400, "usd")
    session = client.v1.checkout.sessions.create(
        params=session_params(price, allow_promotion_codes=True, shipping_options=[{"shipping_rate": rate}])
    )
    paid = emu.pay(session.id, promotion_code="FIVEOFF")["session"]
    assert paid["total_details"] == {"amount_discount": 300, "amount_shipping": 400, "amount_tax": 0}
    assert paid["amount_total"] == 400 and paid["payment_status"] == "paid"


def test_a_code_for_everything_leaves_nothing_to_pay(emu: Any, client: stripe.StripeClient) -> None:
    new_code(emu, code="FREE", percent_off=100)
    session = client.v1.checkout.sessions.create(
        params=session_params(new_price(client, "Sample", 900), allow_promotion_codes=True)
    )
    paid = emu.pay(session.id, promotion_code="FREE")["session"]
    assert (paid["amount_total"], paid["payment_status"], paid["payment_intent"]) == (
        0,
        "no_payment_required",
        None,
    )


@pytest.mark.parametrize(
    ("setup", "body", "message"),
    [
        ({"allow_promotion_codes": True}, {"promotion_code": "NOPE"}, "This code is invalid."),
        ({"allow_promotion_codes": True}, {"promotion_code": "OLD"}, "This code is no longer active."),
        ({"allow_promotion_codes": True}, {"promotion_code": "DOLLARS"}, "not valid for payments in EUR"),
        ({}, {"promotion_code": "SAVE10"}, "does not take promotion codes"),
        (
            {"shipping_address_collection": {"allowed_countries": ["DE"]}},
            {"shipping": {**BERLIN, "address": {**BERLIN["address"], "country": "US"}}},
            "ships to DE only, not to US",
        ),
        (
            {"shipping_address_collection": {"allowed_countries": ["DE"]}},
            {"shipping": {**BERLIN, "address": {**BERLIN["address"], "city": ""}}},
            "Enter the city of the shipping address.",
        ),
        ({}, {"shipping": BERLIN}, "does not collect a shipping address"),
        ({}, {"shipping_rate": "shr_nope"}, "not one of this Checkout Session's shipping options"),
    ],
)
def test_payments_with_a_bad_code_or_address_are_refused(
    emu: Any, client: stripe.StripeClient, setup: dict[str, Any], body: dict[str, Any], message: str
) -> None:
    new_code(emu, code="SAVE10", percent_off=10)
    new_code(emu, code="OLD", percent_off=10, active=False)
    new_code(emu, code="DOLLARS", amount_off=100, currency="usd")
    session = cart_session(client, **setup)
    refused = control(emu, "POST", f"/checkout/sessions/{session.id}/pay", body)
    assert refused.status_code == 400 and message in refused.json()["error"]["message"]
    after = client.v1.checkout.sessions.retrieve(session.id)
    assert (after.status, after.payment_intent) == ("open", None)


@pytest.mark.parametrize(
    ("extra", "param", "code"),
    [
        (
            {"shipping_options": [{"shipping_rate": "shr_nope"}]},
            "shipping_options[0][shipping_rate]",
            "resource_missing",
        ),
        ({"shipping_options": [{"shipping_rate": "USD_RATE"}]}, "shipping_options[0][shipping_rate]", None),
        (
            {"shipping_options": [{"shipping_rate_data": {"display_name": "x"}}]},
            "shipping_options[0][shipping_rate_data]",
            None,
        ),
        ({"shipping_options": [{"shipping_rate": "EUR_RATE"}] * 6}, "shipping_options", None),
        ({"shipping_address_collection": {"allowed_countries": ["de"]}}, None, None),
        ({"shipping_address_collection": {"countries": ["DE"]}}, None, "parameter_unknown"),
        ({"automatic_tax": {"liability": {"type": "self"}}}, "automatic_tax[liability]", "parameter_unknown"),
        ({"allow_promotion_codes": "maybe"}, "allow_promotion_codes", None),
        ({"discounts": [{"promotion_code": "promo_x"}]}, "discounts", "parameter_unknown"),
    ],
)
def test_cart_parameters_are_checked(
    client: stripe.StripeClient, extra: dict[str, Any], param: str | None, code: str | None
) -> None:
    rates = {
        "EUR_RATE": new_rate(client, "Standard", 490),
        "USD_RATE": new_rate(client, "Ground", 490, "usd"),
    }
    for option in extra.get("shipping_options", []):
        if option.get("shipping_rate") in rates:
            option["shipping_rate"] = rates[option["shipping_rate"]]
    price = new_price(client, "Mug", 1250)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.checkout.sessions.create(params=session_params(price, **extra))
    assert info.value.http_status == 400 and info.value.code == code
    if param is not None:
        assert info.value.param == param
    assert client.v1.checkout.sessions.list().data == []


def test_tax_rates_are_a_config_knob(emu: Any) -> None:
    assert control(emu, "GET", "/config").json()["tax_rates"]["DE"] == 0.19
    updated = control(emu, "POST", "/config", {"tax_rates": {"DE": 0.07, "US": 0.05}})
    assert updated.json()["tax_rates"] == {"DE": 0.07, "US": 0.05}
    for bad in ({"de": 0.19}, {"DE": 1.5}, {"DE": -0.1}, {"DE": "many"}, ["DE"]):
        response = control(emu, "POST", "/config", {"tax_rates": bad})
        assert response.status_code == 400 and "tax_rates" in response.json()["error"]["message"]


def test_tampered_totals_stay_through_payment_and_its_event(emu: Any, client: stripe.StripeClient) -> None:
    session = cart_session(client, automatic_tax={"enabled": True})
    tampered = control(
        emu, "POST", f"/checkout/sessions/{session.id}/tamper", {"total_details": {"amount_tax": 123}}
    )
    assert tampered.status_code == 200
    assert tampered.json()["session"]["total_details"]["amount_tax"] == 123
    paid = emu.pay(session.id)["session"]
    assert paid["total_details"]["amount_tax"] == 123 and paid["amount_total"] == 5197
    with pytest.raises(AssertionError):
        assert_adds_up(paid)
    (event,) = client.v1.events.list().data
    assert event.data.object.total_details.amount_tax == 123

    other = cart_session(client)
    control(emu, "POST", f"/checkout/sessions/{other.id}/tamper", {"amount_total": 100})
    assert client.v1.checkout.sessions.retrieve(other.id).amount_total == 100
    intent = client.v1.payment_intents.retrieve(emu.pay(other.id)["session"]["payment_intent"])
    assert intent.amount == 100


@pytest.mark.parametrize(
    "body",
    [{"amount_total": -1}, {"amount_total": "5"}, {"currency": "usd"}, {"total_details": {"amount_x": 1}}],
)
def test_tamper_takes_amounts_only(emu: Any, client: stripe.StripeClient, body: dict[str, Any]) -> None:
    session = cart_session(client)
    assert control(emu, "POST", f"/checkout/sessions/{session.id}/tamper", body).status_code == 400
    assert (
        control(emu, "POST", "/checkout/sessions/cs_test_nope/tamper", {"amount_total": 1}).status_code == 404
    )


def test_expires_at_thirty_minutes_ahead_is_the_minimum(client: stripe.StripeClient) -> None:
    price = new_price(client, "Mug", 1250)
    expires_at = int(time.time()) + 30 * 60
    session = client.v1.checkout.sessions.create(params=session_params(price, expires_at=expires_at))
    assert session.expires_at == expires_at
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.checkout.sessions.create(
            params=session_params(price, expires_at=int(time.time()) + 29 * 60)
        )
    assert info.value.param == "expires_at" and "at least 30 minutes" in info.value.user_message
