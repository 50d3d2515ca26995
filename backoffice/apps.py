"""The back office: the whole Django admin, on a site of its own (INSTALLED_APPS lists both configs)."""

from django.apps import AppConfig
from django.contrib import admin
from django.contrib.admin import apps as admin_apps
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path


class BackofficeConfig(AppConfig):
    default = True
    name = "backoffice"
    verbose_name = "Back office"


class BackofficeSite(admin.AdminSite):
    """Django's admin site with the Needs attention page, and the dashboard on its index."""

    # At 1280 px the order list needs the sidebar's width; the breadcrumbs and the index lead where it did.
    enable_nav_sidebar = False

    # backoffice.attention imports the ModelAdmins, which register on this site: it is read when asked.
    def get_urls(self) -> list[URLPattern]:
        from backoffice.attention import needs_attention_view

        page = path("needs-attention/", self.admin_view(needs_attention_view), name="needs_attention")
        return [page, *super().get_urls()]

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        from backoffice.attention import dashboard_context

        return super().index(request, {**dashboard_context(request.user), **(extra_context or {})})


class BackofficeAdminConfig(admin_apps.AdminConfig):
    """`django.contrib.admin` with the back office's site as `admin.site`."""

    default = False  # "backoffice" in INSTALLED_APPS means BackofficeConfig
    default_site = "backoffice.apps.BackofficeSite"
