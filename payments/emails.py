"""E-mails to buyers, each owed by a row committed with what makes it due, and sent by the worker at most
once, never lost unseen: a row left `sending` past its lease may have reached the buyer, so it is failed for a
person to decide (docs/emails.md)."""

import logging
import uuid
from datetime import timedelta
from functools import partial
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import DatabaseError, transaction
from django.db.models import F, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from orders.db import storable_text, update_returning
from orders.logs import log_fields
from orders.models import Order
from orders.money import money_format
from payments.models import CustomerEmail, EmailKind, EmailStatus

logger = logging.getLogger(__name__)

# Small, so that a batch ends within its lease even if every message takes the whole EMAIL_TIMEOUT.
BATCH_SIZE = 10
LEASE_LOST = (
    "Its worker stopped while sending it (lease expired): it may have reached the buyer, so it is not sent "
    "again by itself. Send it again once you know it did not arrive."
)


def customer_email_owe(*, order_id: uuid.UUID | str, kind: str, refund_id: uuid.UUID | None = None) -> None:
    """Owe the buyer this e-mail unless it is owed already; call it in the transaction that makes it due."""
    if not settings.CUSTOMER_EMAILS:
        return
    address = Order.objects.filter(pk=order_id).values_list("customer_email", flat=True).first() or ""
    row = CustomerEmail(order_id=order_id, kind=kind, refund_id=refund_id, to_address=address)
    if not address:
        _log(logging.INFO, row, "not owed: the order has no buyer address")
        return
    CustomerEmail.objects.bulk_create([row], ignore_conflicts=True)
    _log(logging.INFO, row, "owed to %s", masked(address))


def order_fulfilled_email(sender: Any, *, order_id: uuid.UUID | str, **kwargs: Any) -> None:
    customer_email_owe(order_id=order_id, kind=EmailKind.ORDER_CONFIRMATION)


def order_refunded_email(sender: Any, *, order_id: uuid.UUID, refund_pk: uuid.UUID, **kwargs: Any) -> None:
    customer_email_owe(order_id=order_id, kind=EmailKind.REFUND_NOTICE, refund_id=refund_pk)


def emails_send_due(*, limit: int = BATCH_SIZE) -> int:
    """Claim up to `limit` due e-mails and send them over one connection; return how many were sent."""
    if not (claimed := _claim(limit)):
        return 0
    connection = get_connection()
    try:
        return sum(_send(email, connection) for email in claimed)
    finally:
        connection.close()


def emails_sending_expire() -> int:
    """Mark failed the e-mails whose worker died while sending them; count them."""
    stale = CustomerEmail.objects.filter(status=EmailStatus.SENDING, claimed_until__lt=timezone.now())
    failed = {"status": EmailStatus.FAILED, "claimed_until": None, "next_attempt_at": None}
    return _updated(stale, {**failed, "last_error": LEASE_LOST}, logging.ERROR, f"failed: {LEASE_LOST}")


def customer_emails_resend(*, emails: QuerySet[CustomerEmail], by: str) -> int:
    """Owe again, from a first attempt, the failed e-mails a person found did not arrive; count them."""
    again = {"status": EmailStatus.OWED, "attempts": 0, "next_attempt_at": timezone.now()}
    return _updated(
        emails.filter(status=EmailStatus.FAILED), again, logging.INFO, f"to be sent again, {by} asked"
    )


def masked(address: str) -> str:
    """Return the address as logs may show it: b***@example.com."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def _claim(limit: int) -> list[CustomerEmail]:
    """Take due e-mails for this worker in one UPDATE; SKIP LOCKED passes over another worker's claim."""
    now = timezone.now()
    with transaction.atomic():
        due = CustomerEmail.objects.filter(status=EmailStatus.OWED, next_attempt_at__lte=now)
        due = due.order_by("next_attempt_at", "pk").select_for_update(skip_locked=True)
        claim = CustomerEmail.objects.filter(pk__in=due.values("pk")[:limit])
        lease = now + timedelta(seconds=settings.WORKER_LEASE_SECONDS)
        claiming = {"status": EmailStatus.SENDING, "attempts": F("attempts") + 1, "claimed_until": lease}
        pks = update_returning(claim, claiming, "id")
    claimed = CustomerEmail.objects.filter(pk__in=pks).select_related("order", "refund")
    return list(claimed.prefetch_related("order__lines__product"))  # a batch's items in one query


def _send(email: CustomerEmail, connection: BaseEmailBackend) -> bool:
    with log_fields(order_id=email.order_id):
        try:
            connection.open()  # once a batch: a no-op while the connection is open
            connection.send_messages([_message(email, connection)])
        except DatabaseError:
            raise
        except Exception as exc:
            connection.close()  # the next message opens a new one
            _attempt_failed(email, exc)
            return False
        sent = {"status": EmailStatus.SENT, "sent_at": timezone.now(), "claimed_until": None}
        CustomerEmail.objects.filter(pk=email.pk, status=EmailStatus.SENDING).update(**sent)
        _log(logging.INFO, email, "sent to %s", masked(email.to_address))
        return True


def _attempt_failed(email: CustomerEmail, exc: Exception) -> None:
    """Owe the e-mail again after the events' backoff, or leave it failed once it is out of attempts."""
    from payments.inbox import retry_delay  # here: the inbox imports sessions, which owe e-mails

    final, delay = email.attempts >= settings.EMAIL_MAX_ATTEMPTS, retry_delay(attempt=email.attempts)
    error = f"{type(exc).__name__}: {exc}"
    CustomerEmail.objects.filter(pk=email.pk, status=EmailStatus.SENDING).update(
        status=EmailStatus.FAILED if final else EmailStatus.OWED,
        next_attempt_at=None if final else timezone.now() + delay,
        claimed_until=None,
        last_error=storable_text(error),
    )
    then = "no attempt left" if final else f"tried again in {delay.total_seconds():.0f} s"
    error = error.replace(email.to_address, masked(email.to_address))
    level = logging.ERROR if final else logging.WARNING
    _log(level, email, "failed on attempt %d (%s): %s", email.attempts, error, then)


def _message(email: CustomerEmail, connection: BaseEmailBackend) -> EmailMultiAlternatives:
    context, name = _context(email), f"payments/emails/{email.kind}"
    subject = " ".join(render_to_string(f"{name}_subject.txt", context).split())
    text = render_to_string(f"{name}.txt", context)
    message = EmailMultiAlternatives(subject, text, to=[email.to_address], connection=connection)
    message.attach_alternative(render_to_string(f"{name}.html", context), "text/html")
    return message


def _context(email: CustomerEmail) -> dict[str, Any]:
    """Return what the templates show: the one place that reads an order's items."""
    order = email.order
    money = partial(money_format, currency=order.currency)
    items = [
        {
            "name": line.product.name,
            "quantity": line.quantity,
            "unit_price": money(line.unit_amount),
            "amount": money(line.amount),
        }
        for line in order.lines.all()
    ]
    # What Stripe added to the lines, as the buyer's receipt shows it; the discount taken off.
    added = [
        ("Discount", -order.amount_discount),
        ("Shipping", order.amount_shipping),
        ("Tax", order.amount_tax),
    ]
    status_url = ""
    if settings.SITE_URL and order.stripe_checkout_session_id:
        query = urlencode({"session_id": order.stripe_checkout_session_id})
        status_url = f"{settings.SITE_URL}{reverse('success')}?{query}"
    return {
        "order": order,
        "reference": order.reference,
        "items": items,
        "added": [(label, money(amount)) for label, amount in added if amount],
        "total": money(order.amount_total),
        "refund_amount": money(email.refund.amount) if email.refund else "",
        "refunded": money(order.amount_refunded),
        "remaining": money(order.amount_total - order.amount_refunded),
        "status_url": status_url,
    }


def _updated(emails: QuerySet[CustomerEmail], values: dict[str, Any], level: int, what: str) -> int:
    """Update the e-mails, log a line for each under its order; count them."""
    pks = update_returning(emails, values, "id")
    for email in CustomerEmail.objects.filter(pk__in=pks):
        _log(level, email, "%s", what)
    return len(pks)


def _log(level: int, email: CustomerEmail, message: str, *args: object) -> None:
    extra = {"order_id": str(email.order_id)}
    logger.log(level, f"order %s e-mail %s {message}", email.order_id, email.kind, *args, extra=extra)
