"""The request and response values passed between the server and the handlers."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any
from urllib.parse import unquote


@dataclasses.dataclass
class ApiRequest:
    """A decoded request as the handlers see it."""

    method: str
    path: str
    params: dict[str, Any]
    request_id: str
    path_args: tuple[str, ...] = ()
    idempotency_key: str | None = None
    api_key: str | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Response:
    """What the server writes back: a status, a body and extra headers."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


class Router:
    """Match (method, path) against regex routes; tell a wrong method from an unknown path."""

    def __init__(self, routes: list[tuple[str, str, Any]]) -> None:
        self._routes = [(method, re.compile(pattern + r"\Z"), handler) for method, pattern, handler in routes]

    def match(self, method: str, path: str) -> tuple[Any, tuple[str, ...]] | None:
        """Return (handler, path arguments) or None."""
        for route_method, regex, handler in self._routes:
            found = regex.match(path)
            if found and route_method == method:
                return handler, tuple(unquote(a) for a in found.groups())
        return None

    def knows_path(self, path: str) -> bool:
        """Return whether any route has this path, whatever its method."""
        return any(regex.match(path) for _, regex, _ in self._routes)


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
    """Return a JSON response, pretty-printed as Stripe's are."""
    body = (json.dumps(data, indent=2) + "\n").encode()
    return Response(status, body, "application/json", dict(headers or {}))


def html_response(status: int, html: str, headers: dict[str, str] | None = None) -> Response:
    """Return an HTML response."""
    return Response(status, html.encode(), "text/html; charset=utf-8", dict(headers or {}))
