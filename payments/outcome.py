"""What became of one Stripe event, from its handler up to a command's summary."""

import uuid
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EventOutcome:
    """One event's status after a run, why, and the order and session it concerns.

    `duplicate`: the event was already finished, so nothing changed. `error`: an unexpected error; the
    event is stored as failed, to be run again. In a dry run `status` is the stored status ("new" for
    an event not stored yet) and `reason` says what would be done.
    """

    stripe_id: str
    type: str
    status: str
    reason: str = ""
    order_id: uuid.UUID | None = None
    session_id: str = ""
    duplicate: bool = False
    error: bool = False

    @classmethod
    def of(cls, event: dict[str, Any], status: str, reason: str, **fields: Any) -> "EventOutcome":
        """Return the outcome of this event (a payload as Stripe sends it)."""
        return cls(event["id"], event["type"], status, reason, **fields)

    @property
    def reply(self) -> str:
        """Return the short text a webhook answer carries."""
        if self.duplicate:
            return f"duplicate: event already {self.status}"
        return f"{self.status}: {self.reason}"
