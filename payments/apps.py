import logging
from typing import Any

from django.apps import AppConfig

logger = logging.getLogger(__name__)


def order_fulfilled_log(
    sender: Any, *, order_id: object, source: str, stripe_event_id: str | None, **kwargs
) -> None:
    """The shop's fulfilment hook, here a log line: a shop connects its own receiver of `order_fulfilled`
    (ship the goods, grant the access) in its AppConfig.ready, as this one is connected."""
    logger.info(
        "order %s fulfilled: shop fulfillment hook fired (source=%s event=%s)",
        order_id,
        source,
        stripe_event_id or "-",
    )


class PaymentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from orders.signals import order_fulfilled, order_refunded
        from payments import checks  # noqa: F401 - importing checks registers them
        from payments.emails import order_fulfilled_email, order_refunded_email

        order_fulfilled.connect(order_fulfilled_log, dispatch_uid="payments.order_fulfilled_log")
        # Inside each signal's claim: the e-mail is owed once, with it.
        order_fulfilled.connect(order_fulfilled_email, dispatch_uid="payments.order_fulfilled_email")
        order_refunded.connect(order_refunded_email, dispatch_uid="payments.order_refunded_email")
