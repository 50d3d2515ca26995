"""Start-up behaviour that depends on the environment, checked in fresh interpreters."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "a-long-random-production-secret-key-that-is-not-in-the-repository-0123456789",
    "DJANGO_ALLOWED_HOSTS": "shop.example.com",
    "DATABASE_URL": "sqlite:////tmp/checkout-demo-settings-test.sqlite3",
    "STRIPE_SECRET_KEY": "rk_live_settings_suite",  # never used: the checks do not call Stripe
    "STRIPE_WEBHOOK_SECRET": "whsec_settings_suite",
}


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
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "DJANGO_SECRET_KEY"}

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


def test_zero_configuration_runs_locally():
    result = _manage("check", env={"DATABASE_URL": "sqlite:////tmp/checkout-demo-settings-test.sqlite3"})

    assert result.returncode == 0, result.stderr


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
