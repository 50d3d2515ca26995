"""Hooks for what a shop does after an order changes."""

from django.dispatch import Signal

# The shop's fulfillment hook (ship the goods, grant the access). Sent once per fulfilled order, after
# the fulfilling transaction commits, inside a transaction of its own that also marks the order as
# signalled (see `orders.fulfillment`): a receiver's database writes commit exactly once; a receiver
# with outside effects should be idempotent on `order_id`. Receivers get `order_id`, `source` and
# `stripe_event_id` as keyword arguments.
order_fulfilled = Signal()

# Sent once per succeeded refund, after its commit, in a transaction that marks the refund as signalled
# (`OrderRefund.signalled_at`; see `orders.refund_signals`). Receivers get `order_id`, `amount` (of this
# refund, minor units), `currency`, `full` (the order is now refunded in full) and `refund_id` (Stripe's).
order_refunded = Signal()

# Sent once per status a dispute reaches (opened, under review, won, lost...), durably in the same way
# (`OrderDispute.signalled_status`). Receivers get `order_id`, `dispute_id` (Stripe's) and `status`.
order_disputed = Signal()
