"""Where a request comes from, behind as many proxies as TRUSTED_PROXY_COUNT says."""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """Return the address of the client that sent the request, as the trusted proxies saw it.

    With TRUSTED_PROXY_COUNT = 0 that is REMOTE_ADDR, whatever X-Forwarded-For says. With N, each of the
    N proxies appended the address it was connected from, so the N-th entry from the right is the one
    the outermost trusted proxy saw; entries further left were written by the client and prove nothing.
    A header with fewer entries, or a malformed one, falls back to REMOTE_ADDR: never to what the client
    wrote.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    forwarded = [entry.strip() for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if len(forwarded) < count:
        return remote
    candidate = forwarded[-count]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
