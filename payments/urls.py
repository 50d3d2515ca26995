from django.urls import re_path

from payments.views import webhook

urlpatterns = [
    re_path(r"^stripe-webhook/?$", webhook.stripe_webhook, name="stripe-webhook"),
]
