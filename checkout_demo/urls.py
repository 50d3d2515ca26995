"""Root URLs: the admin, and everything the payments app serves to buyers and to Stripe."""

from django.contrib import admin
from django.urls import include, path

from payments.admin_refunds import order_refund_view

urlpatterns = [
    # Before the admin's own URLs, whose catch-all would otherwise take it; admin_view asks for a login.
    path(
        "admin/orders/order/<uuid:order_id>/refund/",
        admin.site.admin_view(order_refund_view),
        name="order-refund",
    ),
    path("admin/", admin.site.urls),
    path("", include("payments.urls")),
]
