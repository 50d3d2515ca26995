"""The control API under /_emulator: drive sessions and money, read deliveries, change knobs."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlencode

from . import dashboard
from .core import Emulator
from .errors import StripeError
from .http_types import Response, Router, html_response, json_response

MAX_WAIT = 300.0
FORM_TYPE = "application/x-www-form-urlencoded"


class ControlFront:
    """Answer /_emulator requests with JSON, no authentication."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator
        self._router = Router(
            [
                ("GET", r"/_emulator/health", self.health),
                ("GET", r"/_emulator/config", self.get_config),
                ("POST", r"/_emulator/config", self.set_config),
                ("POST", r"/_emulator/reset", self.reset),
                ("GET", r"/_emulator/deliveries", self.deliveries),
                ("POST", r"/_emulator/webhooks/release", self.release),
                ("POST", r"/_emulator/wait_idle", self.wait_idle),
                ("POST", r"/_emulator/checkout/sessions/([^/]+)/pay", self.pay),
                ("POST", r"/_emulator/checkout/sessions/([^/]+)/settle", self.settle),
                ("POST", r"/_emulator/checkout/sessions/([^/]+)/expire", self.expire),
                ("POST", r"/_emulator/checkout/sessions/([^/]+)/tamper", self.tamper),
                ("POST", r"/_emulator/promotion_codes", self.create_promotion_code),
                ("POST", r"/_emulator/refunds", self.create_refund),
                ("POST", r"/_emulator/refunds/([^/]+)/settle", self.settle_refund),
                ("POST", r"/_emulator/disputes", self.open_dispute),
                ("POST", r"/_emulator/disputes/([^/]+)/update", self.update_dispute),
                ("POST", r"/_emulator/disputes/([^/]+)/close", self.close_dispute),
            ]
        )

    def handle(
        self, method: str, path: str, body: bytes, request_id: str, *, query: str = "", content_type: str = ""
    ) -> Response:
        """Answer one control request: JSON, or a dashboard form post answered with a redirect."""
        if path == dashboard.PATH and method == "GET":
            flash = parse_qs(query)
            response = self._dashboard(200, notice=flash.get("notice", [None])[0], error=None)
        elif _is_form(content_type, body):
            response = self._form_post(method, path, body)
        else:
            response = self._json_call(method, path, body)
        response.headers["Request-Id"] = request_id
        return response

    def _json_call(self, method: str, path: str, body: bytes) -> Response:
        try:
            return json_response(200, self._call(method, path, _json_body(body)))
        except StripeError as exc:
            return json_response(exc.status, exc.envelope())
        except ValueError as exc:
            return json_response(400, StripeError.invalid(str(exc)).envelope())

    def _form_post(self, method: str, path: str, body: bytes) -> Response:
        # The dashboard's buttons: redirect back on success, show the page with the error otherwise.
        try:
            fields = dashboard.with_minor_amount(self._emulator.store, _form_body(body))
            result = self._call(method, path, fields)
        except StripeError as exc:
            return self._dashboard(exc.status, notice=None, error=exc.message)
        except ValueError as exc:
            return self._dashboard(400, notice=None, error=str(exc))
        location = f"{dashboard.PATH}?{urlencode({'notice': _summary(result)})}"
        return Response(303, b"", "text/plain", {"Location": location})

    def _call(self, method: str, path: str, body: dict[str, Any]) -> Any:
        matched = self._router.match(method, path)
        if matched is None:
            status = 405 if self._router.knows_path(path) or path == dashboard.PATH else 404
            raise StripeError(status, f"Unrecognized control URL ({method}: {path}).")
        handler, args = matched
        return handler(body, *args)

    def _dashboard(self, status: int, *, notice: str | None, error: str | None) -> Response:
        rows, total = dashboard.snapshot(self._emulator.store)
        response = html_response(status, dashboard.render(rows, total, notice=notice, error=error))
        response.headers["Cache-Control"] = "no-store"
        return response

    def health(self, _: dict[str, Any]) -> dict[str, Any]:
        """Say the emulator is up."""
        return {"ok": True}

    def get_config(self, _: dict[str, Any]) -> dict[str, Any]:
        """Return the current config."""
        return self._emulator.get_config()

    def set_config(self, body: dict[str, Any]) -> dict[str, Any]:
        """Apply a partial config update; return the whole config."""
        return self._emulator.configure(**body)

    def reset(self, _: dict[str, Any]) -> dict[str, Any]:
        """Forget all state."""
        self._emulator.reset()
        return {"ok": True}

    def deliveries(self, _: dict[str, Any]) -> list[dict[str, Any]]:
        """Return the delivery log, oldest first."""
        return self._emulator.deliveries()

    def release(self, _: dict[str, Any]) -> dict[str, Any]:
        """Send the held deliveries."""
        return {"released": self._emulator.release_webhooks()}

    def wait_idle(self, body: dict[str, Any]) -> dict[str, Any]:
        """Wait until no delivery is pending or in flight."""
        timeout = body.get("timeout", 10.0)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise ValueError("timeout must be a non-negative number of seconds")
        return {"idle": self._emulator.wait_for_idle(min(float(timeout), MAX_WAIT))}

    def pay(self, body: dict[str, Any], session_id: str) -> dict[str, Any]:
        """Pay a session like the hosted page's buttons, with the shipping and code typed there."""
        _allow(body, ("method", "email", "name", "shipping", "shipping_rate", "promotion_code"))
        method = body.get("method", "card")
        return self._emulator.pay(
            session_id,
            str(method),
            email=_text(body, "email"),
            name=_text(body, "name"),
            shipping=body.get("shipping"),
            shipping_rate=_text(body, "shipping_rate"),
            promotion_code=_text(body, "promotion_code"),
        )

    def settle(self, _: dict[str, Any], session_id: str) -> dict[str, Any]:
        """Settle a pending delayed payment now."""
        return {"session": self._emulator.settle(session_id)}

    def expire(self, _: dict[str, Any], session_id: str) -> dict[str, Any]:
        """Expire a session now."""
        return {"session": self._emulator.expire(session_id)}

    def tamper(self, body: dict[str, Any], session_id: str) -> dict[str, Any]:
        """Force amounts on a session so its totals no longer add up (for a shop's tests)."""
        return {"session": self._emulator.tamper(session_id, body)}

    def create_promotion_code(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a promotion code and its coupon: percent_off, or amount_off with currency."""
        return self._emulator.create_promotion_code(**body)

    def create_refund(self, body: dict[str, Any]) -> dict[str, Any]:
        """Refund a payment as the Stripe Dashboard would."""
        _allow(body, ("payment_intent", "charge", "amount", "reason", "metadata"))
        refund = self._emulator.refund(
            payment_intent=_text(body, "payment_intent"),
            charge=_text(body, "charge"),
            amount=_amount(body),
            reason=_text(body, "reason"),
            metadata=_metadata(body),
        )
        return {"refund": refund}

    def settle_refund(self, body: dict[str, Any], refund_id: str) -> dict[str, Any]:
        """Settle a pending refund: succeeded, failed (optional failure_reason) or canceled."""
        _allow(body, ("outcome", "failure_reason"))
        outcome = _required(body, "outcome", "succeeded, failed or canceled")
        return {"refund": self._emulator.settle_refund(refund_id, outcome, _text(body, "failure_reason"))}

    def open_dispute(self, body: dict[str, Any]) -> dict[str, Any]:
        """Open a dispute on a payment."""
        _allow(body, ("payment_intent", "charge", "reason", "amount", "status"))
        dispute = self._emulator.open_dispute(
            payment_intent=_text(body, "payment_intent"),
            charge=_text(body, "charge"),
            reason=_text(body, "reason"),
            amount=_amount(body),
            status=_text(body, "status"),
        )
        return {"dispute": dispute}

    def update_dispute(self, body: dict[str, Any], dispute_id: str) -> dict[str, Any]:
        """Move an open dispute to another open status."""
        _allow(body, ("status",))
        status = _required(body, "status", "needs_response, under_review, warning_needs_response, ...")
        return {"dispute": self._emulator.update_dispute(dispute_id, status)}

    def close_dispute(self, body: dict[str, Any], dispute_id: str) -> dict[str, Any]:
        """Close a dispute as won, lost or warning_closed."""
        _allow(body, ("outcome",))
        outcome = _required(body, "outcome", "won, lost or warning_closed")
        return {"dispute": self._emulator.close_dispute(dispute_id, outcome)}


def _is_form(content_type: str, body: bytes) -> bool:
    # curl -d sends JSON as a form unless told otherwise: a body that opens like JSON is JSON.
    return content_type.split(";")[0].strip().lower() == FORM_TYPE and not body.lstrip().startswith(b"{")


def _form_body(body: bytes) -> dict[str, Any]:
    # Empty fields mean "not given", as an unfilled optional input does.
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in fields.items() if values[-1].strip()}


def _summary(result: Any) -> str:
    if isinstance(result, dict):
        for kind in ("refund", "dispute", "session"):
            obj = result.get(kind)
            if isinstance(obj, dict):
                return f"{kind.capitalize()} {obj['id']} is now {obj['status']}."
    return "Done."


def _allow(body: dict[str, Any], fields: tuple[str, ...]) -> None:
    for name in body:
        if name not in fields:
            raise ValueError(f"Unknown field: {name} (accepted: {', '.join(fields)})")


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    return value


def _required(body: dict[str, Any], name: str, choices: str) -> str:
    value = _text(body, name)
    if value is None:
        raise ValueError(f"{name} is required: {choices}")
    return value


def _amount(body: dict[str, Any]) -> int | None:
    value = body.get("amount")
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"amount must be a positive integer in the currency's smallest unit, got {value!r}")
    return value


def _metadata(body: dict[str, Any]) -> dict[str, str]:
    value = body.get("metadata") or {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError("metadata must be an object of strings")
    return value


def _json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        raise ValueError("Body must be a JSON object.") from None
    if not isinstance(data, dict):
        raise ValueError("Body must be a JSON object.")
    return data
