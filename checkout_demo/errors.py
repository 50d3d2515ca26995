"""The site's error answers: branded pages for people, JSON for the API (the handlers in urls.py)."""

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import REASON_NO_CSRF_COOKIE
from django.shortcuts import render
from django.urls import reverse
from django.views import defaults

from payments.http import answers_in_json, json_error

MESSAGES = {
    400: "The request could not be understood.",
    403: "You do not have access to this page.",
    404: "There is nothing at this address.",
    500: "Something went wrong on our side. Nothing was charged; please try again in a moment.",
}


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _json(request, 400) or defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if answers_in_json(request):
        return json_error(MESSAGES[403], status=403)
    user = getattr(request, "user", None)
    if request.path.startswith(reverse("admin:index")) and user is not None and user.is_staff:
        # Staff get the admin's own page: the permission it lacks (as the refusal names it) and a way back.
        context = {
            **admin.site.each_context(request),
            "title": "Permission needed",
            "exception": str(exception),
        }
        return render(request, "admin/403.html", context, status=403)
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _json(request, 404) or defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    # Django's handler renders 500.html without context: nothing the failing request broke is needed.
    return _json(request, 500) or defaults.server_error(request)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Tell a person whose form failed Django's CSRF check what to do about it."""
    context = {"no_cookie": reason == REASON_NO_CSRF_COOKIE, "reason": reason if settings.DEBUG else ""}
    return render(request, "403_csrf.html", context, status=403)


def _json(request: HttpRequest, status: int) -> HttpResponse | None:
    """Return the JSON error for an API client, or None for a person (who gets the page)."""
    return json_error(MESSAGES[status], status=status) if answers_in_json(request) else None
