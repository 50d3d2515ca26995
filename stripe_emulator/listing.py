"""Paginate and filter list endpoints the way Stripe does."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from . import objects, validate
from .errors import StripeError

T = TypeVar("T")

PAGINATION_PARAMS = ("limit", "starting_after", "ending_before", "expand")
RANGE_OPERATORS = ("gt", "gte", "lt", "lte")


def paginate(
    items: Sequence[T],
    params: dict[str, Any],
    *,
    url: str,
    kind: str,
    object_id: Callable[[T], str],
    render: Callable[[T], dict[str, Any]],
) -> dict[str, Any]:
    """Return one page of `items` (already filtered, newest first) as a list object."""
    limit = 10
    if "limit" in params and params["limit"] != "":
        limit = validate.as_int(params["limit"], "limit", minimum=1, maximum=100)
    starting_after = validate.optional_string(params, "starting_after")
    ending_before = validate.optional_string(params, "ending_before")
    ids = [object_id(item) for item in items]
    if starting_after is not None:
        start = _cursor_index(ids, starting_after, "starting_after", kind) + 1
        page = items[start : start + limit]
        has_more = start + limit < len(items)
    elif ending_before is not None:
        end = _cursor_index(ids, ending_before, "ending_before", kind)
        page = items[max(0, end - limit) : end]
        has_more = end - limit > 0
    else:
        page = items[:limit]
        has_more = limit < len(items)
    return objects.list_object([render(item) for item in page], has_more=has_more, url=url)


def _cursor_index(ids: list[str], cursor: str, param: str, kind: str) -> int:
    try:
        return ids.index(cursor)
    except ValueError:
        raise StripeError.no_such(kind, cursor, param=param, status=400) from None


def created_filter(params: dict[str, Any], param: str = "created") -> Callable[[int], bool]:
    """Return a predicate for `created=` or `created[gt|gte|lt|lte]=`."""
    if param not in params or params[param] == "":
        return lambda _: True
    value = params[param]
    if isinstance(value, str):
        exact = validate.as_int(value, param)
        return lambda created: created == exact
    bounds = validate.as_hash(value, param)
    validate.reject_unknown(bounds, RANGE_OPERATORS, param)
    limits = {op: validate.as_int(v, validate.child(param, op)) for op, v in bounds.items()}

    def matches(created: int) -> bool:
        return (
            ("gt" not in limits or created > limits["gt"])
            and ("gte" not in limits or created >= limits["gte"])
            and ("lt" not in limits or created < limits["lt"])
            and ("lte" not in limits or created <= limits["lte"])
        )

    return matches
