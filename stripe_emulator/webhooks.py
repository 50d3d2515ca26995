"""Sign webhook payloads like Stripe and deliver them with retries and knobs."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import http.client
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from .config import ConfigHolder
from .scheduler import Scheduler

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
CONTENT_TYPE = "application/json; charset=utf-8"


def compute_signature(payload: str, secret: str, timestamp: int) -> str:
    """Return the hex HMAC-SHA256 of "{timestamp}.{payload}" keyed with `secret`."""
    signed = f"{timestamp}.{payload}".encode()
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(payload: str, secrets: list[str], timestamp: int) -> str:
    """Return a Stripe-Signature header value with one v1 entry per secret."""
    parts = [f"t={timestamp}"]
    parts += [f"v1={compute_signature(payload, s, timestamp)}" for s in secrets]
    return ",".join(parts)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Treat redirects as failed deliveries, as Stripe does."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# Proxies are ignored: the endpoint is a local app, never reached through a proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


@dataclasses.dataclass
class Delivery:
    """One copy of one event on its way to the endpoint."""

    event_id: str
    type: str
    copy: int
    status: str
    url: str | None
    body: str
    attempts: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    first_attempt_done: threading.Event = dataclasses.field(default_factory=threading.Event)

    def to_dict(self) -> dict[str, Any]:
        """Return the delivery log entry."""
        return {
            "event_id": self.event_id,
            "type": self.type,
            "copy": self.copy,
            "status": self.status,
            "url": self.url,
            "attempts": [dict(a) for a in self.attempts],
        }


class Dispatcher:
    """Queue, sign, send and retry webhook deliveries; keep the delivery log."""

    def __init__(
        self, config: ConfigHolder, scheduler: Scheduler, on_delivered: Callable[[str], None]
    ) -> None:
        self._config = config
        self._scheduler = scheduler
        self._on_delivered = on_delivered
        self._cond = threading.Condition()
        self._log: list[Delivery] = []
        self._held: list[Delivery] = []
        self._active = 0
        self._generation = 0
        self._rng = random.Random(config.snapshot().seed)

    def publish(
        self, event_id: str, event_type: str, body: str, *, wait_first_attempt: bool = False
    ) -> list[Delivery]:
        """Queue the deliveries of one event according to the current knobs."""
        cfg = self._config.snapshot()
        with self._cond:
            rng = self._rng
            if cfg.webhook_url is None:
                status = "no_endpoint"
            elif self._config.take_drop_next() or (cfg.drop_rate > 0 and rng.random() < cfg.drop_rate):
                status = "dropped"
            elif cfg.webhook_timing == "hold":
                status = "held"
            else:
                status = "pending"
            copies = 1 if status == "no_endpoint" else cfg.duplicates
            deliveries = [
                Delivery(event_id, event_type, n, status, cfg.webhook_url, body) for n in range(copies)
            ]
            self._log.extend(deliveries)
            if status == "held":
                self._held.extend(deliveries)
            if status != "pending":
                for delivery in deliveries:
                    delivery.first_attempt_done.set()
                return deliveries
            self._active += copies
            order = list(deliveries)
            rng.shuffle(order)
            generation = self._generation
        for delivery in order:
            self._schedule(delivery, cfg.webhook_delay, generation)
        if wait_first_attempt:
            limit = cfg.webhook_delay + cfg.delivery_timeout + 5.0
            for delivery in deliveries:
                delivery.first_attempt_done.wait(limit)
        return deliveries

    def release(self) -> int:
        """Send every held delivery now (after webhook_delay); return how many."""
        cfg = self._config.snapshot()
        with self._cond:
            held, self._held = self._held, []
            for delivery in held:
                delivery.status = "pending"
            self._active += len(held)
            generation = self._generation
        for delivery in held:
            self._schedule(delivery, cfg.webhook_delay, generation)
        return len(held)

    def wait_for_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no delivery is pending or in flight; held ones do not count."""
        with self._cond:
            return self._cond.wait_for(lambda: self._active == 0, timeout)

    def log(self) -> list[dict[str, Any]]:
        """Return the delivery log, oldest first."""
        with self._cond:
            return [d.to_dict() for d in self._log]

    def reset(self) -> None:
        """Forget the log and abandon every queued or held delivery."""
        with self._cond:
            self._generation += 1
            for delivery in self._log:
                delivery.first_attempt_done.set()
            self._log = []
            self._held = []
            self._active = 0
            self._rng = random.Random(self._config.snapshot().seed)
            self._cond.notify_all()

    def reseed(self, seed: int | None) -> None:
        """Restart the drop and shuffle randomness from `seed` (None: unpredictable)."""
        with self._cond:
            self._rng = random.Random(seed)

    def _schedule(self, delivery: Delivery, delay: float, generation: int) -> None:
        self._scheduler.call_later(delay, lambda: self._attempt(delivery, generation))

    def _attempt(self, delivery: Delivery, generation: int) -> None:
        if generation != self._generation:
            return
        cfg = self._config.snapshot()
        status_code, error = self._send(delivery, cfg.webhook_secrets, cfg.delivery_timeout)
        succeeded = status_code is not None and 200 <= status_code < 300
        if succeeded:
            # Before the delivery counts as done, so idle waiters see pending_webhooks=0.
            self._on_delivered(delivery.event_id)
        with self._cond:
            if generation != self._generation:
                return
            delivery.attempts.append({"at": time.time(), "status_code": status_code, "error": error})
            retry_in = None
            if succeeded:
                delivery.status = "delivered"
            elif len(delivery.attempts) < cfg.max_attempts:
                retry_in = cfg.retry_backoff * 2 ** (len(delivery.attempts) - 1)
            else:
                delivery.status = "failed"
            if retry_in is None:
                self._active -= 1
                self._cond.notify_all()
        delivery.first_attempt_done.set()
        if retry_in is not None:
            self._schedule(delivery, retry_in, generation)

    @staticmethod
    def _send(delivery: Delivery, secrets: list[str], timeout: float) -> tuple[int | None, str | None]:
        assert delivery.url is not None
        header = signature_header(delivery.body, secrets, int(time.time()))
        request = urllib.request.Request(
            delivery.url,
            data=delivery.body.encode(),
            method="POST",
            headers={
                "Content-Type": CONTENT_TYPE,
                "User-Agent": USER_AGENT,
                "Stripe-Signature": header,
                "Accept": "*/*; q=0.5, application/xml",
                "Cache-Control": "no-cache",
            },
        )
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                response.read()
                return response.status, None
        except urllib.error.HTTPError as exc:
            exc.read()
            exc.close()
            return exc.code, None
        except (OSError, ValueError, http.client.HTTPException) as exc:
            # HTTPException: the endpoint broke off its answer (IncompleteRead), as a killed worker does.
            reason = getattr(exc, "reason", exc)
            return None, f"{type(exc).__name__}: {reason}"
