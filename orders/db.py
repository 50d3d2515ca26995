"""What the database can hold: text without NUL or lone surrogates, which PostgreSQL refuses outright."""

import logging
import re

logger = logging.getLogger(__name__)

# NUL and the UTF-16 surrogates, which cannot be encoded in UTF-8 on their own: JSON allows both (as
# \u0000 and \ud800), Python strings hold both, and a PostgreSQL text column takes neither.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_is_storable(value: str) -> bool:
    """Return whether a text column can hold the value as it is, on every database this project runs on."""
    return _UNSTORABLE.search(value) is None


def storable_text(value: str, *, max_length: int | None = None, field: str = "") -> str:
    """Return the value without what no text column can hold, cut to `max_length`; log what was lost.

    For text that Stripe sends and that only informs a person (a reason, an API version): storing less
    of it is better than failing the write it comes with.
    """
    cleaned = _UNSTORABLE.sub("", value)
    if max_length is not None and len(cleaned) > max_length:
        cleaned = cleaned[:max_length]
    if cleaned != value:
        logger.warning("%s stored shortened to fit its column: %r", field or "text", value[:80])
    return cleaned
