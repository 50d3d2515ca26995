"""Links to Stripe's Dashboard for the objects the admin shows, in the mode the secret key is in."""

from django.conf import settings

DASHBOARD = "https://dashboard.stripe.com"
# Where Stripe's Dashboard shows each kind of object the orders keep an id of.
PATHS = {"checkout_session": "checkout/sessions", "payment_intent": "payments"}


def stripe_key_is_test(key: str) -> bool:
    """Return whether a secret or restricted key is a test-mode key (sk_test_..., rk_test_...)."""
    return "_test_" in key


def stripe_dashboard_url(*, kind: str, object_id: str) -> str | None:
    """Return the Dashboard URL of a Checkout Session or PaymentIntent, or None when there is none to open.

    None without a key, and when STRIPE_API_BASE points elsewhere (the emulator, which has no Dashboard):
    its ids exist in no Stripe account.
    """
    key = settings.STRIPE_SECRET_KEY
    if not key or settings.STRIPE_API_BASE or kind not in PATHS:
        return None
    mode = "/test" if stripe_key_is_test(key) else ""
    return f"{DASHBOARD}{mode}/{PATHS[kind]}/{object_id}"
