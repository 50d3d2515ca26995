"""Refuse webhook deliveries from addresses outside STRIPE_WEBHOOK_ALLOWED_IPS, when it is set.

Stripe recommends checking the source address beside the signature. The signature is what proves an
event genuine; the address check keeps everyone else's requests away from the verifying code.
"""

import ipaddress
import logging
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from checkout_demo.clients import client_address

logger = logging.getLogger(__name__)

REFUSED_MESSAGE = "Forbidden: this address is not one that Stripe sends webhooks from."


def stripe_source_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Answer 403, before reading the body or storing anything, to a client outside the allow-list."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        allowed = settings.STRIPE_WEBHOOK_ALLOWED_IPS
        if allowed:
            address = client_address(request)
            if not _address_in(address, allowed):
                logger.warning(
                    "webhook refused: %s is not in STRIPE_WEBHOOK_ALLOWED_IPS", address or "no address"
                )
                return HttpResponse(REFUSED_MESSAGE, status=403, content_type="text/plain; charset=utf-8")
        return view(request, *args, **kwargs)

    return wrapper


def _address_in(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    # A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d.
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)
