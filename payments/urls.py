"""Every URL the payments app serves: the buyer's pages and API, Stripe's webhook, and the metrics."""

from django.urls import path, re_path

from payments.views import cart, checkout, metrics, returns, webhook

# Served by checkout_demo.middleware.StripeWebhookMiddleware, before any other middleware; named here for
# reverse() and for a project that leaves the middleware out.
WEBHOOK_PATH = "/stripe-webhook"

urlpatterns = [
    path("", checkout.checkout_page, name="checkout"),
    path("checkout/", checkout.checkout_page_or_create, name="checkout-create"),
    path("cart/", cart.cart, name="cart"),
    path("api/checkout/create-session", checkout.api_create_session, name="api-create-session"),
    path("success", returns.success, name="success"),
    path("orders/<uuid:order_id>/status", returns.order_status, name="order-status"),
    path("cancel", returns.cancel, name="cancel"),
    re_path(r"^stripe-webhook/?$", webhook.stripe_webhook, name="stripe-webhook"),
    path("metrics", metrics.metrics, name="metrics"),
]
