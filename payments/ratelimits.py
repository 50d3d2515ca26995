"""How many checkouts one client, and the whole shop, may start: counters in Django's cache.

django-ratelimit keeps the counters (fixed windows, one cache key per client and window, an atomic
`incr`); this module decides what is counted and what a refusal says. Its app is not installed: its
system check calls local memory "not shared" and Django's own RedisCache "not officially supported",
although both increment atomically; local memory is the development default, Redis the production one.
"""

import ipaddress
import logging
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage

from checkout_demo.clients import client_address

logger = logging.getLogger(__name__)

GROUP = "checkout-create"  # the form and the JSON API share one budget
# A client with IPv6 usually holds a whole /64; counting single addresses would let it rotate freely.
IPV6_PREFIX = 64


@dataclass(frozen=True)
class CheckoutThrottled:
    """A checkout refused by a rate limit, and how long until the limit lets it through."""

    retry_after: int
    message: str


def checkout_throttle(*, request: HttpRequest) -> CheckoutThrottled | None:
    """Count one checkout attempt; return why to refuse it when it is over a limit, else None.

    The client's own limit is counted first, so one client over its limit does not use up everyone's.
    """
    limits = (
        (
            "per client",
            settings.CHECKOUT_RATE_LIMIT,
            _client_key,
            "Too many checkout attempts from your address.",
        ),
        (
            "overall",
            settings.CHECKOUT_RATE_LIMIT_GLOBAL,
            _everyone_key,
            "The shop is receiving too many checkout attempts right now.",
        ),
    )
    for label, rate, key, reason in limits:
        if rate is None:
            continue
        wait = _seconds_over_limit(request, rate=rate, key=key)
        if wait is not None:
            logger.warning(
                "checkout refused by the %s rate limit of %d per %ds for %s, retry in %ds",
                label,
                rate[0],
                rate[1],
                client_address(request),
                wait,
            )
            return CheckoutThrottled(
                retry_after=wait,
                message=f"{reason} Nothing was charged. Please try again in {_seconds(wait)}.",
            )
    return None


def _seconds_over_limit(request: HttpRequest, *, rate: tuple[int, int], key) -> int | None:
    try:
        usage = get_usage(request, group=GROUP, key=key, rate=rate, increment=True)
    except Exception as exc:  # any cache failure (Redis down, a timeout)
        # Fail open: the limiter protects the shop, and an outage of its cache must not stop every sale.
        logger.error("checkout rate limit not counted, cache unavailable: %s", exc)
        return None
    # limit 0 is django-ratelimit's answer when the cache lost the counter: treated as open, as above.
    if usage is None or not usage["should_limit"] or usage["limit"] == 0:
        return None
    return max(1, usage["time_left"])


def _client_key(group: str, request: HttpRequest) -> str:
    address = client_address(request)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"  # no usable address (a Unix socket without a proxy): these share one counter
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/{IPV6_PREFIX}", strict=False).network_address)
    return str(ip)


def _everyone_key(group: str, request: HttpRequest) -> str:
    return "everyone"


def _seconds(count: int) -> str:
    return "1 second" if count == 1 else f"{count} seconds"
