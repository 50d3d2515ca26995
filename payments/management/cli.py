"""What the payments commands share: reading ages, moments and words, and one reporter of their output."""

import argparse
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from orders import money
from orders.db import text_is_storable
from payments.exceptions import PaymentProviderNotConfigured

T = TypeVar("T")
PROGRESS_EVERY = 100
_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def storable(value: str) -> str:
    """Return a word of argv the database can hold; bytes that are not UTF-8 arrive as lone surrogates."""
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
            f"{option}: {value!r} is not an age: write a number and a unit (s, m, h, d or w): 15m, 2d."
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def since_parse(value: str, *, option: str, now: datetime | None = None) -> datetime:
    """Return the moment written as an ISO 8601 date or time (UTC unless it says) or an age (2d ago)."""
    if _AGE.match(value):
        return (now or timezone.now()) - age_parse(value, option=option)
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" and text else text)
    except ValueError:
        raise CommandError(
            f"{option}: {value!r} is neither an ISO 8601 time (2026-11-28T09:30:00Z) nor an age (1h, 2d)."
        ) from None
    return moment.replace(tzinfo=UTC) if timezone.is_naive(moment) else moment


def plural(count: int, noun: str, nouns: str = "") -> str:
    """Return '1 order', '2 orders', '0 orders' ('disputes' is a noun's own plural when given)."""
    return f"{count:,} {money.noun(count, noun, nouns)}"


def stopped_part_way(exc: Exception, done: str) -> CommandError:
    """Return the error a command stops with when Stripe or the database failed part way through. Running
    it again helps, and what was done counts, unless Stripe has no key: then only the fix is said."""
    if isinstance(exc, PaymentProviderNotConfigured):
        return CommandError(str(exc))
    return CommandError(f"{exc} {done} before that; run it again.")


def counted(counts: Counter[str]) -> str:
    """Return 'fixed 2, ignored 1': the counts of a summary, biggest first, ties by name."""
    return ", ".join(
        f"{count} {key}" for key, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )


class Reporter:
    """One command's output: progress, a table, lines, respecting its verbosity."""

    def __init__(self, command: BaseCommand, verbosity: int) -> None:
        self.command, self.verbosity = command, verbosity

    def progress(self, items: Iterable[T], *, total: int | None, unit: str, verb: str) -> Iterator[T]:
        """Yield the items, showing on stderr how far the command got: a bar on a terminal (log lines are
        written through it, so they never cut it), else "... 200 of 1,000 orders audited" lines."""
        if self.verbosity < 1:
            yield from items
            return
        if self.command.stderr.isatty():
            with (
                logging_redirect_tqdm(),
                tqdm(items, total=total, unit=unit, desc=verb, file=sys.stderr) as bar,
            ):
                yield from bar
            return
        seen = 0
        for seen, item in enumerate(items, start=1):
            if seen % PROGRESS_EVERY == 0 or seen == total:
                self.command.stderr.write(f"... {seen:,}{f' of {total:,}' if total else ''} {unit}s {verb}")
            yield item

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """Write rows under their column names, every column but the last padded to its widest cell."""
        if not rows:
            return
        widths = [max(len(row[i]) for row in (columns, *rows)) for i in range(len(columns) - 1)]
        for row in (columns, *rows):
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            self.command.stdout.write("  ".join([*cells, row[-1]]).rstrip())

    def line(self, text: str, *, level: int = 1, style: str = "") -> None:
        """Write a line at this verbosity or above, in a style of the command's (SUCCESS, WARNING...)."""
        if self.verbosity >= level:
            self.command.stdout.write(getattr(self.command.style, style)(text) if style else text)
