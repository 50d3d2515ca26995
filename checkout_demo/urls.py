"""Root URLs: the admin (backoffice), and everything the payments app serves to buyers and to Stripe."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("payments.urls")),
]

handler400 = "checkout_demo.errors.bad_request"
handler403 = "checkout_demo.errors.permission_denied"
handler404 = "checkout_demo.errors.page_not_found"
handler500 = "checkout_demo.errors.server_error"
