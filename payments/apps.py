from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from orders.admin import OrderAdmin
        from orders.signals import order_fulfilled
        from payments import (
            checks,  # noqa: F401 - importing checks registers them
            handlers,
            receivers,
            refund_events,
        )
        from payments.dashboard import stripe_dashboard_url

        # Refund and dispute events join the registry the inbox dispatches through.
        handlers.HANDLERS.update(refund_events.HANDLERS)

        # The order admin links its Stripe ids to the Dashboard; orders may not import payments, so the
        # app that knows Stripe hands it the function.
        OrderAdmin.stripe_dashboard_url = staticmethod(stripe_dashboard_url)

        # The shop's fulfillment hook: replace or add receivers of `order_fulfilled` to ship the goods.
        order_fulfilled.connect(receivers.order_fulfilled_log, dispatch_uid="payments.order_fulfilled_log")
