"""Hooks for what a shop does after an order changes.

Each is sent once, by a task that the transaction making it due queues (`orders.tasks`), from a worker,
inside a transaction of its own that marks it as sent: a receiver's database writes commit exactly once
with that mark. A receiver that raises rolls back with the mark and the task runs again with backoff, up
to `SIGNAL_MAX_ATTEMPTS`; after that the signal stays owed and `reconcile_orders` sends it. A receiver
with effects outside the database (an email, a warehouse API) should be idempotent on what it is told
of, since a crash after its effect and before the commit makes it run again.
"""

from django.dispatch import Signal

# The shop's fulfillment hook (ship the goods, grant the access): once per fulfilled order, marked by
# `Order.fulfillment_signalled_at` (see `orders.fulfillment`). Receivers get `order_id`, `source` and
# `stripe_event_id` as keyword arguments.
order_fulfilled = Signal()

# Once per succeeded refund, marked by `OrderRefund.signalled_at` (see `orders.refund_signals`).
# Receivers get `order_id`, `amount` (of this refund, minor units), `currency`, `full` (the order is
# refunded in full as the signal is sent) and `refund_id` (Stripe's).
order_refunded = Signal()

# Once per status a dispute reaches (opened, under review, won, lost...), marked by
# `OrderDispute.signalled_status`. Receivers get `order_id`, `dispute_id` (Stripe's) and `status`: the
# dispute's status as the signal is sent, so one that moved on before a worker sent its signal is told
# of its newest status only, and never of one going backwards.
order_disputed = Signal()
