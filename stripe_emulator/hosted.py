"""The hosted Checkout page at /pay/{session_id}: show the session, take a code, take the payment."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import parse_qs

from . import page
from .checkout import SESSION_PLACEHOLDER
from .checkout_page import APPLY_PROMOTION_CODE, CheckoutView, checkout_page
from .core import Emulator
from .errors import StripeError
from .http_types import Response, html_response
from .shipping import ADDRESS_FIELDS
from .store import Store


class HostedFront:
    """Answer GET and POST on the hosted payment page."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator

    def handle(self, method: str, session_id: str, body: bytes, request_id: str) -> Response:
        """Render the page (GET) or pay the session and redirect (POST)."""
        if method == "POST":
            response = self._pay(session_id, body)
        elif method in ("GET", "HEAD"):
            response = self._show(session_id)
        else:
            response = html_response(
                405, page.notice_page("Method not allowed", "Use GET to view this page or POST to pay.")
            )
        response.headers["Request-Id"] = request_id
        response.headers["Cache-Control"] = "no-store"
        return response

    def _show(
        self, session_id: str, *, status: int = 200, typed: dict[str, str] | None = None, error: str = ""
    ) -> Response:
        self._emulator.flow.expire_overdue(session_id)
        store = self._emulator.store
        with store.lock:
            session = copy.deepcopy(store.get("sessions", session_id))
            if session is None:
                return _not_found(session_id)
            view = _view(store, session, typed or {}, error or None)
        if session["status"] == "open":
            return html_response(status, checkout_page(session, view))
        return html_response(status, _closed_page(session))

    def _pay(self, session_id: str, body: bytes) -> Response:
        form = {name: values[-1] for name, values in parse_qs(body.decode("utf-8", "replace")).items()}
        try:
            if form.get("step") == APPLY_PROMOTION_CODE:
                self._emulator.flow.apply_promotion_code(session_id, form.get("promotion_code", ""))
                return Response(303, b"", "text/plain", {"Location": f"/pay/{session_id}"})
            result = self._emulator.pay(
                session_id,
                form.get("method", "card"),
                email=form.get("email", "").strip() or None,
                shipping=_shipping(form),
                shipping_rate=form.get("shipping_rate"),
            )
        except StripeError as exc:
            if exc.code == "resource_missing":
                return _not_found(session_id)
            if exc.status == 409:
                return self._show(session_id, status=409)
            # The page again, with what was typed and what is wrong with it.
            return self._show(session_id, status=exc.status, typed=form, error=exc.message)
        return Response(303, b"", "text/plain", {"Location": result["redirect_url"]})


def _shipping(form: dict[str, str]) -> dict[str, Any] | None:
    # A post without any address field (a script paying with method=card) gets the sample address.
    if not any(name in form for name in ("name", *ADDRESS_FIELDS)):
        return None
    return {"name": form.get("name"), "address": {name: form.get(name) for name in ADDRESS_FIELDS}}


def _view(store: Store, session: dict[str, Any], typed: dict[str, str], error: str | None) -> CheckoutView:
    rates = [store.get("shipping_rates", option["shipping_rate"]) for option in session["shipping_options"]]
    promos = [store.get("promotion_codes", entry["promotion_code"]) for entry in session["discounts"]]
    return CheckoutView(
        line_items=copy.deepcopy(store.session_state[session["id"]].line_items),
        shipping_rates={rate["id"]: copy.deepcopy(rate) for rate in rates if rate is not None},
        promotion_codes={promo["id"]: promo["code"] for promo in promos if promo is not None},
        typed=typed,
        error=error,
    )


def _not_found(session_id: str) -> Response:
    return html_response(
        404, page.notice_page("Page not found", f"There is no Checkout Session with id {session_id}.")
    )


def _closed_page(session: dict) -> str:
    if session["status"] == "complete":
        target = session["success_url"].replace(SESSION_PLACEHOLDER, session["id"])
        return page.notice_page(
            "Already paid",
            "This Checkout Session is complete: it has already been paid and cannot be paid again.",
            link=(target, "Return to the merchant"),
        )
    link = (session["cancel_url"], "Return to the merchant") if session["cancel_url"] else None
    return page.notice_page(
        "This checkout has expired",
        "This Checkout Session has expired and can no longer be paid. Nothing was charged. "
        "Return to the merchant to start again.",
        link=link,
    )
