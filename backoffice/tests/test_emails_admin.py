"""Customer e-mails in the admin: on the order's page, a failed one in Needs attention, and sending it again
only for staff who hold the permission."""

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from backoffice.tests.test_attention import INDEX, PAGE, section
from backoffice.tests.test_order_actions import staff
from orders.models import Order, order_reference
from payments.emails import emails_send_due
from payments.models import CustomerEmail, EmailKind, EmailStatus
from payments.tests.events import open_order

pytestmark = pytest.mark.django_db

EMAILS = reverse("admin:payments_customeremail_changelist")
VIEWER = ("orders.view_order", "payments.view_customeremail")
RESENDER = (*VIEWER, "payments.resend_customeremail")
REFUSED = "Connection refused by the mail server."


def email_row(order: Order, *, status: str, kind: str = EmailKind.ORDER_CONFIRMATION) -> CustomerEmail:
    sent = {"sent_at": timezone.now()} if status == EmailStatus.SENT else {}
    return CustomerEmail.objects.create(
        order=order, kind=kind, to_address="buyer@example.com", status=status, attempts=8, **sent,
        last_error=REFUSED if status == EmailStatus.FAILED else "",
    )  # fmt: skip


def resend(client: Client, *emails: CustomerEmail) -> str:
    """Post the action as the e-mails list's form does; return the messages shown."""
    selected = [str(email.pk) for email in emails]
    data = {"action": "resend_selected", "_selected_action": selected}
    response = client.post(EMAILS, data, follow=True)
    assert response.status_code == 200
    return " | ".join(str(message) for message in response.context["messages"])


def status(email: CustomerEmail) -> tuple[str, int]:
    email.refresh_from_db()
    return email.status, email.attempts


def test_the_order_page_shows_each_email_its_status_attempts_and_error(product):
    order = open_order(product)
    email_row(order, status=EmailStatus.SENT)
    email_row(order, status=EmailStatus.FAILED, kind=EmailKind.PAYMENT_FAILED)

    html = staff(*VIEWER).get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()

    for text in ("Order confirmation", "Payment failed", "buyer@example.com", "Sent", "Failed", REFUSED):
        assert text in html


def test_needs_attention_lists_failed_emails_for_staff_who_may_view_them(product):
    order = open_order(product)
    email_row(order, status=EmailStatus.FAILED)
    email_row(open_order(product), status=EmailStatus.SENT)

    html = staff(*VIEWER).get(PAGE).content.decode()

    failed = section(html, "failed_emails")
    assert order_reference(order.pk) in failed and REFUSED in failed and "Order confirmation" in failed
    assert "(1)" in failed and f"{EMAILS}?status__exact=failed" in failed
    assert "<strong>1</strong> failed e-mail</a>" in staff(*VIEWER).get(INDEX).content.decode()
    assert 'id="failed_emails"' not in staff("orders.view_order").get(PAGE).content.decode()


def test_staff_with_the_permission_send_a_failed_email_again_and_the_worker_sends_it(product, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    order = open_order(product)
    failed, sent = email_row(order, status=EmailStatus.FAILED), email_row(open_order(product), status="sent")

    text = resend(staff(*RESENDER), failed, sent)

    assert text == "1 failed e-mail owed again; the worker sends them shortly."
    assert status(failed) == (EmailStatus.OWED, 0)
    assert status(sent) == (EmailStatus.SENT, 8)  # only a failed e-mail is sent again
    assert emails_send_due() == 1
    assert [message.to for message in mail.outbox] == [["buyer@example.com"]]
    assert status(failed) == (EmailStatus.SENT, 1)


def test_staff_without_the_permission_cannot_send_an_email_again_even_by_a_forged_post(product):
    failed = email_row(open_order(product), status=EmailStatus.FAILED)
    viewer = staff(*VIEWER)

    text = resend(viewer, failed)

    assert viewer.get(EMAILS).context["action_form"] is None  # the list offers no action
    assert status(failed) == (EmailStatus.FAILED, 8)
    assert text == (
        "“Send selected failed e-mails again (they did not arrive)” was not done: it needs the permission "
        "“Can send a failed customer e-mail again” (payments.resend_customeremail)."
    )
