"""Decode Stripe's bracket-notation form encoding into nested dicts and lists."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from .errors import StripeError

_KEY_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT_RE = re.compile(r"\[([^\[\]]*)\]")

# Marks a node built from `key[]=` pushes so it is turned into a list later.
_APPEND = object()


def decode(text: str) -> dict[str, Any]:
    """Decode a form-encoded string with bracket keys into nested data."""
    pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False)
    return decode_pairs(pairs)


def decode_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Decode (key, value) pairs with bracket keys into nested data."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        path = _split_key(key)
        _assign(root, path, value, key)
    return _finalize(root)


def _split_key(key: str) -> list[str]:
    match = _KEY_RE.match(key)
    if not match:
        raise StripeError.invalid(f"Invalid parameter name: {key}", param=key)
    return [match.group(1), *_SEGMENT_RE.findall(match.group(2))]


def _assign(node: dict[str, Any], path: list[str], value: str, key: str) -> None:
    for i, segment in enumerate(path):
        last = i == len(path) - 1
        if segment == "":
            # `expand[]=a&expand[]=b`: give each push its own index.
            segment = str(sum(1 for k in node if k.isdigit()))
        if last:
            if isinstance(node.get(segment), dict):
                raise _conflict(key)
            node[segment] = value
            return
        child = node.setdefault(segment, {})
        if not isinstance(child, dict):
            raise _conflict(key)
        node = child


def _conflict(key: str) -> StripeError:
    return StripeError.invalid(
        f"Invalid value for {key}: a parameter cannot be both a value and a hash.",
        param=key,
    )


def _finalize(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    done = {k: _finalize(v) for k, v in node.items()}
    if done and all(k.isdigit() for k in done):
        return [done[k] for k in sorted(done, key=int)]
    return done
