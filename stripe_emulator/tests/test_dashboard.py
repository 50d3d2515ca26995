"""The emulator's dashboard page: it lists payments, and its buttons post and come back."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import requests
import stripe

from .conftest import session_params


class Forms(HTMLParser):
    """Collect each form's action and the fields a browser would submit with its button."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, Any]] = {}
        self._current: dict[str, Any] | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = {"action": a["action"], "method": a["method"], "fields": {}}
            self.forms[a["id"]] = self._current
        elif self._current is not None and tag == "input" and a.get("type") == "hidden":
            self._current["fields"][a["name"]] = a["value"]
        elif self._current is not None and tag == "select":
            self._select = a["name"]
        elif self._current is not None and tag == "option" and self._select:
            fields = self._current["fields"]
            if self._select not in fields or "selected" in a:
                fields[self._select] = a["value"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None
        elif tag == "select":
            self._select = None


def dashboard(emu: Any) -> requests.Response:
    response = requests.get(f"{emu.base_url}/_emulator/dashboard", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    return response


def forms(emu: Any) -> dict[str, dict[str, Any]]:
    parser = Forms()
    parser.feed(dashboard(emu).text)
    return parser.forms


def submit(emu: Any, form: dict[str, Any], **typed: str) -> requests.Response:
    """Post a form as the browser would, and follow the redirect back."""
    assert form["method"] == "post"
    response = requests.post(
        f"{emu.base_url}{form['action']}", data={**form["fields"], **typed}, allow_redirects=False, timeout=5
    )
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
    page = submit(emu, forms(emu)[f"refund-part-{paid_intent.id}"], amount="1500", reason="duplicate")
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
    page = submit(emu, form, amount="999999")
    assert page.status_code == 400
    assert 'id="error"' in page.text and "is greater than unrefunded amount on charge" in page.text


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
