"""Receivers the payments app connects at start-up (see `PaymentsConfig.ready`)."""

import logging
import uuid
from typing import Any

logger = logging.getLogger(__name__)


def order_fulfilled_log(
    sender: Any, *, order_id: uuid.UUID | str, source: str, stripe_event_id: str | None, **kwargs: Any
) -> None:
    """Log that an order was fulfilled: the point where a shop ships, emails or grants access.

    `orders.signals.order_fulfilled` is sent once per order, after the fulfilling transaction commits,
    by the winning transition only, however many webhooks, replays or redirects raced for it; a signal
    lost with its process is sent later by `reconcile_orders` (see `orders.fulfillment`). A shop
    connects its own receiver to that signal (in its AppConfig.ready), as this one is connected.
    """
    logger.info(
        "order %s fulfilled: shop fulfillment hook fired (source=%s event=%s)",
        order_id,
        source,
        stripe_event_id or "-",
    )
