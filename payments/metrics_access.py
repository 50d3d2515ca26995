"""Who may read `/metrics`: nobody unless METRICS_TOKEN or METRICS_ALLOWED_IPS is set.

The figures are no secret of a buyer's, but they tell a stranger how busy the shop is and when its queue
is down, so the endpoint is off (404, as if it did not exist) until an operator opens it. With
METRICS_ALLOWED_IPS, only those client addresses (as `checkout_demo.clients.client_address` reads them,
behind TRUSTED_PROXY_COUNT proxies) may scrape; with METRICS_TOKEN, only a request that carries it as a
bearer token; with both, only a request that passes both.
"""

import hmac
import logging
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse

from checkout_demo.clients import address_in_networks, client_address

logger = logging.getLogger(__name__)


def metrics_access_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Answer 404 when metrics are off, 403 to an address or token refused, 401 when the token is missing."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        token, networks = settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS
        if not token and not networks:
            raise Http404("Metrics are off: set METRICS_TOKEN or METRICS_ALLOWED_IPS.")
        if networks:
            address = client_address(request)
            if not address_in_networks(address, networks):
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


def _text(status: int, message: str) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
