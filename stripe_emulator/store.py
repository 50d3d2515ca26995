"""Thread-safe in-memory state: the objects, the events and their order."""

from __future__ import annotations

import copy
import dataclasses
import heapq
import threading
from typing import Any

COLLECTIONS = (
    "products",
    "prices",
    "shipping_rates",
    "coupons",
    "promotion_codes",
    "sessions",
    "payment_intents",
    "charges",
    "refunds",
    "disputes",
)


@dataclasses.dataclass
class SessionState:
    """What the emulator knows about a session beyond its public fields."""

    line_items: list[dict[str, Any]]
    intent_metadata: dict[str, str]
    intent_description: str | None
    # "succeeded" or "failed" while a delayed payment waits to settle.
    pending_outcome: str | None = None
    # Amounts forced by POST /_emulator/checkout/sessions/{id}/tamper, laid over every recomputation.
    tampered: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class EventRecord:
    """An event plus whether it still waits for a successful webhook delivery."""

    event: dict[str, Any]
    seq: int
    has_endpoint: bool
    delivered: bool = False

    @property
    def pending_webhooks(self) -> int:
        """Return how many endpoints have not received the event yet."""
        return int(self.has_endpoint and not self.delivered)

    def view(self) -> dict[str, Any]:
        """Return a copy of the event with its current pending_webhooks."""
        data = copy.deepcopy(self.event)
        data["pending_webhooks"] = self.pending_webhooks
        return data


class Store:
    """Hold every object; callers take `lock` around read-modify-write sequences.

    `version` moves on every insert, event and delivery; code that changes a stored object in place
    without recording an event calls touch(), so the state file knows there is something to write.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.generation = 0
        self.version = 0
        self.clear()

    def touch(self) -> None:
        """Note a change made in place to a stored object."""
        with self.lock:
            self.version += 1

    def clear(self) -> None:
        """Forget every object and event."""
        with self.lock:
            self.generation += 1
            self.version += 1
            self._seq = 0
            self._objects: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in COLLECTIONS}
            self._order: dict[str, int] = {}
            self.session_state: dict[str, SessionState] = {}
            self._events: dict[str, EventRecord] = {}
            self._expiries: list[tuple[int, int, str]] = []

    def _next_seq(self) -> int:
        self._seq += 1
        self.version += 1
        return self._seq

    def add(self, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Insert an object and remember its insertion order."""
        with self.lock:
            self._objects[collection][obj["id"]] = obj
            seq = self._next_seq()
            self._order[obj["id"]] = seq
            if collection == "sessions":
                heapq.heappush(self._expiries, (obj["expires_at"], seq, obj["id"]))
            return obj

    def pop_due_sessions(self, now: float) -> list[dict[str, Any]]:
        """Return the sessions whose expires_at has passed, each only once."""
        with self.lock:
            due = []
            while self._expiries and self._expiries[0][0] <= now:
                _, _, session_id = heapq.heappop(self._expiries)
                due.append(self._objects["sessions"][session_id])
            return due

    def get(self, collection: str, object_id: str) -> dict[str, Any] | None:
        """Return the stored object (not a copy) or None."""
        with self.lock:
            return self._objects[collection].get(object_id)

    def newest_first(self, collection: str) -> list[dict[str, Any]]:
        """Return the stored objects of a collection, newest first."""
        with self.lock:
            items = list(self._objects[collection].values())
            return sorted(items, key=lambda o: (o["created"], self._order[o["id"]]), reverse=True)

    def where(self, collection: str, field: str, value: Any) -> list[dict[str, Any]]:
        """Return the stored objects whose `field` equals `value`, newest first."""
        with self.lock:
            return [o for o in self.newest_first(collection) if o.get(field) == value]

    def add_event(self, event: dict[str, Any], *, has_endpoint: bool) -> EventRecord:
        """Record a new event."""
        with self.lock:
            record = EventRecord(event=event, seq=self._next_seq(), has_endpoint=has_endpoint)
            self._events[event["id"]] = record
            return record

    def get_event(self, event_id: str) -> EventRecord | None:
        """Return an event record or None."""
        with self.lock:
            return self._events.get(event_id)

    def events_newest_first(self) -> list[EventRecord]:
        """Return every event record, newest first, stable for equal `created`."""
        with self.lock:
            return sorted(self._events.values(), key=lambda r: (r.event["created"], r.seq), reverse=True)

    def mark_delivered(self, event_id: str) -> None:
        """Note that one webhook delivery of the event succeeded."""
        with self.lock:
            record = self._events.get(event_id)
            if record is not None and not record.delivered:
                record.delivered = True
                self.version += 1

    def dump(self) -> dict[str, Any]:
        """Return everything held, JSON-ready (copies, so the caller may release the lock)."""
        with self.lock:
            return copy.deepcopy(
                {
                    "seq": self._seq,
                    "objects": self._objects,
                    "order": self._order,
                    "session_state": {
                        session_id: dataclasses.asdict(state)
                        for session_id, state in self.session_state.items()
                    },
                    "events": [
                        {
                            "event": r.event,
                            "seq": r.seq,
                            "has_endpoint": r.has_endpoint,
                            "delivered": r.delivered,
                        }
                        for r in self._events.values()
                    ],
                }
            )

    def restore(self, data: dict[str, Any]) -> None:
        """Replace everything held with what dump() returned."""
        with self.lock:
            self.clear()
            self._seq = data["seq"]
            for name in COLLECTIONS:
                self._objects[name] = data["objects"].get(name, {})
            self._order = data["order"]
            self.session_state = {
                session_id: SessionState(**state) for session_id, state in data["session_state"].items()
            }
            self._events = {r["event"]["id"]: EventRecord(**r) for r in data["events"]}
            self._expiries = [
                (s["expires_at"], self._order[s["id"]], s["id"])
                for s in self._objects["sessions"].values()
                if s["status"] == "open"
            ]
            heapq.heapify(self._expiries)
