"""Record events in the store and hand them to the webhook dispatcher."""

from __future__ import annotations

import json
import time
from typing import Any

from . import objects
from .config import ConfigHolder
from .store import EventRecord, Store
from .webhooks import Dispatcher


class EventEmitter:
    """Create events (under the store lock) and publish them (outside it)."""

    def __init__(self, store: Store, config: ConfigHolder, dispatcher: Dispatcher) -> None:
        self._store = store
        self._config = config
        self._dispatcher = dispatcher

    def record(
        self,
        event_type: str,
        data_object: dict[str, Any],
        *,
        request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> EventRecord:
        """Store an event holding a snapshot of `data_object`; call with the lock held."""
        event = objects.event(
            type=event_type,
            data_object=data_object,
            request_id=request_id,
            idempotency_key=idempotency_key,
            created=int(time.time()),
        )
        has_endpoint = self._config.snapshot().webhook_url is not None
        return self._store.add_event(event, has_endpoint=has_endpoint)

    def publish(self, record: EventRecord, *, wait_first_attempt: bool = False) -> None:
        """Queue the webhook deliveries of a recorded event; call without the lock."""
        with self._store.lock:
            body = json.dumps(record.view(), indent=2)
        self._dispatcher.publish(
            record.event["id"], record.event["type"], body, wait_first_attempt=wait_first_attempt
        )
