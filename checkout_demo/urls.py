"""Root URLs: the admin, and everything the payments app serves to buyers and to Stripe."""

from django.contrib import admin
from django.urls import include, path

from payments.admin_attention import needs_attention_view
from payments.admin_refunds import order_refund_view

# At 1280 px the navigation sidebar takes the width the order list needs for its e-mail and date columns;
# the breadcrumbs and the index page lead everywhere it did.
admin.site.enable_nav_sidebar = False

urlpatterns = [
    # Before the admin's own URLs, whose catch-all would otherwise take it; admin_view asks for a login.
    path(
        "admin/orders/order/<uuid:order_id>/refund/",
        admin.site.admin_view(order_refund_view),
        name="order-refund",
    ),
    path(
        "admin/needs-attention/",
        admin.site.admin_view(needs_attention_view),
        name="needs-attention",
    ),
    path("admin/", admin.site.urls),
    path("", include("payments.urls")),
]

handler400 = "checkout_demo.errors.bad_request"
handler403 = "checkout_demo.errors.permission_denied"
handler404 = "checkout_demo.errors.page_not_found"
handler500 = "checkout_demo.errors.server_error"
