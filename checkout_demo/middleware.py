"""The site's middleware: Stripe's webhook ahead of all the rest, and the answers the database cannot give
itself (503 while it is unreachable, 400 for text it cannot hold)."""

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import render
from django.utils.deprecation import MiddlewareMixin

from orders.db import text_is_storable
from payments.http import answers_in_json, json_error
from payments.urls import WEBHOOK_PATH
from payments.views.webhook import stripe_webhook

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
MESSAGE = "The service is briefly unavailable. Nothing was lost; please try again in a few seconds."


class DatabaseUnavailableMiddleware(MiddlewareMixin):
    """Turn a lost database connection into a 503 with Retry-After, which clients and Stripe retry."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        # OperationalError covers "connection refused" and "server closed the connection"; IntegrityError
        # and the like are programming errors and stay 500s.
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        logger.error("database unavailable during %s %s: %s", request.method, request.path, exception)
        if answers_in_json(request):
            response: HttpResponse = JsonResponse({"error": {"message": MESSAGE}}, status=503)
        else:
            response = HttpResponse(MESSAGE, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


UNSTORABLE_MESSAGE = "The request holds a character that cannot be stored (a NUL byte or a lone surrogate)."
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class UnstorableInputMiddleware(MiddlewareMixin):
    """Refuse with 400 a query string or form field the database could not hold, before any view reads it
    (PostgreSQL refuses a NUL in any text: `?session_id=cs_%00` would be a 500). JSON bodies are checked by
    their own parsers, the webhook's by its signature."""

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        fields = [request.GET]
        if request.method == "POST" and request.content_type in FORM_TYPES:
            fields.append(request.POST)
        if all(_storable(data) for data in fields):
            return None
        logger.warning("refused %s %s: a field holds a NUL or a lone surrogate", request.method, request.path)
        if answers_in_json(request):
            return json_error(UNSTORABLE_MESSAGE, status=400)
        return render(request, "400.html", {"message": UNSTORABLE_MESSAGE}, status=400)


def _storable(data: QueryDict) -> bool:
    return all(
        text_is_storable(key) and all(text_is_storable(value) for value in values)
        for key, values in data.lists()
    )


class StripeWebhookMiddleware(MiddlewareMixin):
    """Answer Stripe's deliveries before any other middleware runs (list it first): the webhook needs none
    of them (no session, CSRF, user or HTTPS redirect), and they would cost a fifth of its time."""

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        return stripe_webhook(request) if request.path_info.rstrip("/") == WEBHOOK_PATH else None
