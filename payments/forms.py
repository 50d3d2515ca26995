"""What a buyer may send to start a checkout: an item id and a quantity, never a price."""

import json
from dataclasses import dataclass
from typing import Any

from django import forms

from orders.db import text_is_storable
from orders.models import MAX_QUANTITY, MIN_QUANTITY

API_FIELDS = ("item_id", "quantity")
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


class CheckoutForm(forms.Form):
    """The HTML checkout form, one per product on the page; also checks the JSON API's values."""

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
    checkout_token = forms.UUIDField(
        required=False,
        error_messages={"invalid": FORM_OUT_OF_DATE},
    )

    def first_error(self) -> tuple[str, str]:
        """Return (field, message) of the first problem, in field order."""
        for name in ("item_id", "quantity", "checkout_token"):
            if name in self.errors:
                return name, self.errors[name][0]
        name, errors = next(iter(self.errors.items()))
        return name, errors[0]


class CheckoutRequestInvalid(Exception):
    """A JSON checkout request that cannot be used; says which field is wrong when one is."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


@dataclass(frozen=True)
class CheckoutRequest:
    """A valid JSON checkout request."""

    item_id: str
    quantity: int
    idempotency_key: str | None


def checkout_request_parse(*, content_type: str, body: bytes, idempotency_key: str | None) -> CheckoutRequest:
    """Return the request's item and quantity, or raise CheckoutRequestInvalid naming the problem."""
    if content_type != "application/json":
        raise CheckoutRequestInvalid(
            f"Content-Type must be application/json, not {content_type or 'missing'!r}: "
            'send {"item_id": "...", "quantity": 1} as JSON.'
        )
    if not body.strip():
        raise CheckoutRequestInvalid('The request body is empty: send {"item_id": "...", "quantity": 1}.')
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckoutRequestInvalid("The request body is not UTF-8 text, as JSON must be.") from None
    try:
        data = json.loads(text, parse_int=_parse_int, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise CheckoutRequestInvalid(
            f"The request body is not valid JSON (line {exc.lineno}, column {exc.colno}): "
            'send {"item_id": "...", "quantity": 1}.'
        ) from None
    except (ValueError, RecursionError):
        raise CheckoutRequestInvalid(
            'The request body is not valid JSON: send {"item_id": "...", "quantity": 1}.'
        ) from None
    if not isinstance(data, dict):
        raise CheckoutRequestInvalid(
            f'The request body must be a JSON object like {{"item_id": "...", "quantity": 1}}, '
            f"not {_json_type(data)}."
        )
    for name in data:
        if name not in API_FIELDS:
            hint = " The price always comes from the catalog." if "price" in name or "amount" in name else ""
            raise CheckoutRequestInvalid(
                f"Unknown field {name!r}: only item_id and quantity are accepted.{hint}", field=name
            )
    # null counts as missing, which the form reports.
    if data.get("item_id") is not None and not isinstance(data["item_id"], str):
        raise CheckoutRequestInvalid(
            f"item_id must be a string (the item's id), not {_json_type(data['item_id'])}.", field="item_id"
        )
    quantity = data.get("quantity")
    if isinstance(quantity, _OversizedNumber):
        raise CheckoutRequestInvalid(QUANTITY_MESSAGE, field="quantity")
    if quantity is not None and (isinstance(quantity, bool) or not isinstance(quantity, int)):
        shown = json.dumps(quantity)
        raise CheckoutRequestInvalid(
            f"{QUANTITY_MESSAGE[:-1]}, not {shown}." if len(shown) <= MAX_NUMBER_DIGITS else QUANTITY_MESSAGE,
            field="quantity",
        )
    form = CheckoutForm(data={name: data[name] for name in API_FIELDS if data.get(name) is not None})
    if not form.is_valid():
        field, message = form.first_error()
        raise CheckoutRequestInvalid(message, field=field)
    if idempotency_key is not None:
        idempotency_key = idempotency_key.strip()
        if not idempotency_key or len(idempotency_key) > IDEMPOTENCY_KEY_MAX_LENGTH:
            raise CheckoutRequestInvalid(
                f"The Idempotency-Key header must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} characters long.",
                field="Idempotency-Key",
            )
    return CheckoutRequest(
        item_id=form.cleaned_data["item_id"],
        quantity=form.cleaned_data["quantity"],
        idempotency_key=idempotency_key,
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
