from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from orders.signals import order_fulfilled
        from payments import (
            checks,  # noqa: F401 - importing checks registers them
            handlers,
            receivers,
            refund_events,
        )

        # Refund and dispute events join the registry the inbox dispatches through.
        handlers.HANDLERS.update(refund_events.HANDLERS)

        # The shop's fulfillment hook: replace or add receivers of `order_fulfilled` to ship the goods.
        order_fulfilled.connect(receivers.order_fulfilled_log, dispatch_uid="payments.order_fulfilled_log")
