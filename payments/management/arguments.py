"""Read the command-line values the payments commands share: ages (15m, 2d) and moments (--since)."""

import argparse
import re
from datetime import datetime, timedelta

from django.core.management.base import CommandError
from django.utils import timezone

from orders.db import text_is_storable

_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def storable(value: str) -> str:
    """Return a command-line word that a database column can hold (argv of bytes that are not UTF-8 is
    decoded with lone surrogates), or refuse it with a usage message."""
    if not text_is_storable(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} holds a character that cannot be stored (not UTF-8 text?)"
        )
    return value


def age_parse(value: str, *, option: str) -> timedelta:
    """Return the duration written as a number and a unit: 90s, 15m, 1h, 2d, 1w."""
    match = _AGE.match(value)
    if not match:
        raise CommandError(
            f"{option}: {value!r} is not an age: write a number and a unit (s, m, h, d or w), "
            "as in 15m or 2d."
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def since_parse(value: str, *, option: str, now: datetime | None = None) -> datetime:
    """Return the moment written as an ISO 8601 date or time (UTC unless it says) or an age (2d ago)."""
    if _AGE.match(value):
        return (now or timezone.now()) - age_parse(value, option=option)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"{option}: {value!r} is neither an ISO 8601 time (2026-11-28T09:30:00Z, 2026-11-28) "
            "nor an age (1h, 2d)."
        ) from None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_current_timezone())
    return moment
