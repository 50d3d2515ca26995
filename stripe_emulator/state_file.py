"""Keep the emulator's state in a JSON file, so a restart (`--state-file PATH`) carries on where it was.

Kept: every object (products, prices, shipping rates, coupons, promotion codes, Checkout Sessions and
their line items, payment intents, charges, refunds, disputes), every event with whether its webhook
was delivered, what each session holds privately (a delayed payment's coming outcome, tampered totals),
and the idempotency keys with the answers they replay.

Not kept: the config (it comes from the command line and POST /_emulator/config on each start), and
anything scheduled to happen later:
- Webhook deliveries queued, retrying or held are dropped. Their events stay listed, with
  pending_webhooks=1, so a reconcile that lists events (delivery_success=false) still finds them.
- A delayed payment waiting to settle is armed again when the emulator starts: it settles async_delay
  seconds later with the outcome chosen at payment, or at once through
  POST /_emulator/checkout/sessions/{id}/settle. A session is never left pending for good.
- A session whose expires_at passed while the emulator was down expires at the first sweep after the
  start (within a second), and checkout.session.expired is sent then.
- Open sessions' `url` is pointed at the address the emulator listens on now.

The file is rewritten whole after every change: written to a temporary file in the same directory,
then renamed over the old one, so a crash leaves either the old state or the new one, never half.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

from .idempotency import IdempotencyCache
from .store import Store

FORMAT = "stripe-emulator-state/1"


class StateFile:
    """Load the state at start; save it whenever the store or the idempotency keys changed."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        # One writer at a time, so an older snapshot never replaces a newer one.
        self._lock = threading.Lock()
        self._saved: tuple[int, int] | None = None

    def load(self, store: Store, idempotency: IdempotencyCache) -> bool:
        """Fill the store and the keys from the file; return False when there is no file yet."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return False
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"state file {self.path} is not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"state file {self.path} was not written by this emulator (no {FORMAT!r})")
        store.restore(data["store"])
        idempotency.restore(data["idempotency"])
        self._saved = (store.version, idempotency.version)
        return True

    def save(self, store: Store, idempotency: IdempotencyCache) -> None:
        """Write the state unless nothing changed since the last write; never call with store.lock held."""
        with self._lock:
            # Read the versions before taking the copies: a change in between is written now and
            # again next time, never skipped.
            versions = (store.version, idempotency.version)
            if versions == self._saved:
                return
            data = {"format": FORMAT, "store": store.dump(), "idempotency": idempotency.dump()}
            self._write(json.dumps(data, separators=(",", ":")))
            self._saved = versions

    def _write(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(text)
            # No fsync: the file has to survive a restart of the emulator, not a power cut.
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
