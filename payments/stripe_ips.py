"""The addresses Stripe sends webhooks from, for STRIPE_WEBHOOK_ALLOWED_IPS=stripe.

Stripe publishes them at https://docs.stripe.com/ips#webhook-notifications (the list itself:
https://stripe.com/files/ips/ips_webhooks.txt) and announces changes seven days ahead on its
api-announce mailing list. Read on 2026-12-01 (the copy read was dated 2026-05-15). When Stripe
changes the list, change it here, or list the addresses in STRIPE_WEBHOOK_ALLOWED_IPS yourself.
Standard library only: the settings import it.
"""

STRIPE_WEBHOOK_IPS = (
    "3.18.12.63",
    "3.69.109.8",
    "3.120.168.93",
    "3.130.192.231",
    "13.235.14.237",
    "13.235.122.149",
    "18.211.135.69",
    "35.154.171.200",
    "35.157.207.129",
    "52.15.183.38",
    "54.88.130.119",
    "54.88.130.237",
    "54.187.174.169",
    "54.187.205.235",
    "54.187.216.72",
)
