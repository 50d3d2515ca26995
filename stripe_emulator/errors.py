"""Stripe-style API errors and their JSON envelope."""

from __future__ import annotations

from typing import Any

DOCS_BASE = "https://stripe.com/docs/error-codes/"


class StripeError(Exception):
    """An error answered with Stripe's `{"error": {...}}` envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    @classmethod
    def invalid(cls, message: str, *, param: str | None = None, code: str | None = None) -> StripeError:
        """Build a 400 invalid_request_error."""
        return cls(400, message, code=code, param=param)

    @classmethod
    def missing_param(cls, param: str) -> StripeError:
        """Build the error for a required parameter that was not sent."""
        return cls(400, f"Missing required param: {param}.", code="parameter_missing", param=param)

    @classmethod
    def unknown_param(cls, param: str) -> StripeError:
        """Build the error for a parameter the endpoint does not accept."""
        return cls(400, f"Received unknown parameter: {param}", code="parameter_unknown", param=param)

    @classmethod
    def no_such(cls, kind: str, object_id: str, *, param: str = "id", status: int = 404) -> StripeError:
        """Build the resource_missing error for an unknown object id."""
        return cls(status, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)

    def envelope(self, request_id: str | None = None) -> dict[str, Any]:
        """Render the error as Stripe's JSON envelope."""
        body: dict[str, Any] = {"message": self.message, "type": self.type}
        if self.code:
            body["code"] = self.code
            body["doc_url"] = DOCS_BASE + self.code.replace("_", "-")
        if self.param:
            body["param"] = self.param
        if request_id:
            body["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
        return {"error": body}
