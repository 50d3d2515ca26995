"""What the audit of the order book against Stripe can find: the kinds of disagreement, and one finding."""

from dataclasses import dataclass
from enum import StrEnum


class Disagreement(StrEnum):
    """One way an order and Stripe's money can disagree."""

    PAID_NOT_FULFILLED = "paid, order not fulfilled"
    LATE_PAYMENT = "paid, order closed"
    FULFILLED_NOT_PAID = "fulfilled, session not paid"
    CLOSED_SESSION_OPEN = "closed, session still open"
    OPEN_SESSION_EXPIRED = "session expired, order open"
    AMOUNT_DIFFERS = "amounts differ"
    NOT_ITS_SESSION = "session names another order"
    STRANDED = "session unknown to Stripe"
    # Money going back: refunds and disputes of the order's payment.
    REFUND_UNKNOWN = "refund unknown here"
    REFUND_STATUS_DIFFERS = "refund status differs"
    DISPUTE_UNKNOWN = "dispute unknown here"
    DISPUTE_STATUS_DIFFERS = "dispute status differs"
    NOT_AT_STRIPE = "refund or dispute unknown to Stripe"
    REFUNDED_AMOUNT_DIFFERS = "refunded amount differs"
    RETURNED_NOT_REFUNDED = "money returned, order not refunded"
    REFUNDED_NOT_RETURNED = "refunded, money not returned"


@dataclass(frozen=True)
class Finding:
    """A disagreement of one order with Stripe, and what `fix` did about it ('' when nothing)."""

    kind: Disagreement
    detail: str
    fixed: bool = False
    fix: str = ""

    def fixed_as(self, fix: str, *, fixed: bool = False) -> "Finding":
        """Return this finding with what the repair did."""
        return Finding(self.kind, self.detail, fixed=fixed, fix=fix)
