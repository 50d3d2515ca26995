"""The hosted payment page of a cart, driven through its own HTML forms."""

from __future__ import annotations

from typing import Any

import requests
import stripe

from .conftest import session_params
from .html_forms import forms_of, post
from .test_cart import new_code, new_price, new_rate


def page(session: Any) -> str:
    response = requests.get(session.url, timeout=5)
    assert response.status_code == 200
    return response.text


def cart(client: stripe.StripeClient, **extra: Any) -> stripe.checkout.Session:
    mug, tea = new_price(client, "Mug", 1250), new_price(client, "Tea", 899)
    return client.v1.checkout.sessions.create(
        params=session_params(
            mug, line_items=[{"price": mug, "quantity": 2}, {"price": tea, "quantity": 3}], **extra
        )
    )


def test_the_code_field_is_there_only_when_the_session_takes_codes(client: stripe.StripeClient) -> None:
    assert "promotion-code-form" not in forms_of(page(cart(client)))
    assert "promotion-code-form" in forms_of(page(cart(client, allow_promotion_codes=True)))


def test_applying_a_code_on_the_page_discounts_the_session(emu: Any, client: stripe.StripeClient) -> None:
    code = new_code(emu, code="SAVE10", percent_off=10)
    session = cart(client, allow_promotion_codes=True)
    form = forms_of(page(session))["promotion-code-form"]
    applied = post(emu.base_url, form, promotion_code="save10")
    assert applied.status_code == 303 and applied.headers["Location"] == f"/pay/{session.id}"

    html = page(session)
    assert "Discount (SAVE10)" in html and "&minus;€5.20" in html
    assert 'id="amount-total">€46.77<' in html
    discounted = client.v1.checkout.sessions.retrieve(session.id)
    assert discounted.discounts[0].promotion_code == code["id"]
    assert (discounted.total_details.amount_discount, discounted.amount_total) == (520, 4677)

    paid = post(emu.base_url, forms_of(html)["pay"], method="card")
    assert paid.status_code == 303
    intent = client.v1.payment_intents.retrieve(
        client.v1.checkout.sessions.retrieve(session.id).payment_intent
    )
    assert intent.amount == 4677


def test_unknown_and_inactive_codes_are_refused_on_the_page(emu: Any, client: stripe.StripeClient) -> None:
    new_code(emu, code="OLD", percent_off=50, active=False)
    session = cart(client, allow_promotion_codes=True)
    form = forms_of(page(session))["promotion-code-form"]
    for typed, message in (("NOPE", "This code is invalid."), ("OLD", "This code is no longer active.")):
        refused = post(emu.base_url, form, promotion_code=typed)
        assert refused.status_code == 400
        assert f'<div class="error" id="error">{message}</div>' in refused.text
        assert f'value="{typed}"' in refused.text and 'id="pay-card"' in refused.text
    unchanged = client.v1.checkout.sessions.retrieve(session.id)
    assert (unchanged.discounts, unchanged.amount_total) == ([], 5197)


def test_the_page_asks_for_an_address_in_the_allowed_countries_and_a_rate(
    emu: Any, client: stripe.StripeClient
) -> None:
    standard, express = new_rate(client, "Standard", 490), new_rate(client, "Express", 990)
    session = cart(
        client,
        shipping_address_collection={"allowed_countries": ["FR", "DE"]},
        shipping_options=[{"shipping_rate": standard}, {"shipping_rate": express}],
        automatic_tax={"enabled": True},
    )
    html = page(session)
    assert '<option value="FR" selected>FR</option><option value="DE">DE</option></select>' in html
    assert "Standard &middot; €4.90" in html and "Express &middot; €9.90" in html
    assert "Shipping: Standard" in html and "added when you pay" in html
    form = forms_of(html)["pay"]
    assert form["fields"]["shipping_rate"] == standard

    typed = {
        "name": "Marie Curie",
        "line1": "1 Rue de la Paix",
        "line2": "Apt 4",
        "city": "Paris",
        "postal_code": "75002",
        "country": "FR",
        "shipping_rate": express,
    }
    paid = post(emu.base_url, form, method="card", **typed)
    assert paid.status_code == 303 and paid.headers["Location"].startswith("http://shop.test/success")

    done = client.v1.checkout.sessions.retrieve(session.id)
    assert done.collected_information.shipping_details.to_dict() == {
        "name": "Marie Curie",
        "address": {
            "city": "Paris",
            "country": "FR",
            "line1": "1 Rue de la Paix",
            "line2": "Apt 4",
            "postal_code": "75002",
            "state": None,
        },
    }
    assert done.shipping_cost.shipping_rate == express
    # French tax, 20 % of 5197 + 990.
    assert done.total_details.to_dict() == {"amount_discount": 0, "amount_shipping": 990, "amount_tax": 1237}
    assert done.amount_total == 5197 + 990 + 1237


def test_a_missing_address_field_shows_the_page_again_with_what_was_typed(
    emu: Any, client: stripe.StripeClient
) -> None:
    session = cart(client, shipping_address_collection={"allowed_countries": ["DE"]})
    form = forms_of(page(session))["pay"]
    refused = post(
        emu.base_url, form, method="card", name="Max", line1="Hauptstr. 1", city="  ", postal_code="10115"
    )
    assert refused.status_code == 400
    assert "Enter the city of the shipping address." in refused.text
    assert 'value="Hauptstr. 1"' in refused.text and 'value="Max"' in refused.text
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"

    elsewhere = post(emu.base_url, form, method="card", country="US")
    assert elsewhere.status_code == 400 and "This shop ships to DE only, not to US." in elsewhere.text


def test_a_paid_cart_page_is_closed(emu: Any, client: stripe.StripeClient) -> None:
    session = cart(client, allow_promotion_codes=True)
    form = forms_of(page(session))["promotion-code-form"]
    emu.pay(session.id)
    late = post(emu.base_url, form, promotion_code="SAVE10")
    assert late.status_code == 409 and "Already paid" in late.text
