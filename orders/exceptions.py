"""Errors of the orders app."""


class OrderNotFound(Exception):
    """No order has the given id."""


class CartRefused(Exception):
    """An order that cannot be made as asked; `sku` names the item at fault when one is."""

    def __init__(self, message: str, *, sku: str | None = None):
        super().__init__(message)
        self.sku = sku


class ProductUnavailable(CartRefused):
    """The product does not exist, is inactive, or cannot be sold yet."""


class InvalidQuantity(CartRefused, ValueError):
    """The quantity is not a whole number within the allowed range."""


class CartInvalid(CartRefused):
    """No lines, too many, or more than one currency."""


class OutOfStock(CartRefused):
    """Fewer units are left than the order asks for."""


class RefundNotFound(Exception):
    """No refund request has the given id."""


class RefundRefused(Exception):
    """The refund cannot be asked for (too much, wrong state, unknown reason); the message says why."""
