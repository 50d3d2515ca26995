"""The fields a log line carries beside its message: the request, the event and the order it concerns.

A request, an event's processing or an order's change sets them for as long as it runs; the logging
filter (checkout_demo.logs) puts them on every record, so a log system indexes them and one query tells
an order's story. Context variables, so each thread and each request keeps its own.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_fields: ContextVar[dict[str, str] | None] = ContextVar("log_fields", default=None)


@contextmanager
def log_fields(**fields: object) -> Iterator[None]:
    """Add these fields to every log line written inside the block (empty values are left out)."""
    token = _fields.set(_with(fields))
    try:
        yield
    except Exception as exc:
        # An error is reported after the blocks it left have ended: the innermost one names it.
        if not hasattr(exc, "log_fields"):
            exc.log_fields = current_log_fields()
        raise
    finally:
        _fields.reset(token)


def log_bind(**fields: object) -> None:
    """Add fields to the rest of the enclosing block, once they are known (the order an event names)."""
    _fields.set(_with(fields))


def current_log_fields() -> dict[str, str]:
    return _fields.get() or {}


def _with(fields: dict[str, object]) -> dict[str, str]:
    return {**current_log_fields(), **{name: str(value) for name, value in fields.items() if value}}
