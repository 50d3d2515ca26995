"""Who a request comes from and what that allows (the client's address behind trusted proxies, the
webhook's and the metrics' allow-lists, the checkout's rate limits), and the HTTP shapes the views share.
"""

import hmac
import ipaddress
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django_ratelimit.core import get_usage

logger = logging.getLogger(__name__)

RATE_LIMIT_GROUP = "checkout-create"  # the form and the JSON API share one budget
# A client with IPv6 usually holds a whole /64; counting single addresses would let it rotate freely.
IPV6_PREFIX = 64


def client_address(request: HttpRequest) -> str:
    """Return the client's address: with TRUSTED_PROXY_COUNT = N, the N-th X-Forwarded-For entry from the
    right (the outermost trusted proxy's peer; entries further left are the client's own words), else, or
    when the header is short or malformed, REMOTE_ADDR."""
    remote, count = request.META.get("REMOTE_ADDR", ""), settings.TRUSTED_PROXY_COUNT
    forwarded = [entry.strip() for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if count <= 0 or len(forwarded) < count:
        return remote
    try:
        return str(ipaddress.ip_address(forwarded[-count]))
    except ValueError:
        return remote


def address_in_networks(
    address: str, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    """Return whether the address is in one of the networks; an empty or malformed address is in none."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    ip = getattr(ip, "ipv4_mapped", None) or ip  # a dual-stack listener reports IPv4 as ::ffff:a.b.c.d
    return any(ip in network for network in networks)


def _text(status: int, message: str) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def stripe_source_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Answer 403, before reading the body, to a client outside STRIPE_WEBHOOK_ALLOWED_IPS when it is set:
    the signature proves an event genuine, the address keeps everyone else away from the verifying code."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        allowed = settings.STRIPE_WEBHOOK_ALLOWED_IPS
        if allowed and not address_in_networks(address := client_address(request), allowed):
            logger.warning(
                "webhook refused: %s is not in STRIPE_WEBHOOK_ALLOWED_IPS", address or "no address"
            )
            return _text(403, "Forbidden: this address is not one that Stripe sends webhooks from.")
        return view(request, *args, **kwargs)

    return wrapper


def metrics_access_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Let through only scrapes METRICS_TOKEN and METRICS_ALLOWED_IPS allow (401 without the token, 403
    refused); with neither set, 404: the figures tell a stranger how busy the shop is."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        token, networks = settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS
        if not token and not networks:
            raise Http404("Metrics are off: set METRICS_TOKEN or METRICS_ALLOWED_IPS.")
        if networks and not address_in_networks(address := client_address(request), networks):
            logger.warning("metrics refused: %s is not in METRICS_ALLOWED_IPS", address or "no address")
            return _text(403, "Forbidden: this address may not read the metrics.")
        if token:
            scheme, _, presented = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
            if scheme.lower() != "bearer" or not presented.strip():
                response = _text(401, "Unauthorized: send Authorization: Bearer <METRICS_TOKEN>.")
                response["WWW-Authenticate"] = 'Bearer realm="metrics"'
                return response
            if not hmac.compare_digest(presented.strip().encode(), token.encode()):
                logger.warning("metrics refused: wrong bearer token from %s", client_address(request))
                return _text(403, "Forbidden: this token may not read the metrics.")
        return view(request, *args, **kwargs)

    return wrapper


@dataclass(frozen=True)
class CheckoutThrottled:
    """A checkout refused by a rate limit, and how long until the limit lets it through."""

    retry_after: int
    message: str


def checkout_throttle(*, request: HttpRequest) -> CheckoutThrottled | None:
    """Count one checkout attempt; return why to refuse it when it is over a limit, else None.

    The client's own limit comes first, so one client over it does not use up everyone's. django-ratelimit
    counts in Django's cache; its app is not installed, as its system check refuses locmem and Django's
    RedisCache, though both increment atomically.
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
            lambda group, request: "everyone",
            "The shop is receiving too many checkout attempts right now.",
        ),
    )
    for label, rate, key, reason in limits:
        if rate is None:
            continue
        try:
            usage = get_usage(request, group=RATE_LIMIT_GROUP, key=key, rate=rate, increment=True)
        except Exception as exc:  # any cache failure (Redis down, a timeout)
            # Fail open: the limiter protects the shop, and an outage of its cache must not stop every sale.
            logger.error("checkout rate limit not counted, cache unavailable: %s", exc)
            continue
        # limit 0 is django-ratelimit's answer when the cache lost the counter: treated as open, as above.
        if usage is None or not usage["should_limit"] or usage["limit"] == 0:
            continue
        wait = max(1, usage["time_left"])
        logger.warning(
            "checkout refused by the %s rate limit of %d per %ds for %s, retry in %ds",
            label,
            *rate,
            client_address(request),
            wait,
        )
        seconds = "1 second" if wait == 1 else f"{wait} seconds"
        return CheckoutThrottled(wait, f"{reason} Nothing was charged. Please try again in {seconds}.")
    return None


def _client_key(group: str, request: HttpRequest) -> str:
    try:
        ip = ipaddress.ip_address(client_address(request))
    except ValueError:
        return "unknown"  # no usable address (a Unix socket without a proxy): these share one counter
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/{IPV6_PREFIX}", strict=False).network_address)
    return str(ip)


def json_error(message: str, *, status: int, field: str | None = None, **extra: Any) -> JsonResponse:
    """Return the API's error shape: {"error": {"message": ..., "field": ...}}."""
    return JsonResponse({"error": {"message": message, "field": field, **extra}}, status=status)


def wants_json(request: HttpRequest) -> bool:
    """Return whether the client prefers JSON to HTML (browsers prefer HTML)."""
    return request.get_preferred_type(["text/html", "application/json"]) == "application/json"


def answers_in_json(request: HttpRequest) -> bool:
    """Return whether errors for this request are JSON: anything under /api/, or a client asking for it."""
    return request.path.startswith("/api/") or wants_json(request)


class HttpResponseSeeOther(HttpResponseRedirect):
    """A 303: after a POST, the browser follows with a GET."""

    status_code = 303


def absolute_url(request: HttpRequest, path: str) -> str:
    """Return the public URL of a path: SITE_URL when set, else the host the request came to."""
    if settings.SITE_URL:
        return settings.SITE_URL + path
    return request.build_absolute_uri(path)


def json_methods(*methods: str) -> Callable:
    """Allow only these methods, refusing others with a JSON 405; answer OPTIONS with Allow alone (no
    Access-Control-Allow-*: a CORS preflight from another origin is granted nothing)."""
    allow = ", ".join([*methods, "OPTIONS"])

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method in methods:
                return view(request, *args, **kwargs)
            if request.method == "OPTIONS":
                response = HttpResponse(status=204)
            else:
                response = json_error(
                    f"This endpoint answers {' and '.join(methods)} only, not {request.method}.", status=405
                )
            response["Allow"] = allow
            return response

        return wrapper

    return decorator
