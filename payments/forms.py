"""What a buyer may send to start a checkout: item ids and quantities, never a price."""

import json
from dataclasses import dataclass
from typing import Any

from django import forms

from orders.db import text_is_storable
from orders.models import MAX_LINES, MAX_QUANTITY, MIN_QUANTITY

LINE_FIELDS = ("item_id", "quantity")
API_FIELDS = (*LINE_FIELDS, "items")
API_EXAMPLE = '{"items": [{"item_id": "...", "quantity": 1}]}'
# Only a digest of the key is stored (payments/idempotency.py); this bounds what a client may send.
IDEMPOTENCY_KEY_MAX_LENGTH = 255
FORM_OUT_OF_DATE = "This form is out of date: reload the page and try again."
QUANTITY_MESSAGE = f"Quantity must be a whole number from {MIN_QUANTITY} to {MAX_QUANTITY}."
# A JSON number longer than this is never a quantity; Python itself refuses to convert past 4300 digits,
# with a message about its interpreter.
MAX_NUMBER_DIGITS = 20


def storable_validator(value: str) -> None:
    if not text_is_storable(value):
        raise forms.ValidationError("Unknown item: item ids hold no NUL or lone surrogate characters.")


class LineForm(forms.Form):
    """One item and its quantity: a line of the JSON API, of the cart, of the buy-now form."""

    item_id = forms.CharField(
        max_length=64,
        validators=[storable_validator],
        error_messages={
            "required": "Missing item_id: say which item to buy.",
            "max_length": "Unknown item: item ids are at most 64 characters.",
        },
    )
    quantity = forms.IntegerField(
        min_value=MIN_QUANTITY,
        max_value=MAX_QUANTITY,
        error_messages={
            "required": f"Missing quantity: say how many to buy ({MIN_QUANTITY} to {MAX_QUANTITY}).",
            "invalid": QUANTITY_MESSAGE,
            "min_value": "Quantity must be at least %(limit_value)s.",
            "max_value": "Quantity must be at most %(limit_value)s.",
        },
    )

    def first_error(self) -> tuple[str, str]:
        """Return (field, message) of the first problem; errors are kept in field order."""
        name, errors = next(iter(self.errors.items()))
        return name, errors[0]


class CheckoutForm(LineForm):
    """The HTML buy-now form, one per product on the page, and the cart's checkout button (no line)."""

    checkout_token = forms.UUIDField(required=False, error_messages={"invalid": FORM_OUT_OF_DATE})


class CheckoutRequestInvalid(Exception):
    """A JSON checkout request that cannot be used; says which field is wrong when one is."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class CheckoutRequest:
    items: list[tuple[str, int]]
    idempotency_key: str | None


def checkout_request_parse(*, content_type: str, body: bytes, idempotency_key: str | None) -> CheckoutRequest:
    """Return the request's items and quantities, or raise CheckoutRequestInvalid naming the problem (and
    the line: `items[2].quantity`)."""
    if content_type != "application/json":
        raise CheckoutRequestInvalid(
            f"Content-Type must be application/json, not {content_type or 'missing'!r}: "
            f"send {API_EXAMPLE} as JSON."
        )
    if not body.strip():
        raise CheckoutRequestInvalid(f"The request body is empty: send {API_EXAMPLE}.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckoutRequestInvalid("The request body is not UTF-8 text, as JSON must be.") from None
    try:
        data = json.loads(text, parse_int=_parse_int, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise CheckoutRequestInvalid(
            f"The request body is not valid JSON (line {exc.lineno}, column {exc.colno}): send {API_EXAMPLE}."
        ) from None
    except (ValueError, RecursionError):
        raise CheckoutRequestInvalid(f"The request body is not valid JSON: send {API_EXAMPLE}.") from None
    if not isinstance(data, dict):
        raise CheckoutRequestInvalid(
            f"The request body must be a JSON object like {API_EXAMPLE}, not {_json_type(data)}."
        )
    _refuse_unknown_fields(data, API_FIELDS, "")
    if "items" not in data:  # the single-item body of earlier versions
        items = [_line(data, "")]
    elif set(LINE_FIELDS) & set(data):
        raise CheckoutRequestInvalid("Send items, or item_id and quantity, not both.", field="items")
    elif not isinstance(lines := data["items"], list) or not 1 <= len(lines) <= MAX_LINES:
        shown = f"{len(lines)} lines" if isinstance(lines, list) else _json_type(lines)
        raise CheckoutRequestInvalid(
            f"items must be an array of 1 to {MAX_LINES} lines like {API_EXAMPLE[10:-1]}, not {shown}.",
            field="items",
        )
    else:
        items = [_line(item, f"items[{index}]") for index, item in enumerate(lines)]
    if idempotency_key is not None:
        idempotency_key = idempotency_key.strip()
        if not idempotency_key or len(idempotency_key) > IDEMPOTENCY_KEY_MAX_LENGTH:
            raise CheckoutRequestInvalid(
                f"The Idempotency-Key header must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} characters long.",
                field="Idempotency-Key",
            )
    return CheckoutRequest(items=items, idempotency_key=idempotency_key)


def _line(data: Any, where: str) -> tuple[str, int]:
    """Return one line's item and quantity; `where` names the line in errors (`items[2]`)."""
    prefix = f"{where}." if where else ""
    if not isinstance(data, dict):
        raise CheckoutRequestInvalid(
            f'{where} must be an object like {{"item_id": "...", "quantity": 1}}, not {_json_type(data)}.',
            field=where,
        )
    _refuse_unknown_fields(data, LINE_FIELDS if where else API_FIELDS, prefix)
    # null counts as missing, which the form reports.
    if data.get("item_id") is not None and not isinstance(data["item_id"], str):
        raise CheckoutRequestInvalid(
            f"{prefix}item_id must be a string (the item's id), not {_json_type(data['item_id'])}.",
            field=f"{prefix}item_id",
        )
    quantity = data.get("quantity")
    if isinstance(quantity, _OversizedNumber):
        raise CheckoutRequestInvalid(QUANTITY_MESSAGE, field=f"{prefix}quantity")
    if quantity is not None and (isinstance(quantity, bool) or not isinstance(quantity, int)):
        shown = json.dumps(quantity)
        raise CheckoutRequestInvalid(
            f"{QUANTITY_MESSAGE[:-1]}, not {shown}." if len(shown) <= MAX_NUMBER_DIGITS else QUANTITY_MESSAGE,
            field=f"{prefix}quantity",
        )
    form = LineForm(data={name: data[name] for name in LINE_FIELDS if data.get(name) is not None})
    if not form.is_valid():
        field, message = form.first_error()
        raise CheckoutRequestInvalid(f"{where}: {message}" if where else message, field=prefix + field)
    return form.cleaned_data["item_id"], form.cleaned_data["quantity"]


def _refuse_unknown_fields(data: dict, known: tuple[str, ...], prefix: str) -> None:
    accepted = "items, or item_id and quantity," if "items" in known else "item_id and quantity"
    for name in data:
        if name not in known:
            hint = " The price always comes from the catalog." if "price" in name or "amount" in name else ""
            raise CheckoutRequestInvalid(
                f"Unknown field {prefix}{name!r}: only {accepted} are accepted.{hint}", field=prefix + name
            )


class _OversizedNumber:
    """A JSON integer too long to be any field's value; kept unconverted."""


def _parse_int(digits: str) -> int | _OversizedNumber:
    if len(digits.lstrip("-")) > MAX_NUMBER_DIGITS:
        return _OversizedNumber()
    return int(digits)


def _refuse_constant(name: str) -> None:
    # NaN and Infinity are Python's extension to JSON, not JSON.
    raise ValueError(name)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float, _OversizedNumber)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
