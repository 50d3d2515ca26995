"""The emulator's run-time configuration: webhook endpoint, secrets and knobs."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from .ids import new_id

TIMINGS = ("async", "before_redirect", "hold")
# Automatic tax's flat rate per country (ISO 3166-1 alpha-2); a country not listed has no tax.
DEFAULT_TAX_RATES = {
    "US": 0.0,
    "CA": 0.05,
    "GB": 0.20,
    "DE": 0.19,
    "FR": 0.20,
    "NL": 0.21,
    "IE": 0.23,
    "JP": 0.10,
    "AU": 0.10,
}
# How a refund settles: at once, or pending until the control API settles it.
REFUND_MODES = ("succeeded", "pending")


@dataclasses.dataclass
class Config:
    """Settings that change how the emulator delivers webhooks and settles payments."""

    webhook_url: str | None = None
    webhook_secrets: list[str] = dataclasses.field(default_factory=list)
    webhook_delay: float = 0.0
    webhook_timing: str = "async"
    duplicates: int = 1
    drop_rate: float = 0.0
    drop_next: int = 0
    async_delay: float = 2.0
    max_attempts: int = 5
    retry_backoff: float = 0.5
    delivery_timeout: float = 10.0
    seed: int | None = None
    refund_mode: str = "succeeded"
    pending_next_refunds: int = 0
    fail_next_refunds: int = 0
    tax_rates: dict[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_TAX_RATES))

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-ready dict."""
        return dataclasses.asdict(self)


KNOBS = tuple(f.name for f in dataclasses.fields(Config))


def _non_negative_float(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if number < 0 or number != number:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return number


def _int_at_least(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if number != float(value) or number < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return number


def _tax_rates(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ValueError('tax_rates must be an object of country codes to rates, such as {"DE": 0.19}')
    rates = {}
    for country, rate in value.items():
        if not (isinstance(country, str) and len(country) == 2 and country.isalpha() and country.isupper()):
            raise ValueError(f"tax_rates keys must be two-letter country codes such as DE, got {country!r}")
        number = _non_negative_float(f"tax_rates[{country}]", rate)
        if number >= 1:
            raise ValueError(f"tax_rates[{country}] must be a fraction below 1 (0.19 for 19%), got {rate!r}")
        rates[country] = number
    return rates


def coerce(name: str, value: Any) -> Any:
    """Validate one setting and return it in its canonical type."""
    if name == "webhook_url":
        if value in (None, ""):
            return None
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            raise ValueError(f"webhook_url must be an http(s) URL, got {value!r}")
        return value
    if name == "webhook_secrets":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(s, str) and s for s in value):
            raise ValueError("webhook_secrets must be a list of non-empty strings")
        return list(value)
    if name == "webhook_timing":
        if value not in TIMINGS:
            raise ValueError(f"webhook_timing must be one of {', '.join(TIMINGS)}")
        return value
    if name in ("duplicates", "max_attempts"):
        return _int_at_least(name, value, 1)
    if name == "refund_mode":
        if value not in REFUND_MODES:
            raise ValueError(f"refund_mode must be one of {', '.join(REFUND_MODES)}")
        return value
    if name in ("drop_next", "pending_next_refunds", "fail_next_refunds"):
        return _int_at_least(name, value, 0)
    if name == "drop_rate":
        rate = _non_negative_float(name, value)
        if rate > 1:
            raise ValueError(f"drop_rate must be between 0 and 1, got {value!r}")
        return rate
    if name == "seed":
        return None if value is None else _int_at_least(name, value, -(2**63))
    if name in ("webhook_delay", "async_delay", "retry_backoff", "delivery_timeout"):
        return _non_negative_float(name, value)
    if name == "tax_rates":
        return _tax_rates(value)
    raise ValueError(f"unknown setting: {name}")


class ConfigHolder:
    """Hold the Config behind a lock so threads read consistent snapshots."""

    def __init__(self, **settings: Any) -> None:
        self._lock = threading.Lock()
        self._config = Config()
        self.update(**settings)
        if not self._config.webhook_secrets:
            self._config.webhook_secrets = [new_id("whsec_")]

    def snapshot(self) -> Config:
        """Return a copy of the current settings."""
        with self._lock:
            return dataclasses.replace(
                self._config,
                webhook_secrets=list(self._config.webhook_secrets),
                tax_rates=dict(self._config.tax_rates),
            )

    def update(self, **changes: Any) -> Config:
        """Validate and apply a partial update atomically; return the new settings."""
        coerced = {name: coerce(name, value) for name, value in changes.items()}
        with self._lock:
            for name, value in coerced.items():
                setattr(self._config, name, value)
        return self.snapshot()

    def take_drop_next(self) -> bool:
        """Consume one deterministic drop if any are left."""
        return self.take_one("drop_next")

    def take_one(self, counter: str) -> bool:
        """Decrement a "next N" counter (drop_next, fail_next_refunds...) if it is above zero."""
        with self._lock:
            left = getattr(self._config, counter)
            if left > 0:
                setattr(self._config, counter, left - 1)
                return True
            return False
