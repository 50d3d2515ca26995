"""System checks that catch Stripe settings which would make every checkout fail."""

import pytest

from payments.checks import check_stripe_configured, check_stripe_settings


def ids(messages: list) -> list[str]:
    return [message.id for message in messages]


def test_sound_settings_pass(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_abc"
    settings.STRIPE_API_BASE = "http://127.0.0.1:12111"
    settings.CHECKOUT_SESSION_TTL_SECONDS = 3600
    settings.SITE_URL = "https://shop.example.com"

    assert check_stripe_settings(None) == []


def test_missing_key_is_not_an_error_outside_deployment_checks(settings):
    settings.STRIPE_SECRET_KEY = ""

    assert check_stripe_settings(None) == []
    assert ids(check_stripe_configured(None)) == ["payments.W001"]


def test_publishable_key_in_place_of_the_secret_key_is_an_error(settings):
    settings.STRIPE_SECRET_KEY = "pk_test_abc"

    assert ids(check_stripe_settings(None)) == ["payments.E001"]


def test_api_base_that_is_not_a_url_is_an_error(settings):
    settings.STRIPE_API_BASE = "127.0.0.1:12111"

    assert ids(check_stripe_settings(None)) == ["payments.E002"]


@pytest.mark.parametrize("ttl", [60, 1799, 86401])
def test_session_lifetime_stripe_would_refuse_is_an_error(settings, ttl):
    settings.CHECKOUT_SESSION_TTL_SECONDS = ttl

    assert ids(check_stripe_settings(None)) == ["payments.E003"]


def test_site_url_without_a_scheme_is_an_error(settings):
    settings.SITE_URL = "shop.example.com"

    assert ids(check_stripe_settings(None)) == ["payments.E004"]


def test_test_key_in_a_deployment_is_a_warning(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_abc"

    assert ids(check_stripe_configured(None)) == ["payments.W002"]


def test_a_stock_hold_stripe_would_refuse_is_an_error(settings):
    settings.CHECKOUT_STOCK_HOLD_MINUTES = 20

    (error,) = check_stripe_settings(None)

    assert (error.id, error.hint) == ("payments.E005", "Set it between 30 and 1440.")
    assert error.msg.startswith("CHECKOUT_STOCK_HOLD_MINUTES is 20;")
