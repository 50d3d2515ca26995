"""The payments app's own errors; Stripe's are translated into these in `payments.gateway`."""


class PaymentProviderError(Exception):
    """Stripe could not do what was asked."""


class PaymentProviderNotConfigured(PaymentProviderError):
    """No Stripe secret key is configured."""


class PaymentProviderUnavailable(PaymentProviderError):
    """Stripe could not be reached, timed out, rate-limited us or failed on its side: try again later."""


class PaymentProviderRefused(PaymentProviderError):
    """Stripe understood the request and refused it; trying again will not help."""


class StripeResourceMissing(PaymentProviderRefused):
    """Stripe has no object with that id for this key: a Checkout Session, a price, a product..."""


class NotOurs(Exception):
    """A Stripe session or payment was not made by this project's checkout for the order it names."""


class WebhookSignatureInvalid(Exception):
    """The webhook's Stripe-Signature header is missing, malformed, stale or signed with another secret."""


class WebhookPayloadInvalid(Exception):
    """The webhook body is signed but is not a Stripe event."""
