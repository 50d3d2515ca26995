"""Sign a webhook body with stripe-python's own signer, as Stripe signs it (tests may import stripe)."""

import stripe


def webhook_signature_header(*, payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """Return a Stripe-Signature header for a payload, made by stripe-python."""
    return stripe.WebhookSignature.generate_signature_header(
        payload.decode("utf-8"), secret, timestamp=timestamp
    )
