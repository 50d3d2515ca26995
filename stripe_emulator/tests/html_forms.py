"""Read the forms of an emulator page and post them back as a browser would."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import requests


class Forms(HTMLParser):
    """Collect each form's action and the fields a browser would submit with it, by form id."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, Any]] = {}
        self._current: dict[str, Any] | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = {"action": a["action"], "method": a["method"], "fields": {}, "buttons": []}
            self.forms[a["id"]] = self._current
        elif self._current is None:
            return
        elif tag == "input" and a.get("type") == "radio":
            if "checked" in a:
                self._current["fields"][a["name"]] = a["value"]
        elif tag == "input":
            self._current["fields"][a["name"]] = a.get("value", "")
        elif tag == "button" and a.get("name"):
            self._current["buttons"].append((a["name"], a["value"]))
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select:
            fields = self._current["fields"]
            if self._select not in fields or "selected" in a:
                fields[self._select] = a["value"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None
        elif tag == "select":
            self._select = None


def forms_of(html: str) -> dict[str, dict[str, Any]]:
    """Return the page's forms by id."""
    parser = Forms()
    parser.feed(html)
    return parser.forms


def post(base_url: str, form: dict[str, Any], **typed: str) -> requests.Response:
    """Post a form with what a person typed over its fields; do not follow the redirect."""
    assert form["method"] == "post"
    return requests.post(
        f"{base_url}{form['action']}", data={**form["fields"], **typed}, allow_redirects=False, timeout=5
    )
