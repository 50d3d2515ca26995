"""Apply `expand[]` paths to rendered objects, as Stripe does."""

from __future__ import annotations

import copy
from typing import Any

from . import listing
from .errors import StripeError
from .store import Store

# (object type, field) -> collection holding the object the field's id points to.
_ID_FIELDS = {
    ("checkout.session", "payment_intent"): "payment_intents",
    ("price", "product"): "products",
}


class Expander:
    """Render deep copies of stored objects with their expandable fields expanded."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def render(self, obj: dict[str, Any], expand: list[str]) -> dict[str, Any]:
        """Return a deep copy of `obj` with the requested expansions applied."""
        result = copy.deepcopy(obj)
        for path in expand:
            self._expand(result, path.split("."), path)
        return result

    def _expand(self, obj: dict[str, Any], parts: list[str], path: str) -> None:
        head, rest = parts[0], parts[1:]
        if obj.get("object") == "list" and head == "data":
            for item in obj["data"]:
                if rest:
                    self._expand(item, rest, path)
            return
        value = self._expanded(obj, head, path)
        obj[head] = value
        if rest and isinstance(value, dict):
            self._expand(value, rest, path)

    def _expanded(self, obj: dict[str, Any], field: str, path: str) -> Any:
        kind = obj.get("object")
        current = obj.get(field)
        if kind == "checkout.session" and field == "line_items":
            items = self._store.session_state[obj["id"]].line_items
            return listing.paginate(
                items, {}, url=f"/v1/checkout/sessions/{obj['id']}/line_items", kind="item",
                object_id=lambda i: i["id"], render=copy.deepcopy)
        if (kind, field) == ("item", "price"):
            return current
        if (kind, field) in _ID_FIELDS:
            if isinstance(current, str):
                found = self._store.get(_ID_FIELDS[(kind, field)], current)
                return copy.deepcopy(found) if found else current
            return current
        raise StripeError.invalid(f"This property cannot be expanded ({path}).",
                                  param="expand")
