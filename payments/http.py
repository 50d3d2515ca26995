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
    """Return the address of the client that sent the request, as the trusted proxies saw it.

    With TRUSTED_PROXY_COUNT = 0 that is REMOTE_ADDR, whatever X-Forwarded-For says. With N, each proxy
    appended the address it was connected from, so the N-th entry from the right is the one the outermost
    trusted proxy saw; entries further left were written by the client and prove nothing. A header with
    fewer entries, or a malformed one, falls back to REMOTE_ADDR, never to what the client wrote.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    forwarded = [entry.strip() for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if len(forwarded) < count:
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
    # A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d.
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def _text(status: int, message: str) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def stripe_source_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Answer 403, before reading the body, to a client outside STRIPE_WEBHOOK_ALLOWED_IPS when it is set.

    Stripe recommends checking the source address beside the signature: the signature proves an event
    genuine, the address keeps everyone else away from the verifying code.
    """

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
    """Let through only scrapes METRICS_TOKEN and METRICS_ALLOWED_IPS allow; with neither set, 404.

    The figures tell a stranger how busy the shop is and when its queue is down, so the endpoint is off
    until an operator opens it. 403 to an address or token refused, 401 when the token is missing.
    """

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

    The client's own limit is counted first, so one client over its limit does not use up everyone's.
    The counters live in Django's cache through django-ratelimit (fixed windows, an atomic `incr`); its
    app is not installed, since its system check calls local memory "not shared" and Django's own
    RedisCache "not officially supported", though both increment atomically.
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
            rate[0],
            rate[1],
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
    """Allow only these methods, refusing others with a JSON 405; answer OPTIONS with Allow alone.

    OPTIONS gets no Access-Control-Allow-* header: a CORS preflight from another origin is granted
    nothing, so the browser never sends the request it asked about.
    """
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
