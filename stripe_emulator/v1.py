"""The /v1 front: authentication, form decoding, idempotency and error envelopes."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from . import forms
from .core import Emulator
from .errors import StripeError
from .http_types import ApiRequest, Response, Router, json_response
from .objects import API_VERSION

TEST_KEY_PREFIX = "sk_test_"
NO_KEY_MESSAGE = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)


def api_key_from(authorization: str) -> str | None:
    """Return the API key from a Bearer or Basic Authorization header value."""
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


def redact(key: str) -> str:
    """Hide most of an API key the way Stripe's error messages do."""
    if len(key) <= 12:
        return key[:3] + "*" * max(0, len(key) - 3)
    return key[:8] + "*" * (len(key) - 12) + key[-4:]


class V1Front:
    """Turn raw /v1 HTTP requests into calls on StripeApi and back into responses."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator
        self._router = Router(
            emulator.api.routes() + emulator.money_api.routes() + emulator.cart_api.routes()
        )

    def handle(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes, request_id: str
    ) -> Response:
        """Answer one /v1 request."""
        version = headers.get("Stripe-Version") or API_VERSION
        base_headers = {
            "Request-Id": request_id,
            "Stripe-Version": version,
            "Cache-Control": "no-cache, no-store",
        }
        try:
            response = self._handle(method, path, query, headers, body, request_id)
        except StripeError as exc:
            response = json_response(exc.status, exc.envelope(request_id), exc.headers)
        response.headers = {**base_headers, **response.headers}
        return response

    def _handle(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes, request_id: str
    ) -> Response:
        api_key = self._authenticate(headers.get("Authorization", ""))
        matched = self._router.match(method, path)
        if matched is None:
            raise StripeError(
                404,
                f"Unrecognized request URL ({method}: {path}). Please see "
                "https://stripe.com/docs or we can help at https://support.stripe.com/.",
            )
        handler, path_args = matched
        params = forms.decode(query)
        if method == "POST":
            try:
                text = body.decode()
            except UnicodeDecodeError:
                raise StripeError.invalid("Request body is not valid UTF-8.") from None
            params = {**params, **forms.decode(text)}
        key = headers.get("Idempotency-Key") if method == "POST" else None
        request = ApiRequest(
            method=method,
            path=path,
            params=params,
            request_id=request_id,
            path_args=path_args,
            idempotency_key=key,
            api_key=api_key,
            headers=dict(headers),
        )
        if key is None:
            return json_response(200, handler(request))

        def execute() -> tuple[int, bytes, str]:
            try:
                result = json_response(200, handler(request))
            except StripeError as exc:
                result = json_response(exc.status, exc.envelope(request_id))
            return result.status, result.body, request_id

        saved, replayed = self._emulator.idempotency.run(api_key, key, path, params, execute)
        extra = {"Idempotency-Key": key}
        if replayed:
            extra.update({"Idempotent-Replayed": "true", "Original-Request": saved.request_id})
        return Response(saved.status, saved.body, "application/json", extra)

    @staticmethod
    def _authenticate(authorization: str) -> str:
        if not authorization.strip():
            raise StripeError(401, NO_KEY_MESSAGE, headers={"WWW-Authenticate": 'Basic realm="Stripe"'})
        key = api_key_from(authorization)
        if key is None or not key.startswith(TEST_KEY_PREFIX) or len(key) <= len(TEST_KEY_PREFIX):
            shown = redact(key) if key else authorization.strip()[:20]
            raise StripeError(
                401,
                f"Invalid API Key provided: {shown}",
                headers={"WWW-Authenticate": 'Basic realm="Stripe"'},
            )
        return key
