"""System checks for the Stripe settings: catch a misconfiguration at start-up, not at a buyer's checkout.
A missing secret key is only a `check --deploy` warning: the pages explain how to configure Stripe."""

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from payments.gateway import key_is_live

# Stripe accepts a Checkout Session expiry from 30 minutes to 24 hours after creation.
MIN_SESSION_TTL_SECONDS = 30 * 60
MAX_SESSION_TTL_SECONDS = 24 * 60 * 60


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@register()
def check_stripe_settings(app_configs, **kwargs) -> list:
    """Report Stripe settings that would make every checkout fail."""
    return list(_setting_errors())


def _setting_errors() -> Iterator[Error]:
    key = settings.STRIPE_SECRET_KEY
    if key and key.startswith("pk_"):
        yield Error(
            "STRIPE_SECRET_KEY holds a publishable key (pk_...).",
            hint="Use the secret key (sk_test_... or rk_test_...) from the Stripe dashboard.",
            id="payments.E001",
        )
    if settings.STRIPE_API_BASE and not _is_http_url(settings.STRIPE_API_BASE):
        yield Error(
            f"STRIPE_API_BASE {settings.STRIPE_API_BASE!r} is not an http(s) URL.",
            hint="Leave it empty for Stripe, or set it to the emulator's URL, e.g. http://127.0.0.1:12111.",
            id="payments.E002",
        )
    session_limits = (
        ("CHECKOUT_SESSION_TTL_SECONDS", settings.CHECKOUT_SESSION_TTL_SECONDS, 1, "1800 and 86400", "E003"),
        ("CHECKOUT_STOCK_HOLD_MINUTES", settings.CHECKOUT_STOCK_HOLD_MINUTES * 60, 60, "30 and 1440", "E005"),
    )
    for name, seconds, unit, hint, error_id in session_limits:
        if not MIN_SESSION_TTL_SECONDS <= seconds <= MAX_SESSION_TTL_SECONDS:
            yield Error(
                f"{name} is {seconds // unit}; Stripe refuses a session that expires sooner than 30 minutes "
                "or later than 24 hours after it is created.",
                hint=f"Set it between {hint}.",
                id=f"payments.{error_id}",
            )
    bad = [code for code in settings.CHECKOUT_SHIPPING_COUNTRIES if not re.fullmatch("[A-Z]{2}", code)]
    bad += [rate for rate in settings.CHECKOUT_SHIPPING_RATES if not rate.startswith("shr_")]
    if bad or not settings.CHECKOUT_SHIPPING_COUNTRIES:
        yield Error(
            f"The shipping settings hold {', '.join(bad) or 'no country'}: CHECKOUT_SHIPPING_COUNTRIES "
            "takes two-letter country codes, CHECKOUT_SHIPPING_RATES shipping rate ids (shr_...).",
            hint="For example CHECKOUT_SHIPPING_COUNTRIES=US,CA and CHECKOUT_SHIPPING_RATES=shr_1,shr_2.",
            id="payments.E006",
        )
    if settings.SITE_URL and not _is_http_url(settings.SITE_URL):
        yield Error(
            f"SITE_URL {settings.SITE_URL!r} is not an http(s) URL; Stripe could not send buyers back.",
            hint="Set it to the public base URL, e.g. https://shop.example.com, or leave it empty.",
            id="payments.E004",
        )


@register(Tags.security, deploy=True)
def check_stripe_configured(app_configs, **kwargs) -> list:
    """Warn a deployment that cannot take payments, or takes them in test mode."""
    key = settings.STRIPE_SECRET_KEY
    if not key:
        return [
            Warning(
                "STRIPE_SECRET_KEY is not set: the shop shows its products but cannot take payments.",
                hint="Set STRIPE_SECRET_KEY (and STRIPE_WEBHOOK_SECRET), then run `manage.py sync_catalog`.",
                id="payments.W001",
            )
        ]
    if not key_is_live(key):
        return [
            Warning(
                "STRIPE_SECRET_KEY is a test-mode key: no real money is taken.",
                hint="Use a live key (sk_live_...) in production.",
                id="payments.W002",
            )
        ]
    return []
