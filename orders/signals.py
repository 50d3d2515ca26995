"""Hooks for what a shop does after an order changes."""

from django.dispatch import Signal

# Sent once per order, after the transaction that fulfilled it commits, by the winning caller only.
# Receivers get `order_id`, `source` and `stripe_event_id` as keyword arguments.
order_fulfilled = Signal()
