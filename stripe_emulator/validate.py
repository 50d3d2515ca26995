"""Check and coerce decoded form parameters, failing with Stripe's messages."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import StripeError

METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500


def child(prefix: str, key: str | int) -> str:
    """Return the bracket-notation name of `key` inside `prefix`."""
    return f"{prefix}[{key}]" if prefix else str(key)


def reject_unknown(params: dict[str, Any], allowed: Iterable[str], prefix: str = "") -> None:
    """Fail on the first parameter not in `allowed`."""
    allowed = set(allowed)
    for key in params:
        if key not in allowed:
            raise StripeError.unknown_param(child(prefix, key))


def as_hash(value: Any, param: str) -> dict[str, Any]:
    """Return `value` if it was sent as a hash (`param[key]=...`)."""
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise StripeError.invalid(
            f"Invalid object: {param} must be a hash (use {param}[key]=value)", param=param
        )
    return value


def as_array(value: Any, param: str) -> list[Any]:
    """Return `value` if it was sent as an array (`param[0]=...`)."""
    if isinstance(value, str):
        return [value] if value else []
    if not isinstance(value, list):
        raise StripeError.invalid("Invalid array", param=param)
    return value


def as_string(value: Any, param: str, *, max_length: int | None = None) -> str:
    """Return `value` if it is a string within `max_length` characters."""
    if not isinstance(value, str):
        raise StripeError.invalid(f"Invalid string: {param} must be a string", param=param)
    if max_length is not None and len(value) > max_length:
        shown = value if len(value) <= 30 else value[:30] + "..."
        raise StripeError.invalid(
            f"Invalid string: {shown}; must be at most {max_length} characters",
            param=param,
        )
    return value


def required_string(
    params: dict[str, Any], key: str, param: str | None = None, *, max_length: int | None = None
) -> str:
    """Return a required, non-empty string parameter."""
    param = param or key
    if key not in params:
        raise StripeError.missing_param(param)
    value = as_string(params[key], param, max_length=max_length)
    if value == "":
        raise empty_value(param)
    return value


def optional_string(
    params: dict[str, Any], key: str, param: str | None = None, *, max_length: int | None = None
) -> str | None:
    """Return a string parameter, treating absent or empty as None."""
    if key not in params or params[key] == "":
        return None
    return as_string(params[key], param or key, max_length=max_length)


def empty_value(param: str) -> StripeError:
    """Build Stripe's error for an empty string on a parameter that cannot be unset."""
    return StripeError.invalid(
        f"You passed an empty string for '{param}'. We assume empty values are an attempt "
        f"to unset a parameter; however '{param}' cannot be unset. You should remove "
        f"'{param}' from your request or supply a non-empty value.",
        param=param,
        code="parameter_invalid_empty",
    )


def as_int(value: Any, param: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return `value` as an integer within the given bounds."""
    text = value if isinstance(value, str) else None
    if text is None or not text.strip().lstrip("-").isdigit():
        raise StripeError.invalid(f"Invalid integer: {value}", param=param, code="parameter_invalid_integer")
    number = int(text)
    if minimum is not None and number < minimum:
        raise StripeError.invalid(
            f"This value must be greater than or equal to {minimum}.",
            param=param,
            code="parameter_invalid_integer",
        )
    if maximum is not None and number > maximum:
        raise StripeError.invalid(
            f"This value must be less than or equal to {maximum}.",
            param=param,
            code="parameter_invalid_integer",
        )
    return number


def as_bool(value: Any, param: str) -> bool:
    """Return `value` as a boolean ("true"/"false")."""
    if value in ("true", "false"):
        return value == "true"
    raise StripeError.invalid(f"Invalid boolean: {value}", param=param)


def as_currency(value: Any, param: str) -> str:
    """Return a lowercased three-letter ISO currency code."""
    code = as_string(value, param)
    if len(code) != 3 or not code.isalpha():
        raise StripeError.invalid(
            f"Invalid currency: {code.lower()}. Stripe currently supports these currencies: "
            "usd, eur, gbp, ... (any three-letter ISO code in this emulator)",
            param=param,
            code="parameter_invalid_string" if code else None,
        )
    return code.lower()


def metadata(value: Any, param: str = "metadata") -> dict[str, str]:
    """Return validated metadata; empty values mean unset and are left out."""
    data = as_hash(value, param)
    if len(data) > METADATA_MAX_KEYS:
        raise StripeError.invalid(
            f"Invalid {param}: metadata can have at most {METADATA_MAX_KEYS} keys, "
            f"but you passed in {len(data)} keys.",
            param=param,
        )
    result: dict[str, str] = {}
    for key, item in data.items():
        name = child(param, key)
        if len(key) > METADATA_MAX_KEY_LENGTH:
            raise StripeError.invalid(
                f"Invalid {param}: metadata keys can have at most "
                f"{METADATA_MAX_KEY_LENGTH} characters, but you passed in a key with "
                f"{len(key)} characters.",
                param=name,
            )
        if isinstance(item, (dict, list)):
            raise StripeError.invalid(f"Invalid {param}: metadata values must be strings", param=name)
        if len(item) > METADATA_MAX_VALUE_LENGTH:
            raise StripeError.invalid(
                f"Invalid {param}: metadata values can have at most "
                f"{METADATA_MAX_VALUE_LENGTH} characters, but you passed in a value with "
                f"{len(item)} characters.",
                param=name,
            )
        if item != "":
            result[key] = item
    return result


def expand_paths(params: dict[str, Any]) -> list[str]:
    """Return the `expand[]` paths of a request."""
    if "expand" not in params:
        return []
    paths = as_array(params["expand"], "expand")
    return [as_string(p, "expand") for p in paths if p != ""]


def url(value: Any, param: str) -> str:
    """Return `value` if it looks like an absolute http(s) URL."""
    text = as_string(value, param)
    if text == "":
        raise empty_value(param)
    scheme, _, rest = text.partition("://")
    if scheme.lower() not in ("http", "https") or not rest or rest.startswith("/"):
        raise StripeError.invalid("Not a valid URL", param=param, code="url_invalid")
    return text
