"""The control API under /_emulator: drive sessions, read deliveries, change knobs."""

from __future__ import annotations

import json
from typing import Any

from .core import Emulator
from .errors import StripeError
from .http_types import Response, Router, json_response

MAX_WAIT = 300.0


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
            ]
        )

    def handle(self, method: str, path: str, body: bytes, request_id: str) -> Response:
        """Answer one control request."""
        try:
            matched = self._router.match(method, path)
            if matched is None:
                status = 405 if self._router.knows_path(path) else 404
                raise StripeError(status, f"Unrecognized control URL ({method}: {path}).")
            handler, args = matched
            response = json_response(200, handler(_json_body(body), *args))
        except StripeError as exc:
            response = json_response(exc.status, exc.envelope())
        except ValueError as exc:
            response = json_response(400, StripeError.invalid(str(exc)).envelope())
        response.headers["Request-Id"] = request_id
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
        """Pay a session like the hosted page's buttons."""
        method = body.get("method", "card")
        return self._emulator.pay(session_id, str(method), email=body.get("email"), name=body.get("name"))

    def settle(self, _: dict[str, Any], session_id: str) -> dict[str, Any]:
        """Settle a pending delayed payment now."""
        return {"session": self._emulator.settle(session_id)}

    def expire(self, _: dict[str, Any], session_id: str) -> dict[str, Any]:
        """Expire a session now."""
        return {"session": self._emulator.expire(session_id)}


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
