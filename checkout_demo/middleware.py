"""Answer 503, not 500, while the database cannot be reached (a restart, a failover)."""

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

from payments.views.common import answers_in_json

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
MESSAGE = "The service is briefly unavailable. Nothing was lost; please try again in a few seconds."


class DatabaseUnavailableMiddleware:
    """Turn a lost database connection into a 503 with Retry-After, which clients and Stripe retry."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

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
