"""Customer e-mails: owed once with what makes them due, sent by the worker through a real SMTP server,
retried with backoff, and never sent twice, whatever redeliveries, replays, audits and crashes."""

import logging
from collections import Counter
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from conftest import run_together
from orders import transitions
from orders.models import Order, OrderRefund, OrderStatus
from orders.services import order_create
from orders.signals import signals_resend
from payments.emails import LEASE_LOST, customer_email_owe, emails_send_due
from payments.models import CustomerEmail, EmailKind, EmailStatus
from payments.tests.events import event, new_id, open_order, receive, refund_object, session_event
from payments.tests.smtp import SmtpServer, body, free_port
from payments.worker import Worker

pytestmark = pytest.mark.django_db

BUYER = "buyer@example.com"
SITE = "https://shop.example.com"
COMPLETED = "checkout.session.completed"
FAILED = "checkout.session.async_payment_failed"


@pytest.fixture
def smtp(settings):
    """Return a real SMTP server that the project's e-mails go to."""
    server = SmtpServer().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.SITE_URL = SITE
    yield server
    server.stop()


@pytest.fixture
def smtp_down(settings):
    """Aim the project's e-mails at a port where nothing listens (connection refused)."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()


@pytest.fixture
def email_log(caplog):
    """Return caplog, hearing payments.emails (the project's loggers do not propagate to caplog's root)."""
    logger = logging.getLogger("payments.emails")
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


def emails(order: Order) -> list[tuple[str, str]]:
    return list(CustomerEmail.objects.filter(order=order).values_list("kind", "status"))


def fulfilled(product, *, quantity: int = 2, email: str = BUYER) -> Order:
    """Return an order fulfilled by its webhook, its signal sent: its confirmation is owed."""
    order = open_order(product, quantity=quantity)
    receive(session_event(COMPLETED, order, email=email))
    return Order.objects.get(pk=order.pk)


def test_a_fulfilled_order_owes_one_confirmation_whatever_replays_and_resends_follow(product):
    order = open_order(product)
    completed = session_event(COMPLETED, order)

    for _ in range(3):
        receive(completed)
    call_command("replay_events", completed["id"], verbosity=0)
    signals_resend(older_than=timedelta(0))
    Worker(name="test").sweep(grace=timedelta(0))

    assert emails(order) == [(EmailKind.ORDER_CONFIRMATION, EmailStatus.OWED)]
    assert CustomerEmail.objects.get().to_address == BUYER


def test_owing_an_email_twice_inserts_one_row_per_order_and_reason_and_one_per_refund(product):
    order = fulfilled(product)
    first, second = (
        OrderRefund.objects.create(
            order=order, amount=100, currency="usd", status="succeeded", requested_by="admin"
        )
        for _ in range(2)
    )

    for _ in range(2):
        customer_email_owe(order_id=order.pk, kind=EmailKind.ORDER_CONFIRMATION)
        customer_email_owe(order_id=order.pk, kind=EmailKind.PAYMENT_FAILED)
        customer_email_owe(order_id=order.pk, kind=EmailKind.REFUND_NOTICE, refund_id=first.pk)
    customer_email_owe(order_id=order.pk, kind=EmailKind.REFUND_NOTICE, refund_id=second.pk)

    kinds = sorted(CustomerEmail.objects.values_list("kind", "refund_id"), key=str)
    assert kinds == sorted(
        [
            (EmailKind.ORDER_CONFIRMATION, None),
            (EmailKind.PAYMENT_FAILED, None),
            (EmailKind.REFUND_NOTICE, first.pk),
            (EmailKind.REFUND_NOTICE, second.pk),
        ],
        key=str,
    )


def test_the_confirmation_names_the_items_amounts_reference_and_the_order_page(product, smtp):
    order = fulfilled(product, quantity=2)

    assert emails_send_due() == 1

    (message,) = smtp.messages
    assert message["To"] == BUYER
    assert message["Subject"] == f"Your order {order.reference} is confirmed"
    link = f"{SITE}/success?session_id={order.stripe_checkout_session_id}"
    for part in (body(message, "plain"), body(message, "html")):
        assert "Test product" in part and "99.98 USD" in part and "49.99 USD" in part
        assert order.reference in part and str(order.pk) in part and link in part
    assert "Test product \u00d7 2 at 49.99 USD: 99.98 USD" in body(message, "plain")
    email = CustomerEmail.objects.get()
    assert (email.status, email.attempts, email.claimed_until) == (EmailStatus.SENT, 1, None)
    assert email.sent_at is not None
    assert emails_send_due() == 0  # sent: never again


def test_without_site_url_the_email_carries_no_link(product, smtp, settings):
    settings.SITE_URL = ""
    fulfilled(product)

    emails_send_due()

    assert "http" not in body(smtp.messages[0], "plain")


def test_each_succeeded_refund_owes_one_notice_of_its_amount_and_what_remains(product, emulator, smtp):
    order = order_create(product=product, quantity=2, customer_email=BUYER)
    transitions.order_fulfill(order_id=order.pk, source="webhook", payment_intent_id=new_id("pi_"))
    order.refresh_from_db()
    first = event(
        "refund.updated", refund_object(order, refund_id=new_id("re_"), amount=3000, status="succeeded")
    )
    pending = refund_object(order, refund_id=new_id("re_"), amount=1000, status="pending")

    for evt in (first, first, event("refund.created", pending), event("refund.updated", pending)):
        receive(evt)
    call_command("replay_events", first["id"], verbosity=0)
    assert emails_send_due() == 1
    receive(event("refund.updated", {**pending, "status": "succeeded"}))
    assert emails_send_due() == 1

    assert list(CustomerEmail.objects.values_list("kind", flat=True)) == [EmailKind.REFUND_NOTICE] * 2
    assert smtp.subjects() == [f"A refund for your order {order.reference}"] * 2
    text = body(smtp.messages[0], "plain")
    assert "We have refunded 30.00 USD" in text
    assert "Refunded in all: 30.00 USD of 99.98 USD" in text and "Still paid: 69.98 USD" in text
    assert "Still paid: 59.98 USD" in body(smtp.messages[1], "plain")


def test_a_failed_delayed_payment_owes_one_notice(product, smtp):
    order = open_order(product)
    receive(session_event(COMPLETED, order, payment_status="unpaid"))
    failed = session_event(FAILED, order, payment_status="unpaid")

    receive(failed)
    receive(failed)
    call_command("replay_events", failed["id"], verbosity=0)

    assert emails(order) == [(EmailKind.PAYMENT_FAILED, EmailStatus.OWED)]
    emails_send_due()
    (message,) = smtp.messages
    assert message["Subject"] == f"The payment for your order {order.reference} failed"
    assert "did not go through" in body(message, "plain") and "49.99 USD" in body(message, "html")


def test_a_failed_payment_event_that_loses_the_fail_transition_owes_no_notice(product):
    order = open_order(product)
    receive(session_event(COMPLETED, order, payment_status="unpaid"))
    transitions.order_fail(order_id=order.pk, source="admin", reason="Failed by staff in the admin.")

    receive(session_event(FAILED, order, payment_status="unpaid"))

    assert Order.objects.get(pk=order.pk).status == OrderStatus.FAILED
    assert emails(order) == []


def test_with_customer_emails_off_nothing_is_owed(product, settings):
    settings.CUSTOMER_EMAILS = False
    order = fulfilled(product)
    receive(session_event(FAILED, open_order(product), payment_status="unpaid"))

    customer_email_owe(order_id=order.pk, kind=EmailKind.ORDER_CONFIRMATION)

    assert not CustomerEmail.objects.exists()


def test_an_order_without_a_buyer_address_owes_nothing_and_says_so(product, email_log):
    order = open_order(product)
    transitions.order_fulfill(order_id=order.pk, source="webhook")

    Worker(name="test").sweep(grace=timedelta(0))

    assert Order.objects.get(pk=order.pk).fulfillment_signalled_at is not None
    assert not CustomerEmail.objects.exists()
    assert email_log.messages == [
        f"order {order.pk} e-mail order_confirmation not owed: the order has no buyer address"
    ]


def test_log_lines_name_the_order_and_never_the_whole_address(product, smtp, email_log):
    order = fulfilled(product, email="bea.buyer@example.com")
    emails_send_due()

    assert email_log.messages == [
        f"order {order.pk} e-mail order_confirmation owed to b***@example.com",
        f"order {order.pk} e-mail order_confirmation sent to b***@example.com",
    ]
    assert {record.order_id for record in email_log.records} == {str(order.pk)}


def test_smtp_down_is_retried_with_the_events_backoff_then_left_failed(product, smtp_down, settings):
    settings.RETRY_BASE_SECONDS, settings.RETRY_MAX_SECONDS, settings.EMAIL_MAX_ATTEMPTS = 5, 8, 3
    order = fulfilled(product)
    waits = []

    for _ in range(3):
        before = timezone.now()
        assert emails_send_due() == 0
        assert emails_send_due() == 0  # not due again before its backoff
        email = CustomerEmail.objects.get()
        if email.next_attempt_at:
            waits.append(round((email.next_attempt_at - before).total_seconds()))
            CustomerEmail.objects.update(next_attempt_at=timezone.now())

    assert waits == [5, 8]  # doubling from the base, capped; no wait after the last attempt
    assert (email.status, email.attempts, email.next_attempt_at) == (EmailStatus.FAILED, 3, None)
    assert "ConnectionRefusedError" in email.last_error
    assert emails(order) == [(EmailKind.ORDER_CONFIRMATION, EmailStatus.FAILED)]


@pytest.mark.parametrize("trouble", ["refused", "hung up"])
def test_an_email_the_server_fails_is_retried_and_the_rest_of_the_batch_still_goes(
    product, smtp, settings, trouble
):
    settings.RETRY_BASE_SECONDS = 60
    first, second = fulfilled(product), fulfilled(product)
    smtp.reply = "451 Try again later" if trouble == "refused" else "250 OK"
    smtp.hang_up = trouble == "hung up"
    smtp.on_data = lambda: setattr(smtp, "reply", "250 OK")  # the first message only

    assert emails_send_due() == 1

    assert emails(first) == [(EmailKind.ORDER_CONFIRMATION, EmailStatus.OWED)]
    assert emails(second) == [(EmailKind.ORDER_CONFIRMATION, EmailStatus.SENT)]
    error = CustomerEmail.objects.get(order=first).last_error
    assert ("451" if trouble == "refused" else "SMTPServerDisconnected") in error


def test_a_stopping_worker_sends_no_more_emails(product, smtp):
    fulfilled(product)
    worker = Worker(name="test")
    worker.stop()

    assert worker.run_batch() == 0
    assert emails(Order.objects.get()) == [(EmailKind.ORDER_CONFIRMATION, EmailStatus.OWED)]


def test_an_email_left_sending_past_its_lease_is_failed_and_never_sent_again(product, smtp):
    stale, live = fulfilled(product), fulfilled(product)
    now = timezone.now()
    CustomerEmail.objects.filter(order=stale).update(
        status=EmailStatus.SENDING, claimed_until=now - timedelta(seconds=1)
    )
    CustomerEmail.objects.filter(order=live).update(
        status=EmailStatus.SENDING, claimed_until=now + timedelta(minutes=5)
    )

    Worker(name="test").sweep(grace=timedelta(0))
    sent = emails_send_due()

    assert emails(stale) == [(EmailKind.ORDER_CONFIRMATION, EmailStatus.FAILED)]
    assert CustomerEmail.objects.get(order=stale).last_error == LEASE_LOST
    assert emails(live) == [(EmailKind.ORDER_CONFIRMATION, EmailStatus.SENDING)]  # its worker is alive
    assert (sent, smtp.messages) == (0, [])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("reply", ["250 OK", "451 Try again later"])
def test_a_send_that_outlives_its_lease_stays_failed_whatever_the_server_answers(product, smtp, reply):
    fulfilled(product)
    smtp.reply = reply

    def lease_runs_out() -> None:  # while the server holds the message, another worker's sweep runs
        CustomerEmail.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))
        Worker(name="other").sweep(grace=timedelta(0))

    smtp.on_data = lease_runs_out
    emails_send_due()

    email = CustomerEmail.objects.get()
    assert (email.status, email.last_error) == (EmailStatus.FAILED, LEASE_LOST)
    assert emails_send_due() == 0
    assert len(smtp.messages) == 1


@pytest.mark.django_db(transaction=True)
def test_workers_sending_at_once_send_each_email_once(product, smtp):
    orders = [fulfilled(product) for _ in range(30)]

    run_together([lambda _: emails_send_due(limit=3)] * 4, rounds=4)  # room for 48: all 30 go

    assert Counter(smtp.subjects()) == Counter(
        f"Your order {order.reference} is confirmed" for order in orders
    )
    assert set(CustomerEmail.objects.values_list("status", flat=True)) == {EmailStatus.SENT}
