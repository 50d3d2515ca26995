"""Logs and error reports: one JSON object a line in production (python-json-logger, so the standard
library's %-style calls stay), a request id and the fields of `orders.logs` on every line, and Sentry
when SENTRY_DSN is set, with secrets and e-mail addresses scrubbed from what leaves.
"""

import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

from checkout_demo.env import env_bool, env_str
from orders.logs import current_log_fields, log_fields

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
# The fields a line carries beside its message, where they apply; also the tags of a Sentry report.
FIELDS = ("request_id", "order_id", "checkout_session_id", "event_id", "event_type", "transition")


class LogFieldsFilter(logging.Filter):
    """Put the fields of `orders.logs` that apply on the record, unless the log call gave its own; the
    lines logged after the request's block (django.request's, gunicorn's access) get its request id."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current_log_fields().items():
            if not getattr(record, name, ""):
                setattr(record, name, value)
        if not getattr(record, "request_id", ""):
            request_id = getattr(getattr(record, "request", None), "request_id", "")
            if record.name == "gunicorn.access" and isinstance(record.args, dict):
                request_id = record.args.get("{x-request-id}o", "")
            if request_id:
                record.request_id = request_id
        return True


def log_format_from_env() -> str:
    log_format = env_str("LOG_FORMAT", "plain" if env_bool("DJANGO_DEBUG", default=False) else "json").lower()
    if log_format not in ("plain", "json"):
        raise ImproperlyConfigured(f"LOG_FORMAT={log_format!r} is not one of: plain, json.")
    return log_format


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    formatter = (
        {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",
        }
        if log_format == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    )
    handler = {"class": "logging.StreamHandler", "formatter": "main", "filters": ["fields"]}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"fields": {"()": LogFieldsFilter}},
        "formatters": {"main": formatter},
        "handlers": {"console": handler},
        "root": {"handlers": ["console"], "level": "WARNING"},
        "loggers": {
            "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
            **{
                app: {"handlers": ["console"], "level": level, "propagate": False}
                for app in ("orders", "payments", "backoffice", "checkout_demo")
            },
        },
    }


def gunicorn_logging_config(*, level: str, access_log: bool) -> dict[str, Any]:
    """Return gunicorn's `logconfig_dict`: JSON lines; access lines only when an access log is asked for."""
    levels = {"gunicorn.error": level, "gunicorn.access": "INFO" if access_log else "WARNING"}
    config = logging_config(log_format="json", level=level)
    config["loggers"] = {name: {"handlers": ["console"], "level": lvl} for name, lvl in levels.items()}
    return config


class RequestIdMiddleware:
    """Give each request an id, echoed and on every log line: a new one, or a proxy's X-Request-ID when
    TRUSTED_PROXY_COUNT says a proxy sets it and it is a plain token (a stranger's would poison the logs)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.META.get("HTTP_X_REQUEST_ID", "") if settings.TRUSTED_PROXY_COUNT > 0 else ""
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        request.request_id = request_id
        with log_fields(request_id=request_id):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


# What must never leave for Sentry: Stripe's keys and webhook secrets, a webhook's signature, and
# (unless SENTRY_SEND_EMAILS) e-mail addresses. Card numbers never reach this project.
SECRETS = re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_\w+|\bwhsec_\w+|\bt=\d+,v[01]=[0-9a-f,v=]+")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
SECRET_KEYS = re.compile(r"(?i)stripe[-_]signature|authorization|cookie|secret|password|token|dsn")


def scrub(value: Any, *, send_emails: bool) -> Any:
    """Return the value with secrets (and e-mail addresses, unless send_emails) replaced, found by their
    key's name and by the look of their text."""
    if isinstance(value, str):
        value = SECRETS.sub("[Filtered]", value)
        return value if send_emails else EMAIL.sub("[Filtered email]", value)
    if isinstance(value, dict):
        return {
            k: "[Filtered]" if SECRET_KEYS.search(str(k)) else scrub(v, send_emails=send_emails)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(item, send_emails=send_emails) for item in value]
    return value


def sentry_init(*, dsn: str, environment: str, send_emails: bool, release: str = "") -> None:
    """Report unhandled errors and ERROR lines to Sentry, tagged with the log fields, scrubbed; no request
    bodies (a webhook's holds the buyer's details), nor the user unless send_emails."""
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration

    def before_send(event: dict, hint: dict) -> dict:
        # A log line's own fields (given with extra=) first, then those of the blocks an error left (see
        # orders.logs), then those of the block the report is made in.
        record, error = hint.get("log_record"), (hint.get("exc_info") or (None, None))[1]
        fields = {name: getattr(record, name) for name in FIELDS if getattr(record, name, "")}
        tags = event.setdefault("tags", {})
        for name, value in {**current_log_fields(), **getattr(error, "log_fields", {}), **fields}.items():
            tags.setdefault(name, str(value))
        return scrub(event, send_emails=send_emails)

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or None,
        # sentry-sdk 3 sends no log line as an event unless asked: ERROR lines are what a person must see.
        integrations=[DjangoIntegration(), LoggingIntegration(level=None, event_level=logging.ERROR)],
        data_collection={"user_info": send_emails, "http_bodies": []},
        before_send=before_send,
        traces_sample_rate=0.0,
    )
