"""A small stand-in for Stripe's Dashboard at /_emulator/dashboard: payments, refunds, disputes."""

from __future__ import annotations

import copy
import datetime
from html import escape
from typing import Any

from . import charges, page
from .currency import example, format_amount, parse_typed_amount
from .disputes import CLOSED_STATUSES, DISPUTE_REASONS
from .refunds import REFUND_REASONS
from .store import Store

PATH = "/_emulator/dashboard"
MAX_ROWS = 100

_CSS = """
.dash{max-width:1280px;margin:0 auto;padding:32px 24px}
table{width:100%;border-collapse:collapse;background:#fff;box-shadow:0 2px 8px rgba(50,50,93,.12)}
th,td{padding:10px 12px;border-bottom:1px solid #e3e8ee;text-align:left;vertical-align:top;font-size:13px}
th{color:#697386;font-weight:600}
code{font-size:12px}
td form{display:inline-block;margin:0 4px 6px 0}
td button{display:inline-block;width:auto;padding:5px 10px;margin:0;font-size:12px}
td input,td select{width:auto;padding:4px 6px;margin:0 4px 0 0;font-size:12px}
td label.amount{display:block;margin-bottom:4px;font-size:11px;color:#697386}
td label.amount input{display:block;width:14em;margin-top:2px}
.flash{padding:12px 16px;border-radius:6px;margin-bottom:16px;background:#d7f7c2;color:#05690d}
.flash.error{background:#ffe7f2;color:#b3093c}
.muted{color:#697386}
.pill{display:inline-block;border-radius:4px;padding:1px 6px;background:#e3e8ee;font-size:12px}
"""


def snapshot(store: Store) -> tuple[list[dict[str, Any]], int]:
    """Return the newest sessions with their payment, refunds and dispute, and the session count."""
    with store.lock:
        sessions = store.newest_first("sessions")
        rows = []
        for session in sessions[:MAX_ROWS]:
            intent = store.get("payment_intents", session["payment_intent"] or "")
            charge = store.get("charges", intent["latest_charge"] or "") if intent else None
            state = store.session_state.get(session["id"])
            rows.append(
                copy.deepcopy(
                    {
                        "session": session,
                        "intent": intent,
                        "charge": charge,
                        "refunds": charges.refunds_of(store, charge["id"]) if charge else [],
                        "dispute": charges.dispute_of(store, charge["id"]) if charge else None,
                        "unrefunded": charges.unrefunded(store, charge) if charge else 0,
                        "settling": state is not None and state.pending_outcome is not None,
                    }
                )
            )
        return rows, len(sessions)


def render(rows: list[dict[str, Any]], total: int, *, notice: str | None, error: str | None) -> str:
    """Render the dashboard page; every value shown is escaped."""
    flash = ""
    if error:
        flash = f'<div class="flash error" id="error">{escape(error)}</div>'
    elif notice:
        flash = f'<div class="flash" id="notice">{escape(notice)}</div>'
    if rows:
        body_rows = "".join(_row(row) for row in rows)
        table = (
            '<table id="payments"><thead><tr><th>Checkout Session</th><th>Status</th><th>Amount</th>'
            "<th>Refunds</th><th>Dispute</th><th>Actions</th></tr></thead>"
            f"<tbody>{body_rows}</tbody></table>"
        )
    else:
        table = '<p class="muted" id="empty">No Checkout Sessions yet.</p>'
    shown = f"Newest {len(rows)} of {total} sessions" if total > len(rows) else f"{total} sessions"
    body = (
        '<div class="dash"><div class="merchant">Emulated Stripe Dashboard'
        '<span class="test">TEST MODE</span></div>'
        f'<h1>Payments</h1><p class="muted">{escape(shown)}, newest first.</p>{flash}{table}</div>'
    )
    return page.document("Emulated Stripe Dashboard", body, extra_css=_CSS)


def _row(row: dict[str, Any]) -> str:
    session, intent, charge = row["session"], row["intent"], row["charge"]
    currency = session["currency"]
    created = datetime.datetime.fromtimestamp(session["created"], datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
    intent_metadata = intent["metadata"] if intent else {}
    order = (
        session["metadata"].get("order_id")
        or session["client_reference_id"]
        or intent_metadata.get("order_id")
    )
    order_html = f"<div>order {escape(order)}</div>" if order else ""
    ids = f"<div><code>{escape(session['id'])}</code></div>"
    if intent:
        ids += f"<div><code>{escape(intent['id'])}</code></div>"
    status = f'<span class="pill">{escape(session["status"])}</span> {escape(session["payment_status"])}'
    if intent:
        status += f'<div class="muted">intent {escape(intent["status"])}</div>'
    amount = escape(format_amount(session["amount_total"], currency))
    if charge:
        refunded = format_amount(charge["amount_refunded"], currency)
        amount += f'<div class="muted">refunded {escape(refunded)}</div>'
        if charge["refunded"]:
            amount += '<div class="pill">fully refunded</div>'
    return (
        f'<tr id="row-{escape(session["id"])}">'
        f'<td>{ids}<div class="muted">{escape(created)} UTC</div>{order_html}</td>'
        f"<td>{status}</td><td>{amount}</td>"
        f"<td>{_refunds(row['refunds'], currency)}</td>"
        f"<td>{_dispute(row['dispute'], currency)}</td>"
        f"<td>{_actions(row)}</td></tr>"
    )


def _refunds(refunds: list[dict[str, Any]], currency: str) -> str:
    if not refunds:
        return '<span class="muted">none</span>'
    parts = []
    for refund in refunds:
        line = (
            f'<div id="refund-{escape(refund["id"])}"><code>{escape(refund["id"])}</code> '
            f"{escape(format_amount(refund['amount'], currency))} "
            f'<span class="pill">{escape(refund["status"])}</span>'
        )
        if refund.get("reason"):
            line += f' <span class="muted">{escape(refund["reason"])}</span>'
        if refund.get("failure_reason"):
            line += f' <span class="muted">({escape(refund["failure_reason"])})</span>'
        if refund["status"] == "pending":
            action = f"/_emulator/refunds/{refund['id']}/settle"
            line += "<div>" + _form(
                action, {"outcome": "succeeded"}, "Settle: succeeded", f"settle-ok-{refund['id']}"
            )
            line += _form(action, {"outcome": "failed"}, "Settle: failed", f"settle-fail-{refund['id']}")
            line += "</div>"
        parts.append(line + "</div>")
    return "".join(parts)


def _dispute(dispute: dict[str, Any] | None, currency: str) -> str:
    if dispute is None:
        return '<span class="muted">none</span>'
    due = datetime.datetime.fromtimestamp(dispute["evidence_details"]["due_by"], datetime.UTC)
    html = (
        f'<div id="dispute-{escape(dispute["id"])}"><code>{escape(dispute["id"])}</code> '
        f"{escape(format_amount(dispute['amount'], currency))} "
        f'<span class="pill">{escape(dispute["status"])}</span> '
        f'<span class="muted">{escape(dispute["reason"])}</span>'
    )
    if dispute["status"] not in CLOSED_STATUSES:
        base = f"/_emulator/disputes/{dispute['id']}"
        html += f'<div class="muted">evidence due {escape(due.strftime("%Y-%m-%d"))}</div><div>'
        if dispute["status"].startswith("warning_"):
            html += _form(
                f"{base}/close", {"outcome": "warning_closed"}, "Close inquiry", f"close-{dispute['id']}"
            )
        else:
            if dispute["status"] != "under_review":
                html += _form(
                    f"{base}/update", {"status": "under_review"}, "Under review", f"review-{dispute['id']}"
                )
            html += _form(f"{base}/close", {"outcome": "won"}, "Close: won", f"won-{dispute['id']}")
            html += _form(f"{base}/close", {"outcome": "lost"}, "Close: lost", f"lost-{dispute['id']}")
        html += "</div>"
    return html + "</div>"


def _actions(row: dict[str, Any]) -> str:
    session, intent, charge = row["session"], row["intent"], row["charge"]
    parts = []
    if session["status"] == "open":
        parts.append(
            f'<a id="pay-{escape(session["id"])}" href="/pay/{escape(session["id"])}">Open payment page</a>'
        )
        parts.append(
            _form(
                f"/_emulator/checkout/sessions/{session['id']}/expire",
                {},
                "Expire",
                f"expire-{session['id']}",
            )
        )
    if row["settling"]:
        parts.append(
            _form(
                f"/_emulator/checkout/sessions/{session['id']}/settle",
                {},
                "Settle delayed payment",
                f"settle-{session['id']}",
            )
        )
    if charge and intent and row["unrefunded"] > 0:
        pi = {"payment_intent": intent["id"]}
        parts.append(_form("/_emulator/refunds", pi, "Refund in full", f"refund-full-{intent['id']}"))
        reasons = "".join(f'<option value="{escape(r)}">{escape(r)}</option>' for r in REFUND_REASONS)
        parts.append(
            _form(
                "/_emulator/refunds",
                pi,
                "Refund part",
                f"refund-part-{intent['id']}",
                fields=_amount_field(charge["currency"], row["unrefunded"], required=True)
                + f'<select name="reason" aria-label="reason"><option value="">no reason</option>{reasons}'
                "</select>",
            )
        )
    disputable = charge["amount"] - charge["amount_refunded"] if charge else 0
    if charge and intent and row["dispute"] is None and disputable > 0:
        reasons = "".join(
            f'<option value="{escape(r)}"{" selected" if r == "fraudulent" else ""}>{escape(r)}</option>'
            for r in DISPUTE_REASONS
        )
        parts.append(
            _form(
                "/_emulator/disputes",
                {"payment_intent": intent["id"]},
                "Open dispute",
                f"dispute-{intent['id']}",
                fields=_amount_field(charge["currency"], disputable, required=False)
                + f'<select name="reason" aria-label="dispute reason">{reasons}</select>',
            )
        )
    return "".join(parts) or '<span class="muted">none</span>'


def _amount_field(currency: str, left: int, *, required: bool) -> str:
    # A person types a decimal in the major unit; with_minor_amount reads it when the form comes back.
    label = f"amount in {currency.upper()}, such as {example(currency)}"
    hint = f"at most {format_amount(left, currency)}" + ("" if required else "; empty for all of it")
    return (
        f'<label class="amount">{escape(label)} ({escape(hint)}) <input name="amount" type="text" '
        f'inputmode="decimal" {"required " if required else ""}placeholder="{escape(label)}" '
        f'aria-label="{escape(label)}"></label>'
    )


def with_minor_amount(store: Store, fields: dict[str, Any]) -> dict[str, Any]:
    """Return a dashboard form's fields with the typed `amount` ("12.50") in minor units (1250).

    The currency is the payment's, found from the form's payment_intent or charge. Raise ValueError
    with a message for the person who typed it, or StripeError when the payment is unknown.
    """
    if "amount" not in fields:
        return fields
    with store.lock:
        charge = charges.find_charge(
            store, charge_id=fields.get("charge"), intent_id=fields.get("payment_intent")
        )
        payment_currency = charge["currency"]
    return {**fields, "amount": parse_typed_amount(fields["amount"], payment_currency)}


def _form(action: str, hidden: dict[str, str], label: str, form_id: str, *, fields: str = "") -> str:
    inputs = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in hidden.items()
    )
    return (
        f'<form method="post" id="{escape(form_id)}" action="{escape(action)}">{inputs}{fields}'
        f'<button type="submit">{escape(label)}</button></form>'
    )
