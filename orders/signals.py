"""Hooks for what a shop does after an order changes."""

from django.dispatch import Signal

# The shop's fulfillment hook (ship the goods, grant the access). Sent once per fulfilled order, after
# the fulfilling transaction commits, inside a transaction of its own that also marks the order as
# signalled (see `orders.fulfillment`): a receiver's database writes commit exactly once; a receiver
# with outside effects should be idempotent on `order_id`. Receivers get `order_id`, `source` and
# `stripe_event_id` as keyword arguments.
order_fulfilled = Signal()
