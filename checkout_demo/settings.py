"""Settings read from the environment (and `.env`); `.env.example` explains every variable once."""

import re
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

from checkout_demo.env import env_bool, env_float, env_int, env_list, env_networks, env_rate, env_str
from checkout_demo.logs import log_format_from_env, logging_config, sentry_init
from payments.stripe_ips import STRIPE_WEBHOOK_IPS

BASE_DIR = Path(__file__).resolve().parent.parent

# A real environment variable always wins over the same name in `.env`.
load_dotenv(BASE_DIR / ".env", override=False)

# Off unless asked for: a deployment that forgets the variable must not run in development mode.
DEBUG = env_bool("DJANGO_DEBUG", default=False)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. It is required when DJANGO_DEBUG is off (the default): generate "
            "one with `python -c 'import secrets; print(secrets.token_urlsafe(50))'` and put it in the "
            "environment. For local development, `python3 dev.py run` writes a .env with DJANGO_DEBUG=true "
            "and a generated key."
        )
    SECRET_KEY = "django-insecure-local-development-only-never-use-in-production"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")

SITE_URL = env_str("SITE_URL").rstrip("/")

CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", SITE_URL)

INSTALLED_APPS = [
    "backoffice",  # the whole admin; before django.contrib.admin, whose templates it extends
    "backoffice.apps.BackofficeAdminConfig",  # django.contrib.admin with backoffice's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "orders",
    "payments",
]

MIDDLEWARE = [
    "checkout_demo.logs.RequestIdMiddleware",
    "checkout_demo.middleware.StripeWebhookMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "checkout_demo.middleware.DatabaseUnavailableMiddleware",
    "checkout_demo.middleware.UnstorableInputMiddleware",
]

ROOT_URLCONF = "checkout_demo.urls"
WSGI_APPLICATION = "checkout_demo.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database_from_url(url: str) -> dict:
    """Build the default database from DATABASE_URL, tuned so concurrent writers never error."""
    if url.startswith("sqlite"):
        config = dj_database_url.parse(url)
        # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at BEGIN so two
        # transactions never deadlock upgrading a read lock; the timeout makes a writer wait its turn
        # instead of answering "database is locked".
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        # A file, not Django's shared in-memory database: threads in the race tests need real locking.
        config["TEST"] = {"NAME": env_str("DJANGO_TEST_DATABASE_NAME") or str(BASE_DIR / "test-db.sqlite3")}
        return config
    # No health check (a SELECT 1) before each request's first query: after a database restart, the
    # first request on each stale connection answers 503 (checkout_demo.middleware) and it is replaced.
    config = dj_database_url.parse(url, conn_max_age=600, conn_health_checks=False)
    # Server-side binding, and a statement run a fifth time prepared: PostgreSQL skips planning the worker's
    # and the webhook's few hot statements (bench/README.md: a third to a half less CPU per event). A pooler
    # in transaction mode needs PgBouncer 1.21+ (max_prepared_statements) or prepare_threshold None.
    config["OPTIONS"] = {**config.get("OPTIONS", {}), "server_side_binding": True, "prepare_threshold": 5}
    test_name = env_str("DJANGO_TEST_DATABASE_NAME")
    if test_name:
        config["TEST"] = {"NAME": test_name}
    return config


DATABASES = {"default": _database_from_url(env_str("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Timestamps to the second: a race's transitions within one minute must read apart (checkout_demo/formats).
FORMAT_MODULE_PATH = ["checkout_demo.formats"]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Production hardening, on whenever DEBUG is off.
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
    SECURE_CONTENT_TYPE_NOSNIFF = True

# Stripe. With no secret key the pages that need Stripe explain how to configure it.
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRETS = env_list("STRIPE_WEBHOOK_SECRET")
STRIPE_API_BASE = env_str("STRIPE_API_BASE").rstrip("/")
STRIPE_TIMEOUT_SECONDS = env_float("STRIPE_TIMEOUT_SECONDS", 10.0)
STRIPE_MAX_NETWORK_RETRIES = env_int("STRIPE_MAX_NETWORK_RETRIES", 2)
CHECKOUT_SESSION_TTL_SECONDS = env_int("CHECKOUT_SESSION_TTL_SECONDS", 60 * 60)
CHECKOUT_STOCK_HOLD_MINUTES = env_int("CHECKOUT_STOCK_HOLD_MINUTES", 30)
CHECKOUT_PROMOTION_CODES = env_bool("CHECKOUT_PROMOTION_CODES", default=False)
CHECKOUT_AUTOMATIC_TAX = env_bool("CHECKOUT_AUTOMATIC_TAX", default=False)
CHECKOUT_SHIPPING_COUNTRIES = [code.upper() for code in env_list("CHECKOUT_SHIPPING_COUNTRIES", "US")]
CHECKOUT_SHIPPING_RATES = env_list("CHECKOUT_SHIPPING_RATES")
REFUND_LATE_PAYMENTS = env_bool("REFUND_LATE_PAYMENTS", default=True)
STRIPE_WEBHOOK_MAX_BYTES = env_int("STRIPE_WEBHOOK_MAX_BYTES", 512 * 1024)
STRIPE_WEBHOOK_ALLOWED_IPS = env_networks("STRIPE_WEBHOOK_ALLOWED_IPS", {"stripe": STRIPE_WEBHOOK_IPS})

# On the public internet: the proxies in front of the site, and how many checkouts clients may start.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured(f"TRUSTED_PROXY_COUNT={TRUSTED_PROXY_COUNT} must be 0 or more.")
CHECKOUT_RATE_LIMIT = env_rate("CHECKOUT_RATE_LIMIT", "10/m")
# CHECKOUT_RATE_LIMIT=off alone turns the overall limit off too.
CHECKOUT_RATE_LIMIT_GLOBAL = env_rate("CHECKOUT_RATE_LIMIT_GLOBAL", "300/m" if CHECKOUT_RATE_LIMIT else "off")


def _cache_from_url(url: str) -> dict:
    """Build the default cache: Redis from its URL, else this process's memory."""
    if not url:
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "checkout-demo"}
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(
            f"REDIS_URL / CACHE_URL={url!r} is not a Redis URL: use redis://host:6379/0, rediss://... or "
            "unix:///path/redis.sock."
        )
    # Short timeouts: the rate limits read it on every checkout, and let it through rather than hang.
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": url,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }


CACHES = {"default": _cache_from_url(env_str("REDIS_URL") or env_str("CACHE_URL"))}
CSRF_FAILURE_VIEW = "checkout_demo.errors.csrf_failure"

# The worker (`manage.py process_events`); the TASK_* names are read too, from before the inbox was the queue.
WORKER_LEASE_SECONDS = env_float("WORKER_LEASE_SECONDS", env_float("TASK_LEASE_SECONDS", 300.0))
WORKER_BATCH_SIZE = env_int("WORKER_BATCH_SIZE", 50)
WORKER_CONCURRENCY = env_int("WORKER_CONCURRENCY", 1)
WORKER_POLL_SECONDS = env_float("WORKER_POLL_SECONDS", 1.0)
WORKER_SWEEP_SECONDS = env_float("WORKER_SWEEP_SECONDS", 5.0)
RETRY_BASE_SECONDS = env_float("RETRY_BASE_SECONDS", env_float("TASK_RETRY_BASE_SECONDS", 5.0))
RETRY_MAX_SECONDS = env_float("RETRY_MAX_SECONDS", env_float("TASK_RETRY_MAX_SECONDS", 600.0))
STRIPE_EVENT_MAX_ATTEMPTS = env_int("STRIPE_EVENT_MAX_ATTEMPTS", 8)

# Customer e-mails (docs/emails.md), sent by the worker.
CUSTOMER_EMAILS = env_bool("CUSTOMER_EMAILS", default=True)
EMAIL_MAX_ATTEMPTS = env_int("EMAIL_MAX_ATTEMPTS", 8)
EMAIL_HOST = env_str("EMAIL_HOST") or "localhost"
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", default=False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS (STARTTLS, port 587) and EMAIL_USE_SSL (port 465): set one.")
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 10.0)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "webmaster@localhost")
# Without a host, production still tries localhost:25: a missing relay ends as failed e-mails, not silence.
EMAIL_BACKEND = env_str("EMAIL_BACKEND") or (
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG and not env_str("EMAIL_HOST")
    else "django.core.mail.backends.smtp.EmailBackend"
)

# `/metrics` (Prometheus): off (404) unless one of these is set. The token must fit an Authorization header.
METRICS_TOKEN = env_str("METRICS_TOKEN")
if METRICS_TOKEN and not re.fullmatch(r"[!-~]{32,}", METRICS_TOKEN):
    raise ImproperlyConfigured(
        "METRICS_TOKEN must be at least 32 printable ASCII characters without spaces: generate one with "
        "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`, or leave it empty."
    )
METRICS_ALLOWED_IPS = env_networks("METRICS_ALLOWED_IPS")

LOG_LEVEL = env_str("DJANGO_LOG_LEVEL", "INFO").upper()
LOG_FORMAT = log_format_from_env()
LOGGING = logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL)

# Error reports to Sentry, only when a DSN is set (nothing is imported otherwise).
SENTRY_DSN = env_str("SENTRY_DSN")
if SENTRY_DSN:
    sentry_init(
        dsn=SENTRY_DSN,
        environment=env_str("SENTRY_ENVIRONMENT", "development" if DEBUG else "production"),
        send_emails=env_bool("SENTRY_SEND_EMAILS", default=False),
    )
