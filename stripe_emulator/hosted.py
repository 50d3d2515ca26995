"""The hosted Checkout page at /pay/{session_id}: show the session, take the payment."""

from __future__ import annotations

import copy
from urllib.parse import parse_qs

from . import page
from .checkout import SESSION_PLACEHOLDER
from .core import Emulator
from .errors import StripeError
from .http_types import Response, html_response


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

    def _show(self, session_id: str) -> Response:
        self._emulator.flow.expire_overdue(session_id)
        store = self._emulator.store
        with store.lock:
            session = copy.deepcopy(store.get("sessions", session_id))
            state = store.session_state.get(session_id)
            items = copy.deepcopy(state.line_items) if state else []
        if session is None:
            return _not_found(session_id)
        if session["status"] == "open":
            return html_response(200, page.checkout_page(session, items))
        return html_response(200, _closed_page(session))

    def _pay(self, session_id: str, body: bytes) -> Response:
        form = parse_qs(body.decode("utf-8", "replace"))
        method = form.get("method", ["card"])[0]
        email = form.get("email", [""])[0].strip() or None
        try:
            result = self._emulator.pay(session_id, method, email=email)
        except StripeError as exc:
            if exc.code == "resource_missing":
                return _not_found(session_id)
            store = self._emulator.store
            with store.lock:
                session = copy.deepcopy(store.get("sessions", session_id))
            if exc.status == 409 and session is not None:
                return html_response(409, _closed_page(session))
            return html_response(exc.status, page.notice_page("Payment failed", exc.message))
        return Response(303, b"", "text/plain", {"Location": result["redirect_url"]})


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
