"""Generate identifiers shaped like Stripe's."""

from __future__ import annotations

import secrets
import string

_ALNUM = string.ascii_letters + string.digits

# Random part lengths seen on real test-mode objects.
_LENGTHS = {
    "cs_test_": 58,
    "evt_": 24,
    "pi_": 24,
    "price_": 24,
    "prod_": 14,
    "li_": 24,
    "req_": 14,
    "pm_": 24,
    "ch_": 24,
    "re_": 24,
    "dp_": 24,
    "txn_": 24,
    "whsec_": 32,
    "shr_": 24,
    "promo_": 24,
}


def random_alnum(length: int) -> str:
    """Return `length` random letters and digits."""
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def new_id(prefix: str) -> str:
    """Return a fresh id with Stripe's prefix and a realistic length."""
    return prefix + random_alnum(_LENGTHS.get(prefix, 24))
