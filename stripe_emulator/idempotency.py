"""Replay POST responses for a repeated Idempotency-Key, as Stripe does."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .errors import StripeError

KEY_TTL = 24 * 60 * 60
MAX_KEYS = 10_000


@dataclasses.dataclass
class SavedResult:
    """The first response given for an idempotency key."""

    path: str
    params: dict[str, Any]
    status: int
    body: bytes
    request_id: str
    saved_at: float


class IdempotencyCache:
    """Remember successful POST results per (API key, idempotency key)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._results: OrderedDict[tuple[str, str], SavedResult] = OrderedDict()
        self._key_locks: dict[tuple[str, str], tuple[threading.Lock, int]] = {}
        # Moves whenever a result is saved or forgotten, for the state file.
        self.version = 0

    def clear(self) -> None:
        """Forget every saved result."""
        with self._lock:
            self._results.clear()
            self.version += 1

    def dump(self) -> list[dict[str, Any]]:
        """Return the saved results, oldest first, JSON-ready."""
        with self._lock:
            return [
                {"scope": scope, "key": key, **dataclasses.asdict(saved), "body": saved.body.decode()}
                for (scope, key), saved in self._results.items()
            ]

    def restore(self, entries: list[dict[str, Any]]) -> None:
        """Replace the saved results with what dump() returned."""
        with self._lock:
            self._results.clear()
            for entry in entries:
                fields = {name: value for name, value in entry.items() if name not in ("scope", "key")}
                fields["body"] = fields["body"].encode()
                self._results[(entry["scope"], entry["key"])] = SavedResult(**fields)
            self.version += 1

    def run(
        self,
        scope: str,
        key: str,
        path: str,
        params: dict[str, Any],
        execute: Callable[[], tuple[int, bytes, str]],
    ) -> tuple[SavedResult, bool]:
        """Replay the key's saved result, or execute (-> status, body, request id) and save it."""
        # Only 2xx results are saved: as on Stripe, a request that failed validation may be
        # retried with the same key.
        ident = (scope, key)
        self._acquire_key_lock(ident)
        try:
            with self._lock:
                saved = self._lookup(ident)
            if saved is not None:
                _check_same_request(saved, key, path, params)
                return saved, True
            status, body, request_id = execute()
            result = SavedResult(path, params, status, body, request_id, time.time())
            if 200 <= status < 300:
                with self._lock:
                    self._results[ident] = result
                    self.version += 1
                    while len(self._results) > MAX_KEYS:
                        self._results.popitem(last=False)
            return result, False
        finally:
            self._release_key_lock(ident)

    def _lookup(self, ident: tuple[str, str]) -> SavedResult | None:
        saved = self._results.get(ident)
        if saved is not None and time.time() - saved.saved_at > KEY_TTL:
            del self._results[ident]
            return None
        return saved

    def _acquire_key_lock(self, ident: tuple[str, str]) -> None:
        # Concurrent requests with one key run one at a time, so only one creates objects.
        with self._lock:
            lock, users = self._key_locks.get(ident, (threading.Lock(), 0))
            self._key_locks[ident] = (lock, users + 1)
        lock.acquire()

    def _release_key_lock(self, ident: tuple[str, str]) -> None:
        with self._lock:
            lock, users = self._key_locks[ident]
            lock.release()
            if users == 1:
                del self._key_locks[ident]
            else:
                self._key_locks[ident] = (lock, users - 1)


def _check_same_request(saved: SavedResult, key: str, path: str, params: dict[str, Any]) -> None:
    if saved.path != path:
        raise StripeError(
            400,
            "Keys for idempotent requests can only be used for the same endpoint they were "
            f"first used for ('{saved.path}' vs '{path}'). Try using a key other than "
            f"'{key}' if you meant to execute a different request.",
            type="idempotency_error",
        )
    if saved.params != params:
        raise StripeError(
            400,
            "Keys for idempotent requests can only be used with the same parameters they "
            f"were first used with. Try using a key other than '{key}' if you meant to "
            "execute a different request.",
            type="idempotency_error",
        )
