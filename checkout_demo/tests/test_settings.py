"""Start-up behaviour that depends on the environment, checked in fresh interpreters."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from checkout_demo.env import env_networks, env_rate

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "a-long-random-production-secret-key-that-is-not-in-the-repository-0123456789",
    "DJANGO_ALLOWED_HOSTS": "shop.example.com",
    "DATABASE_URL": "sqlite:////tmp/checkout-demo-settings-test.sqlite3",
    "STRIPE_SECRET_KEY": "rk_live_settings_suite",  # never used: the checks do not call Stripe
    "STRIPE_WEBHOOK_SECRET": "whsec_settings_suite",
}
LOCAL_DATABASE = PRODUCTION_ENV["DATABASE_URL"]


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "STRIPE_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_missing_secret_key_stops_start_up_when_debug_is_off():
    # Empty rather than absent, so a developer's .env cannot supply one.
    env = {**PRODUCTION_ENV, "DJANGO_SECRET_KEY": ""}

    result = _manage("check", env=env)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def _security_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if "(security." in line]


def test_deploy_check_reports_nothing_serious_with_production_variables():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)

    # Only the HSTS preload hint may remain: submitting a domain to browsers' preload list is a choice,
    # and that one warning is what makes the check fail at warning level.
    reported = _security_lines(result)
    assert reported and all("security.W021" in line for line in reported), result.stderr
    assert "System check identified 1 issue" in result.stderr
    assert result.returncode == 1, result.stderr


def test_deploy_check_passes_once_the_shop_chooses_hsts_preload():
    env = {**PRODUCTION_ENV, "DJANGO_SECURE_HSTS_PRELOAD": "true"}

    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode == 0, result.stderr
    assert _security_lines(result) == []


def test_without_configuration_debug_is_off_and_a_secret_key_is_required():
    # DJANGO_DEBUG empty means unset here; an empty value also keeps a developer's .env out of it.
    result = _manage(
        "check", env={"DJANGO_DEBUG": "", "DJANGO_SECRET_KEY": "", "DATABASE_URL": LOCAL_DATABASE}
    )

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr
    assert "dev.py run" in result.stderr


def test_debug_runs_locally_without_any_other_configuration():
    result = _manage(
        "check", env={"DJANGO_DEBUG": "true", "DJANGO_SECRET_KEY": "", "DATABASE_URL": LOCAL_DATABASE}
    )

    assert result.returncode == 0, result.stderr


def test_debug_is_off_when_the_variable_is_not_set_anywhere():
    # `.env` is kept out by replacing its loader, so only the code's default decides.
    code = (
        "import dotenv; dotenv.load_dotenv = lambda *args, **kwargs: None; "
        "import checkout_demo.settings as s; print(s.DEBUG)"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "STRIPE_"))}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SECRET_KEY": PRODUCTION_ENV["DJANGO_SECRET_KEY"]},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.stdout.strip() == "False", result.stderr


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_unreadable_boolean_is_refused_with_its_name(value):
    result = _manage("check", env={"DJANGO_DEBUG": value})

    assert result.returncode != 0
    assert f"DJANGO_DEBUG={value!r} is not a boolean" in result.stderr


def test_sqlite_connections_use_wal_and_immediate_transactions(tmp_path, django_db_blocker):
    # A connection of its own, so this holds whichever database the suite itself runs on.
    from django.db.backends.sqlite3.base import DatabaseWrapper

    from checkout_demo.settings import _database_from_url

    config = _database_from_url(f"sqlite:///{tmp_path / 'tuning.sqlite3'}")
    wrapper = DatabaseWrapper({**config, "TIME_ZONE": None, "CONN_HEALTH_CHECKS": False, "AUTOCOMMIT": True})
    with django_db_blocker.unblock(), wrapper.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        journal_mode = cursor.fetchone()[0]
        cursor.execute("PRAGMA busy_timeout")
        busy_timeout = cursor.fetchone()[0]
    wrapper.close()

    assert (journal_mode, busy_timeout) == ("wal", 20_000)
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10/m", (10, 60)),
        ("300/M", (300, 60)),
        ("100/5m", (100, 300)),
        ("1/s", (1, 1)),
        ("5000/d", (5000, 86400)),
    ],
)
def test_rates_are_read_as_requests_per_seconds(monkeypatch, value, expected):
    monkeypatch.setenv("SOME_RATE", value)

    assert env_rate("SOME_RATE", "10/m") == expected


def test_off_turns_a_rate_off(monkeypatch):
    monkeypatch.setenv("SOME_RATE", "OFF")

    assert env_rate("SOME_RATE", "10/m") is None


@pytest.mark.parametrize("value", ["10", "ten/m", "0/m", "10/0m", "10/w", "10/m/s", "-1/m"])
def test_unreadable_rates_are_refused_with_what_to_write(monkeypatch, value):
    monkeypatch.setenv("SOME_RATE", value)

    with pytest.raises(ImproperlyConfigured, match="such as 10/m"):
        env_rate("SOME_RATE", "10/m")


def test_networks_expand_a_named_list_and_read_cidr(monkeypatch):
    monkeypatch.setenv("SOME_IPS", "stripe, 10.0.0.0/8, 2001:db8::1")

    networks = env_networks("SOME_IPS", {"stripe": ["3.18.12.63"]})

    assert [str(n) for n in networks] == ["3.18.12.63/32", "10.0.0.0/8", "2001:db8::1/128"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHECKOUT_RATE_LIMIT": "often"}, "CHECKOUT_RATE_LIMIT='often' is not a rate"),
        ({"CHECKOUT_RATE_LIMIT_GLOBAL": "300"}, "CHECKOUT_RATE_LIMIT_GLOBAL='300' is not a rate"),
        (
            {"STRIPE_WEBHOOK_ALLOWED_IPS": "stripe,hooks.stripe.com"},
            "'hooks.stripe.com' is not an IP address",
        ),
        ({"TRUSTED_PROXY_COUNT": "-1"}, "TRUSTED_PROXY_COUNT=-1 must be 0 or more"),
        ({"REDIS_URL": "memcached://127.0.0.1"}, "is not a Redis URL"),
        ({"METRICS_TOKEN": "too-short"}, "METRICS_TOKEN must be at least 32 printable ASCII characters"),
        ({"METRICS_TOKEN": "a token with spaces in it, long enough to pass"}, "without spaces"),
        ({"METRICS_ALLOWED_IPS": "10.0.0.0/8,prometheus"}, "METRICS_ALLOWED_IPS: 'prometheus' is not an IP"),
        ({"EMAIL_USE_TLS": "true", "EMAIL_USE_SSL": "true"}, "EMAIL_USE_TLS (STARTTLS, port 587) and"),
    ],
)
def test_bad_abuse_settings_stop_start_up_with_their_name(env, message):
    result = _manage("check", env={**PRODUCTION_ENV, **env})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_checkout_rate_limit_off_alone_turns_the_overall_limit_off_too():
    code = "from django.conf import settings as s; print(s.CHECKOUT_RATE_LIMIT, s.CHECKOUT_RATE_LIMIT_GLOBAL)"

    alone = _manage("shell", "-c", code, env={**PRODUCTION_ENV, "CHECKOUT_RATE_LIMIT": "off"})
    kept = _manage(
        "shell",
        "-c",
        code,
        env={**PRODUCTION_ENV, "CHECKOUT_RATE_LIMIT": "off", "CHECKOUT_RATE_LIMIT_GLOBAL": "50/m"},
    )

    # The last line: Django's shell first says what it imported.
    assert alone.stdout.splitlines()[-1] == "None None", alone.stderr
    assert kept.stdout.splitlines()[-1] == "None (50, 60)", kept.stderr


def test_redis_url_selects_djangos_redis_cache():
    code = "from django.conf import settings; print(settings.CACHES['default']['BACKEND'])"

    result = _manage("shell", "-c", code, env={**PRODUCTION_ENV, "REDIS_URL": "redis://127.0.0.1:6379/0"})

    assert result.stdout.splitlines()[-1] == "django.core.cache.backends.redis.RedisCache", result.stderr


def test_the_worker_lease_is_read_under_its_name_and_under_the_name_from_before_the_queue():
    code = "from django.conf import settings; print(settings.WORKER_LEASE_SECONDS)"

    default = _manage("shell", "-c", code, env=PRODUCTION_ENV)
    former = _manage("shell", "-c", code, env={**PRODUCTION_ENV, "TASK_LEASE_SECONDS": "60"})
    both = _manage(
        "shell", "-c", code, env={**PRODUCTION_ENV, "TASK_LEASE_SECONDS": "60", "WORKER_LEASE_SECONDS": "90"}
    )

    assert [r.stdout.splitlines()[-1] for r in (default, former, both)] == ["300.0", "60.0", "90.0"], (
        both.stderr
    )


@pytest.mark.parametrize(
    ("env", "backend"),
    [
        ({"DJANGO_DEBUG": "true"}, "console"),  # the quick start: the worker's terminal shows each message
        ({"DJANGO_DEBUG": "true", "EMAIL_HOST": "smtp.example.com"}, "smtp"),
        ({}, "smtp"),  # production without a host: localhost, failing visibly if nothing listens
        ({"EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend"}, "dummy"),
    ],
)
def test_customer_emails_go_by_smtp_unless_in_development_without_a_host_or_told_otherwise(env, backend):
    code = "from django.conf import settings; print(settings.EMAIL_BACKEND, settings.EMAIL_HOST)"

    result = _manage("shell", "-c", code, env={**PRODUCTION_ENV, **env})

    chosen, host = result.stdout.splitlines()[-1].split()
    assert chosen == f"django.core.mail.backends.{backend}.EmailBackend", result.stderr
    assert host == env.get("EMAIL_HOST", "localhost")
