"""The emulator's dashboard page: it lists payments, and its buttons post and come back."""

from __future__ import annotations

from html import escape
from typing import Any

import pytest
import requests
import stripe

from .conftest import session_params
from .html_forms import forms_of, post


def dashboard(emu: Any) -> requests.Response:
    response = requests.get(f"{emu.base_url}/_emulator/dashboard", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    return response


def forms(emu: Any) -> dict[str, dict[str, Any]]:
    return forms_of(dashboard(emu).text)


def submit(emu: Any, form: dict[str, Any], **typed: str) -> requests.Response:
    """Post a form as the browser would, and follow the redirect back."""
    response = post(emu.base_url, form, **typed)
    if response.status_code == 303:
        assert response.headers["Location"].startswith("/_emulator/dashboard?notice=")
        return requests.get(f"{emu.base_url}{response.headers['Location']}", timeout=5)
    return response


def test_empty_dashboard(emu: Any) -> None:
    page = dashboard(emu).text
    assert "Emulated Stripe Dashboard" in page and 'id="empty"' in page


def test_dashboard_lists_sessions_newest_first_with_money(
    emu: Any, client: stripe.StripeClient, price: stripe.Price, paid_intent: stripe.PaymentIntent
) -> None:
    client.v1.refunds.create(params={"payment_intent": paid_intent.id, "amount": 1000})
    newer = client.v1.checkout.sessions.create(params=session_params(price.id))
    page = dashboard(emu).text
    paid_session = client.v1.checkout.sessions.list(params={"payment_intent": paid_intent.id}).data[0]
    assert page.index(f'id="row-{newer.id}"') < page.index(f'id="row-{paid_session.id}"')
    assert "$49.99" in page and "refunded $10.00" in page and "order 42" in page
    assert f'href="/pay/{newer.id}"' in page and f'id="expire-{newer.id}"' in page


def test_refund_in_full_then_part_buttons(
    emu: Any, client: stripe.StripeClient, paid_intent: stripe.PaymentIntent, price: stripe.Price
) -> None:
    page = submit(emu, forms(emu)[f"refund-part-{paid_intent.id}"], amount="15", reason="duplicate")
    assert page.status_code == 200 and 'id="notice"' in page.text
    (refund,) = client.v1.refunds.list().data
    assert (refund.amount, refund.reason, refund.status) == (1500, "duplicate", "succeeded")
    assert "refunded $15.00" in page.text and f'id="refund-{refund.id}"' in page.text

    page = submit(emu, forms(emu)[f"refund-full-{paid_intent.id}"])
    assert client.v1.charges.retrieve(paid_intent.latest_charge).refunded is True
    assert "fully refunded" in page.text
    assert f"refund-full-{paid_intent.id}" not in forms(emu)


def test_a_refused_button_shows_the_error_on_the_page(emu: Any, paid_intent: stripe.PaymentIntent) -> None:
    form = forms(emu)[f"refund-part-{paid_intent.id}"]
    page = submit(emu, form, amount="50.00")
    assert page.status_code == 400
    assert 'id="error"' in page.text and "is greater than unrefunded amount on charge" in page.text
    assert "($50.00)" in page.text and "($49.99)" in page.text


def paid_intent_in(emu: Any, client: stripe.StripeClient, currency: str, unit_amount: int) -> str:
    price = client.v1.prices.create(
        params={"product_data": {"name": "Tea"}, "unit_amount": unit_amount, "currency": currency}
    )
    session = client.v1.checkout.sessions.create(params=session_params(price.id))
    return emu.pay(session.id)["session"]["payment_intent"]


def test_amount_fields_say_the_currency_and_take_its_major_unit(
    emu: Any, client: stripe.StripeClient, paid_intent: stripe.PaymentIntent
) -> None:
    yen = paid_intent_in(emu, client, "jpy", 5000)
    dinar = paid_intent_in(emu, client, "kwd", 12500)
    html = dashboard(emu).text
    assert 'placeholder="amount in USD, such as 12.50"' in html
    assert 'placeholder="amount in JPY, such as 500"' in html
    assert 'placeholder="amount in KWD, such as 12.500"' in html
    assert 'type="number"' not in html and "minor units" not in html

    submit(emu, forms(emu)[f"refund-part-{paid_intent.id}"], amount="12.5")
    submit(emu, forms(emu)[f"refund-part-{yen}"], amount="500")
    submit(emu, forms(emu)[f"refund-part-{dinar}"], amount="1.255")
    refunds = {r.payment_intent: r.amount for r in client.v1.refunds.list().data}
    assert refunds == {paid_intent.id: 1250, yen: 500, dinar: 1255}


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("12.505", "USD amounts have at most 2 decimals; 12.505 has 3."),
        ("-5", "The amount must be more than zero; -5 is negative."),
        ("0", "The amount must be more than zero."),
        ("0.00", "The amount must be more than zero."),
        ("1,50", "1,50 is not an amount. Type the amount in USD, such as 12.50."),
        ("1250 cents", "is not an amount"),
        ("1e3", "is not an amount"),
        ("49.991", "at most 2 decimals"),
        ("49.99.1", "is not an amount"),
    ],
)
def test_typed_amounts_that_are_refused(
    emu: Any, client: stripe.StripeClient, paid_intent: stripe.PaymentIntent, typed: str, message: str
) -> None:
    page = submit(emu, forms(emu)[f"refund-part-{paid_intent.id}"], amount=typed)
    assert page.status_code == 400 and 'id="error"' in page.text
    assert escape(message) in page.text
    assert client.v1.refunds.list().data == []


def test_zero_decimal_currencies_refuse_a_decimal_point(emu: Any, client: stripe.StripeClient) -> None:
    yen = paid_intent_in(emu, client, "jpy", 5000)
    for typed in ("500.5", "500.00", "500."):
        page = submit(emu, forms(emu)[f"refund-part-{yen}"], amount=typed)
        assert page.status_code == 400
        assert "JPY has no minor unit: type a whole number without a decimal point." in page.text
    page = submit(emu, forms(emu)[f"refund-part-{yen}"], amount="5001")
    assert (
        page.status_code == 400
        and "(¥5,001) is greater than unrefunded amount on charge (¥5,000)" in page.text
    )
    assert client.v1.refunds.list().data == []


def test_three_decimal_currencies_take_up_to_three_decimals(emu: Any, client: stripe.StripeClient) -> None:
    dinar = paid_intent_in(emu, client, "kwd", 12500)
    page = submit(emu, forms(emu)[f"refund-part-{dinar}"], amount="1.2505")
    assert page.status_code == 400 and "KWD amounts have at most 3 decimals; 1.2505 has 4." in page.text
    page = submit(emu, forms(emu)[f"refund-part-{dinar}"], amount="2")
    assert page.status_code == 200
    (refund,) = client.v1.refunds.list().data
    assert refund.amount == 2000 and "refunded 2.000 KWD" in page.text


def test_dispute_form_takes_an_optional_typed_amount(
    emu: Any, client: stripe.StripeClient, paid_intent: stripe.PaymentIntent
) -> None:
    refused = submit(emu, forms(emu)[f"dispute-{paid_intent.id}"], amount="49.999")
    assert refused.status_code == 400 and "at most 2 decimals" in refused.text
    too_much = submit(emu, forms(emu)[f"dispute-{paid_intent.id}"], amount="50")
    assert too_much.status_code == 400
    assert escape("at most the charge's unrefunded amount ($49.99)") in too_much.text
    assert client.v1.disputes.list().data == []
    submit(emu, forms(emu)[f"dispute-{paid_intent.id}"], amount="20.05")
    (dispute,) = client.v1.disputes.list().data
    assert dispute.amount == 2005


def test_settle_pending_refund_buttons(
    emu: Any, client: stripe.StripeClient, paid_intent: stripe.PaymentIntent
) -> None:
    emu.configure(refund_mode="pending")
    first = client.v1.refunds.create(params={"payment_intent": paid_intent.id, "amount": 100})
    second = client.v1.refunds.create(params={"payment_intent": paid_intent.id, "amount": 200})
    submit(emu, forms(emu)[f"settle-ok-{first.id}"])
    submit(emu, forms(emu)[f"settle-fail-{second.id}"])
    assert client.v1.refunds.retrieve(first.id).status == "succeeded"
    assert client.v1.refunds.retrieve(second.id).status == "failed"
    assert client.v1.charges.retrieve(paid_intent.latest_charge).amount_refunded == 100
    remaining = forms(emu)
    assert f"settle-ok-{first.id}" not in remaining and f"settle-fail-{second.id}" not in remaining


def test_dispute_buttons_open_review_and_close(
    emu: Any, client: stripe.StripeClient, paid_intent: stripe.PaymentIntent, price: stripe.Price
) -> None:
    submit(emu, forms(emu)[f"dispute-{paid_intent.id}"])
    (dispute,) = client.v1.disputes.list().data
    assert (dispute.status, dispute.reason) == ("needs_response", "fraudulent")
    assert f"refund-full-{paid_intent.id}" in forms(emu)
    submit(emu, forms(emu)[f"review-{dispute.id}"])
    assert client.v1.disputes.retrieve(dispute.id).status == "under_review"
    page = submit(emu, forms(emu)[f"lost-{dispute.id}"])
    assert client.v1.disputes.retrieve(dispute.id).status == "lost"
    assert f'id="dispute-{dispute.id}"' in page.text and f"won-{dispute.id}" not in forms(emu)

    session = client.v1.checkout.sessions.create(params=session_params(price.id))
    intent_id = emu.pay(session.id)["session"]["payment_intent"]
    submit(emu, forms(emu)[f"dispute-{intent_id}"], reason="product_unacceptable")
    (won,) = client.v1.disputes.list(params={"payment_intent": intent_id}).data
    assert won.reason == "product_unacceptable"
    submit(emu, forms(emu)[f"won-{won.id}"])
    assert client.v1.disputes.retrieve(won.id).status == "won"


def test_expire_and_settle_buttons(emu: Any, client: stripe.StripeClient, price: stripe.Price) -> None:
    open_session = client.v1.checkout.sessions.create(params=session_params(price.id))
    delayed = client.v1.checkout.sessions.create(params=session_params(price.id))
    emu.pay(delayed.id, "delayed_success")
    submit(emu, forms(emu)[f"expire-{open_session.id}"])
    assert client.v1.checkout.sessions.retrieve(open_session.id).status == "expired"
    submit(emu, forms(emu)[f"settle-{delayed.id}"])
    assert client.v1.checkout.sessions.retrieve(delayed.id).payment_status == "paid"


def test_everything_shown_is_escaped(emu: Any, client: stripe.StripeClient, price: stripe.Price) -> None:
    hostile = '<script>alert("x")</script>'
    client.v1.checkout.sessions.create(params=session_params(price.id, metadata={"order_id": hostile}))
    page = requests.get(f"{emu.base_url}/_emulator/dashboard", params={"notice": hostile}, timeout=5).text
    assert hostile not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def test_json_control_calls_still_answer_json_with_a_form_content_type(
    emu: Any, paid_intent: stripe.PaymentIntent
) -> None:
    # curl -d without -H sends the form content type.
    response = requests.post(
        f"{emu.base_url}/_emulator/refunds",
        data=f'{{"payment_intent": "{paid_intent.id}"}}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=5,
    )
    assert response.status_code == 200 and response.json()["refund"]["amount"] == 4999


def test_dashboard_answers_only_get(emu: Any) -> None:
    response = requests.post(f"{emu.base_url}/_emulator/dashboard", json={}, timeout=5)
    assert response.status_code == 405
