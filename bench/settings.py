"""Settings for the benchmarks: the production settings, relaxed only where a plain-HTTP local run needs it.

The measured path is the production one: DEBUG off, the same middleware, apps, database options and code.
What changes: e-mails go to Django's dummy backend, no checkout rate limits (a run opens thousands of
checkouts from 127.0.0.1), no HTTPS redirect or secure-only cookies (the harness speaks plain HTTP to
127.0.0.1), a throwaway secret key, log level WARNING unless DJANGO_LOG_LEVEL says otherwise, and static
files served without the collectstatic manifest (the pages the chaos run requests would otherwise need
`collectstatic` first; the webhook never touches static files). BENCH_DATABASE_OPTIONS (JSON) adds to the
database's OPTIONS, so a run can measure an option (`{"server_side_binding": true}`) before the settings
take it.
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-not-a-secret-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("DJANGO_SECURE_COOKIES", "false")
os.environ.setdefault("CHECKOUT_RATE_LIMIT", "off")
# Customer e-mails are owed, built and "sent" as in production, but to a backend that transmits nothing:
# with no SMTP server here, production's backend would fail and retry each one, which no shop pays.
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.dummy.EmailBackend")

import json

from checkout_demo.settings import *  # noqa: F403
from checkout_demo.settings import DATABASES, INSTALLED_APPS, STORAGES

STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}

# The chaos run counts fulfillment signals with a receiver that writes a witness row per signal.
if os.environ.get("BENCH_SIGNAL_WITNESS", "").lower() == "true":
    INSTALLED_APPS = [*INSTALLED_APPS, "bench.apps.BenchConfig"]

# A run that measures a database option: merged into the default database's OPTIONS.
if os.environ.get("BENCH_DATABASE_OPTIONS"):
    DATABASES["default"]["OPTIONS"] = {
        **DATABASES["default"].get("OPTIONS", {}),
        **json.loads(os.environ["BENCH_DATABASE_OPTIONS"]),
    }
