"""Root URLs: the admin, and everything the payments app serves to buyers and to Stripe."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("payments.urls")),
]
