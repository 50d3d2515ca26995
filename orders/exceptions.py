"""Errors of the orders app."""


class OrderNotFound(Exception):
    """No order has the given id."""


class ProductUnavailable(Exception):
    """The product does not exist, is inactive, or cannot be sold yet."""


class InvalidQuantity(ValueError):
    """The quantity is not a whole number within the allowed range."""


class RefundNotFound(Exception):
    """No refund request has the given id."""


class RefundRefused(Exception):
    """The refund cannot be asked for (too much, wrong state, unknown reason); the message says why."""
