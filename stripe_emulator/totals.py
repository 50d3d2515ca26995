"""A cart's arithmetic: subtotal, discount, shipping and tax, shared out over the line items."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from .currency import round_minor


@dataclasses.dataclass(frozen=True)
class Totals:
    """A session's amounts in minor units, and each line item's share of the discount and tax."""

    subtotal: int
    discount: int
    shipping: int
    tax: int
    shipping_tax: int
    line_discounts: list[int]
    line_taxes: list[int]

    @property
    def total(self) -> int:
        """Return subtotal - discount + shipping + tax."""
        return self.subtotal - self.discount + self.shipping + self.tax


def compute(line_subtotals: list[int], *, discount: int, shipping: int, tax_rate: Decimal | None) -> Totals:
    """Return the totals of a cart whose discount is already capped at its subtotal.

    Tax is exclusive: rate x (subtotal - discount + shipping), rounded once on that whole base, then
    shared out over the line items and the shipping so that the shares add up to it exactly.
    """
    subtotal = sum(line_subtotals)
    line_discounts = allocate(discount, line_subtotals)
    bases = [amount - share for amount, share in zip(line_subtotals, line_discounts, strict=True)]
    tax = round_minor(tax_rate * (subtotal - discount + shipping)) if tax_rate else 0
    *line_taxes, shipping_tax = allocate(tax, [*bases, shipping])
    return Totals(subtotal, discount, shipping, tax, shipping_tax, line_discounts, line_taxes)


def allocate(amount: int, weights: list[int]) -> list[int]:
    """Split `amount` in proportion to `weights`; the remainders go to the largest fractions first."""
    whole = sum(weights)
    if whole == 0:
        return [0] * len(weights)
    exact = [amount * weight for weight in weights]
    shares = [part // whole for part in exact]
    left = amount - sum(shares)
    by_fraction = sorted(range(len(weights)), key=lambda n: (-(exact[n] % whole), n))
    for n in by_fraction[:left]:
        shares[n] += 1
    return shares
