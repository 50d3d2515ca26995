"""The handler of each Stripe event type, and the registry the inbox dispatches through.

A handler reads the signed event (the truth at its moment; no Stripe call is made) and says what became
of it as an `EventOutcome`. It runs inside the inbox's transaction, so the order's transition and the
event's new status commit together. The four checkout.session.* events carry the session as it is now,
so one handler serves them all: `payments.services.sessions` applies the session to its order.
"""

from collections.abc import Callable
from typing import Any

from payments import gateway
from payments.gateway import CheckoutSession
from payments.models import EventStatus
from payments.outcome import EventOutcome
from payments.services.sessions import PaidTransition, SessionDecision, checkout_session_apply

Handler = Callable[[dict[str, Any], str], EventOutcome]

ASYNC_PAYMENT_FAILED = "checkout.session.async_payment_failed"
EVENT_STATUSES = {
    SessionDecision.NOT_OURS: EventStatus.IGNORED,
    SessionDecision.AMOUNT_MISMATCH: EventStatus.NEEDS_REVIEW,
    SessionDecision.LATE_PAYMENT: EventStatus.NEEDS_REVIEW,
}


def checkout_session_event(event: dict[str, Any], source: str) -> EventOutcome:
    """Apply the event's Checkout Session to its order; the delayed payment failed if the type says so."""
    data = event["data"].get("object")
    if not isinstance(data, dict) or data.get("object") != "checkout.session" or not data.get("id"):
        return EventOutcome.of(event, EventStatus.IGNORED, "event data is not a Checkout Session")
    session = CheckoutSession.from_payload(data)
    applied = checkout_session_apply(
        session=session,
        source=source,
        paid_transition=PaidTransition.FULFILL,
        stripe_event_id=event["id"],
        payment_failed=event["type"] == ASYNC_PAYMENT_FAILED,
    )
    return EventOutcome.of(
        event,
        EVENT_STATUSES.get(applied.decision, EventStatus.PROCESSED),
        applied.reason,
        order_id=applied.order_id,
        session_id=session.id,
    )


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": checkout_session_event,
    "checkout.session.async_payment_succeeded": checkout_session_event,
    ASYNC_PAYMENT_FAILED: checkout_session_event,
    "checkout.session.expired": checkout_session_event,
}


def event_handle(*, event: dict[str, Any], source: str) -> EventOutcome:
    """Run the event's handler with the given transition source; ignore types without one.

    An event of the other mode than the key's (a test event reaching a live shop, as a live Connect
    endpoint receives both) concerns no order of this shop, whatever ids it carries.
    """
    livemode = event.get("livemode")
    if isinstance(livemode, bool) and livemode != gateway.key_is_live():
        mode, key = ("live", "test") if livemode else ("test", "live")
        reason = f"a {mode}-mode event, and this shop uses a {key} key"
        return EventOutcome.of(event, EventStatus.IGNORED, reason)
    handler = HANDLERS.get(event["type"])
    if handler is None:
        return EventOutcome.of(event, EventStatus.IGNORED, "unhandled event type")
    return handler(event, source)
