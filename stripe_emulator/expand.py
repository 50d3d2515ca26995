"""Apply `expand[]` paths to rendered objects, as Stripe does."""

from __future__ import annotations

import copy
from typing import Any

from . import listing
from .errors import StripeError
from .store import Store

# (object type, field) -> type of the field once expanded; "list:T" is a list of T.
_EXPANDABLE = {
    ("checkout.session", "line_items"): "list:item",
    ("checkout.session", "payment_intent"): "payment_intent",
    ("item", "price"): "price",
    ("price", "product"): "product",
    ("payment_intent", "latest_charge"): "charge",
    ("charge", "payment_intent"): "payment_intent",
    ("refund", "charge"): "charge",
    ("refund", "payment_intent"): "payment_intent",
    ("dispute", "charge"): "charge",
    ("dispute", "payment_intent"): "payment_intent",
}
# (object type, field) -> collection holding the object the field's id points to.
_ID_FIELDS = {
    ("checkout.session", "payment_intent"): "payment_intents",
    ("price", "product"): "products",
    ("payment_intent", "latest_charge"): "charges",
    ("charge", "payment_intent"): "payment_intents",
    ("refund", "charge"): "charges",
    ("refund", "payment_intent"): "payment_intents",
    ("dispute", "charge"): "charges",
    ("dispute", "payment_intent"): "payment_intents",
}


class Expander:
    """Render deep copies of stored objects with their expandable fields expanded."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @staticmethod
    def check(kind: str, expand: list[str]) -> None:
        """Fail unless every path can be expanded on an object of type `kind`."""
        for path in expand:
            current = kind
            for field in path.split("."):
                if current.startswith("list:") and field == "data":
                    current = current[len("list:") :]
                elif (current, field) in _EXPANDABLE:
                    current = _EXPANDABLE[(current, field)]
                else:
                    raise StripeError.invalid(f"This property cannot be expanded ({path}).", param="expand")

    def render(self, obj: dict[str, Any], expand: list[str], kind: str | None = None) -> dict[str, Any]:
        """Return a deep copy of `obj` (of type `kind`) with the expansions applied."""
        self.check(kind or obj["object"], expand)
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
                items,
                {},
                url=f"/v1/checkout/sessions/{obj['id']}/line_items",
                kind="item",
                object_id=lambda i: i["id"],
                render=copy.deepcopy,
            )
        if isinstance(current, str):
            found = self._store.get(_ID_FIELDS[(kind, field)], current)
            return copy.deepcopy(found) if found else current
        return current
