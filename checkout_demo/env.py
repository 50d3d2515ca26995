"""Typed readers for settings that come from the environment: a value that does not parse stops start-up."""

import ipaddress
import os
import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from django.core.exceptions import ImproperlyConfigured

Number = TypeVar("Number", int, float)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if (value := raw.strip().lower()) not in _TRUE | _FALSE:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use true or false.")
    return value in _TRUE


def env_int(name: str, default: int) -> int:
    return _env_number(name, default, int, "an integer")


def env_float(name: str, default: float) -> float:
    return _env_number(name, default, float, "a number")


def _env_number(name: str, default: Number, parse: Callable[[str], Number], kind: str) -> Number:
    raw = env_str(name)
    if not raw:
        return default
    try:
        return parse(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not {kind}.") from None


def env_list(name: str, default: str = "") -> list[str]:
    """Return a comma-separated variable as a list of its non-empty items."""
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


_RATE = re.compile(r"^(\d+)/(\d*)([smhd])$")
_PERIOD_SECONDS = {"s": 1, "m": 60, "h": 60 * 60, "d": 24 * 60 * 60}


def env_rate(name: str, default: str) -> tuple[int, int] | None:
    """Return a rate such as `10/m` or `100/5m` as (requests, seconds), or None for `off`."""
    raw = env_str(name, default)
    if raw.lower() == "off":
        return None
    match = _RATE.match(raw.lower())
    count, multiplier = (int(match[1]), int(match[2] or 1)) if match else (0, 0)
    if count < 1 or multiplier < 1:
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not a rate: write requests/period, such as 10/m, 300/m, 100/5m or 1000/h "
            "(s, m, h, d), with at least 1 request, or off."
        )
    return count, multiplier * _PERIOD_SECONDS[match[3]]


def env_networks(
    name: str, aliases: dict[str, Sequence[str]] | None = None
) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Return a comma-separated list of addresses and networks (and named lists) as networks."""
    networks = []
    for item in env_list(name):
        for value in (aliases or {}).get(item.lower(), [item]):
            try:
                networks.append(ipaddress.ip_network(value, strict=False))
            except ValueError:
                known = f", or {', '.join(aliases)}" if aliases else ""
                raise ImproperlyConfigured(
                    f"{name}: {value!r} is not an IP address or network: list addresses such as "
                    f"203.0.113.7 or 203.0.113.0/24, comma separated{known}."
                ) from None
    return networks
