"""Whose an idempotency key is: a key finds only an order that the same client created with it.

The order stores sha256(client scope, key), never the key, so another client's same key opens a new order.
A browser's scope is the shop's session (the checkout page starts it); every client without one shares the
scope "api", so there the key itself must be unguessable.
"""

import hashlib
import re
import uuid

from django.http import HttpRequest

SESSION_MARK = "checkout_scope"
API_SCOPE = "api"
# At least 128 bits of randomness when written in base64url (6 bits a character, rounded up).
STRONG_KEY = re.compile(r"[A-Za-z0-9_-]{32,}")
WEAK_KEY_MESSAGE = (
    "This Idempotency-Key could be guessed by another client. Without the shop's session cookie, send a "
    "key with at least 128 bits of randomness: a UUID version 4 (such as "
    '"9f1c2a4e-6b3d-4c8e-a1f0-5d7e9b2c3a41") or at least 32 characters of A-Z, a-z, 0-9, "-" and "_". '
    "Or send no Idempotency-Key at all."
)


class IdempotencyKeyTooWeak(Exception):
    """A client without a session sent a key that another client could guess."""


def checkout_scope_start(request: HttpRequest) -> None:
    """Give this browser its session, so the forms it posts have a scope of their own."""
    if not request.session.get(SESSION_MARK):
        request.session[SESSION_MARK] = True


def checkout_token_scoped(*, request: HttpRequest, key: str) -> str:
    """Return the token to store for this client's key; raise IdempotencyKeyTooWeak for a guessable one."""
    scope = _scope(request)
    if scope == API_SCOPE and not _unguessable(key):
        raise IdempotencyKeyTooWeak(WEAK_KEY_MESSAGE)
    return hashlib.sha256(f"{scope}\n{key}".encode("utf-8", "surrogatepass")).hexdigest()


def _scope(request: HttpRequest) -> str:
    # Only a session that carries the mark counts: the shop wrote it, so a cookie a client made up (or
    # one that expired) loads an empty session and gives no scope of its own.
    session = request.session
    if session.get(SESSION_MARK) and session.session_key:
        return f"session:{session.session_key}"
    return API_SCOPE


def _unguessable(key: str) -> bool:
    if STRONG_KEY.fullmatch(key):
        return True
    try:
        return uuid.UUID(key).version == 4
    except ValueError:
        return False
