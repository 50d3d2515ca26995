"""Render the hosted payment page of an open session: its cart, and the forms that pay it."""

from __future__ import annotations

import dataclasses
from html import escape
from typing import Any

from .currency import format_amount
from .page import document
from .shipping import ADDRESS_FIELDS, SAMPLE_ADDRESS, SAMPLE_NAME

APPLY_PROMOTION_CODE = "apply_promotion_code"
ADDRESS_LABELS = {
    "line1": "Address",
    "line2": "Apartment, suite, etc. (optional)",
    "city": "City",
    "state": "State or province (optional)",
    "postal_code": "Postal code",
    "country": "Country",
}
_CSS = """
select{width:100%;padding:10px 12px;border:1px solid #cfd7df;border-radius:6px;font-size:15px;
margin-bottom:20px;background:#fff}
fieldset{border:0;padding:0;margin:0 0 8px}
legend{font-weight:600;margin-bottom:12px}
.rate{display:flex;gap:8px;align-items:center;margin-bottom:12px;font-size:15px;color:#1a1f36}
.rate input{width:auto;margin:0}
.code{display:flex;gap:8px}
.code button{width:auto;margin:0 0 20px}
.muted{color:#697386;font-weight:400}
"""


@dataclasses.dataclass
class CheckoutView:
    """What the payment page shows besides the session: names, what was typed, what went wrong."""

    line_items: list[dict[str, Any]]
    shipping_rates: dict[str, dict[str, Any]]
    promotion_codes: dict[str, str]
    typed: dict[str, str] = dataclasses.field(default_factory=dict)
    error: str | None = None


def checkout_page(session: dict[str, Any], view: CheckoutView) -> str:
    """Render the payment page of an open session."""
    total = escape(format_amount(session["amount_total"], session["currency"]))
    back = ""
    if session.get("cancel_url"):
        back = f'<a class="back" id="cancel" href="{escape(session["cancel_url"])}">← Back</a>'
    error = f'<div class="error" id="error">{escape(view.error)}</div>' if view.error else ""
    body = f"""
<div class="wrap">
  <div class="summary">
    {back}
    <div class="merchant">Emulated Stripe Checkout<span class="test">TEST MODE</span></div>
    <div>Pay</div>
    <div class="total" id="amount-total">{total}</div>
    {_summary(session, view)}
  </div>
  <div class="pay">
    {error}
    {_promotion_code_form(session, view)}
    <form method="post" id="pay" action="/pay/{escape(session["id"])}">
      {_email(session, view)}
      {_shipping_fields(session, view)}
      <button type="submit" id="pay-card" name="method" value="card">
        Pay with test card 4242 4242 4242 4242</button>
      <button type="submit" class="secondary" id="pay-delayed-success" name="method"
        value="delayed_success">Pay with a delayed method (succeeds later)</button>
      <button type="submit" class="secondary" id="pay-delayed-failure" name="method"
        value="delayed_failure">Pay with a delayed method (fails later)</button>
    </form>
    <p class="fine">This page is served by the offline Stripe emulator. No real payment is
      made.</p>
  </div>
</div>"""
    return document(f"Pay {total}", body, extra_css=_CSS)


def _summary(session: dict[str, Any], view: CheckoutView) -> str:
    currency = session["currency"]

    def money(amount: int) -> str:
        return escape(format_amount(amount, currency))

    items = "".join(
        '<div class="item"><div><div>{name}</div><div class="qty">Qty {qty} &times; {unit}'
        "</div></div><div>{subtotal}</div></div>".format(
            name=escape(item["description"] or "Item"),
            qty=item["quantity"],
            unit=money(item["price"]["unit_amount"]),
            subtotal=money(item["amount_subtotal"]),
        )
        for item in view.line_items
    )
    details = session["total_details"]
    rows = [("subtotal", "Subtotal", money(session["amount_subtotal"]))]
    for entry in session["discounts"]:
        code = view.promotion_codes.get(entry["promotion_code"], "")
        rows.append(("discount", f"Discount ({escape(code)})", "&minus;" + money(details["amount_discount"])))
    if session["shipping_cost"]:
        rate = view.shipping_rates.get(session["shipping_cost"]["shipping_rate"], {})
        name = escape(rate.get("display_name") or "Shipping")
        rows.append(("shipping", f"Shipping: {name}", money(session["shipping_cost"]["amount_subtotal"])))
    if session["automatic_tax"]["enabled"]:
        rows.append(("tax", "Tax", '<span class="muted">added when you pay, for your address</span>'))
    due = "Total before tax" if session["automatic_tax"]["enabled"] else "Total due"
    rows.append(("due", due, money(session["amount_total"])))
    return items + "".join(
        f'<div class="row" id="{row_id}"><span>{label}</span><span>{amount}</span></div>'
        for row_id, label, amount in rows
    )


def _promotion_code_form(session: dict[str, Any], view: CheckoutView) -> str:
    if not session["allow_promotion_codes"]:
        return ""
    typed = escape(view.typed.get("promotion_code", ""))
    return (
        f'<form method="post" id="promotion-code-form" action="/pay/{escape(session["id"])}">'
        f'<input type="hidden" name="step" value="{APPLY_PROMOTION_CODE}">'
        '<label for="promotion-code">Promotion code</label><div class="code">'
        f'<input id="promotion-code" name="promotion_code" value="{typed}" required>'
        '<button type="submit" class="secondary" id="apply-promotion-code">Apply</button></div></form>'
    )


def _email(session: dict[str, Any], view: CheckoutView) -> str:
    if session.get("customer_email"):
        return (
            '<label>Email</label><div class="email" id="customer-email">'
            f"{escape(session['customer_email'])}</div>"
        )
    email = escape(view.typed.get("email", "customer@example.com"))
    return f'<label for="email">Email</label><input id="email" name="email" type="email" value="{email}">'


def _shipping_fields(session: dict[str, Any], view: CheckoutView) -> str:
    html = ""
    collection = session["shipping_address_collection"]
    if collection is not None:
        countries = collection["allowed_countries"]
        # Filled in with a sample address, as the email is, so a test payment takes one click.
        sample = {"name": SAMPLE_NAME, **SAMPLE_ADDRESS, "country": countries[0]}
        value = {name: view.typed.get(name, sample.get(name) or "") for name in ("name", *ADDRESS_FIELDS)}
        options = "".join(
            f'<option value="{escape(c)}"{" selected" if c == value["country"] else ""}>{escape(c)}</option>'
            for c in countries
        )
        inputs = "".join(
            f'<label for="shipping-{name}">{escape(ADDRESS_LABELS[name])}</label>'
            f'<input id="shipping-{name}" name="{name}" value="{escape(value[name])}">'
            for name in ADDRESS_FIELDS
            if name != "country"
        )
        html += (
            '<fieldset id="shipping-address"><legend>Shipping address</legend>'
            '<label for="shipping-name">Full name</label>'
            f'<input id="shipping-name" name="name" value="{escape(value["name"])}">{inputs}'
            '<label for="shipping-country">Country</label>'
            f'<select id="shipping-country" name="country">{options}</select></fieldset>'
        )
    if session["shipping_options"]:
        chosen = view.typed.get("shipping_rate") or session["shipping_cost"]["shipping_rate"]
        rates = "".join(
            _rate_choice(option, session["currency"], view, chosen) for option in session["shipping_options"]
        )
        html += f'<fieldset id="shipping-rates"><legend>Shipping method</legend>{rates}</fieldset>'
    return html


def _rate_choice(option: dict[str, Any], currency: str, view: CheckoutView, chosen: str) -> str:
    rate_id = escape(option["shipping_rate"])
    name = view.shipping_rates.get(option["shipping_rate"], {}).get("display_name") or "Shipping"
    checked = " checked" if option["shipping_rate"] == chosen else ""
    return (
        f'<label class="rate"><input type="radio" name="shipping_rate" id="rate-{rate_id}" '
        f'value="{rate_id}"{checked}>{escape(name)} &middot; '
        f"{escape(format_amount(option['shipping_amount'], currency))}</label>"
    )
