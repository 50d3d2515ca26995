"""The addresses Stripe sends webhooks from, for STRIPE_WEBHOOK_ALLOWED_IPS=stripe; the settings import it,
so standard library only.

Read on 2026-12-01 from https://stripe.com/files/ips/ips_webhooks.txt (dated 2026-05-15; docs.stripe.com/ips).
Stripe announces changes seven days ahead on api-announce: update this list, or set the addresses yourself.
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
