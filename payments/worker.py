"""The worker: claim a batch of due events, process each in its own transaction, then send the signals that
processing made due; between batches, send any signal a crash left owed. A dead worker's claims lapse with
their lease; every step is a conditional UPDATE, so nothing is done twice. A lost database is waited for."""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection
from django.utils import timezone

from orders.signals import order_fulfillment_signal_send, signal_send, signals_for_order, signals_owed
from payments.emails import emails_send_due, emails_sending_expire
from payments.handlers import EventOutcome
from payments.inbox import (
    retry_delay,
    stripe_event_process_claimed,
    stripe_events_claim,
    stripe_events_release,
)

logger = logging.getLogger(__name__)

DATABASE_LOST = (OperationalError, InterfaceError)
PROGRESS_EVERY_SECONDS = 60.0


@dataclass
class Worker:
    """One worker loop; `stop()` from a signal handler lets it finish the event in hand and give back the
    rest of its batch."""

    batch_size: int = 50
    poll_seconds: float = 1.0
    name: str = "worker"
    stopping: threading.Event = field(default_factory=threading.Event)
    processed: int = 0
    # Owed signals whose receiver raised here: when this worker may try each again (backoff, in memory).
    _retry_at: dict[tuple[str, object], tuple[int, float]] = field(default_factory=dict)
    _next_sweep: float = 0.0

    def stop(self) -> None:
        self.stopping.set()

    def run(self, *, once: bool = False) -> int:
        """Process events until stopped (or, with `once`, until none is due); return how many."""
        logger.info(
            "%s: started (batch %d, lease %ss)", self.name, self.batch_size, settings.WORKER_LEASE_SECONDS
        )
        reported, since = time.monotonic(), self.processed
        while not self.stopping.is_set():
            try:
                done = self.run_batch()
                if time.monotonic() >= self._next_sweep or (once and not done):
                    self.sweep()
            except DATABASE_LOST as exc:
                self._database_lost(exc)
                continue
            finally:
                close_old_connections()
            if time.monotonic() - reported >= PROGRESS_EVERY_SECONDS:
                rate = (self.processed - since) / (time.monotonic() - reported)
                logger.info("%s: %d events processed, %.1f a second lately", self.name, self.processed, rate)
                reported, since = time.monotonic(), self.processed
            if not done:
                if once:
                    break
                self.stopping.wait(self.poll_seconds)
        logger.info("%s: stopped after %d events", self.name, self.processed)
        return self.processed

    def run_batch(self) -> int:
        """Claim a batch and process it, then send the customer e-mails due; return how much was done."""
        lease = timedelta(seconds=settings.WORKER_LEASE_SECONDS)
        claimed = stripe_events_claim(limit=self.batch_size, lease=lease)
        for index, event in enumerate(claimed):
            if self.stopping.is_set():
                released = stripe_events_release(pks=[rest.pk for rest in claimed[index:]])
                logger.info("%s: stopping, %d claimed events given back", self.name, released)
                break
            outcome = stripe_event_process_claimed(event)
            self.processed += 1
            if outcome.order_id and outcome.owes:
                self.send_owed(outcome)
        # E-mails count as work done, so the loop does not sleep while some are due.
        return len(claimed) + (0 if self.stopping.is_set() else emails_send_due())

    def send_owed(self, outcome: EventOutcome) -> None:
        """Send, right after the commit that made them due, the signals the event's processing owes."""
        for kind in outcome.owes:
            if kind == "fulfillment":
                # The claim alone finds whether it is owed; the event in hand is what receivers are told.
                send = partial(
                    order_fulfillment_signal_send,
                    order_id=outcome.order_id,
                    source=outcome.source,
                    stripe_event_id=outcome.stripe_id,
                )
                self._send(kind, outcome.order_id, send)
                continue
            for owed_kind, pk in signals_for_order(order_id=outcome.order_id, kinds=[kind]):
                self._send(owed_kind, pk, partial(signal_send, owed_kind, pk))

    def sweep(self, *, grace: timedelta | None = None) -> int:
        """Send the signals owed for longer than the grace (its sender died, a receiver raised, an operator's
        refund); count them. The grace (WORKER_SWEEP_SECONDS) keeps it from racing a signal's own sender."""
        every = settings.WORKER_SWEEP_SECONDS
        self._next_sweep = time.monotonic() + every
        emails_sending_expire()  # customer e-mails whose worker died mid-send: failed, never sent twice
        sent = 0
        grace = timedelta(seconds=every) if grace is None else grace
        for kind, pk in signals_owed(changed_before=timezone.now() - grace):
            if self._retry_at.get((kind, pk), (0, 0.0))[1] <= time.monotonic():
                sent += self._send(kind, pk, partial(signal_send, kind, pk))
        return sent

    def _send(self, kind: str, pk: object, send: Callable[[], bool]) -> bool:
        """Send one signal; when a receiver raises, leave it owed and try again after a backoff."""
        try:
            sent = send()
        except DATABASE_LOST:
            raise
        except Exception as exc:
            attempts = self._retry_at.get((kind, pk), (0, 0.0))[0] + 1
            delay = retry_delay(attempt=attempts).total_seconds()
            self._retry_at[(kind, pk)] = (attempts, time.monotonic() + delay)
            logger.warning(
                "%s %s signal failed on attempt %d (%s: %s): left owed, tried again in %.0f s",
                kind,
                pk,
                attempts,
                type(exc).__name__,
                exc,
                delay,
                exc_info=exc,
            )
            return False
        self._retry_at.pop((kind, pk), None)
        return sent

    def _database_lost(self, exc: Exception) -> None:
        logger.error("%s: the database failed (%s: %s); waiting for it", self.name, type(exc).__name__, exc)
        while not self.stopping.wait(1.0):
            try:
                connection.close()
                connection.ensure_connection()
                return
            except DATABASE_LOST:
                continue
