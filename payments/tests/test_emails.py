"""Customer e-mails: owed once with what makes them due, sent by the worker through a real SMTP server,
retried with backoff, and never sent twice, whatever redeliveries, replays, audits and crashes."""

import logging
import os
import re
import signal
from collections import Counter
from datetime import timedelta
from io import StringIO
from unittest.mock import Mock

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import OperationalError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from conftest import run_together
from orders import transitions
from orders.models import Order, OrderRefund, OrderStatus
from orders.services import order_create
from orders.signals import signals_resend
from payments import gateway
from payments.emails import LEASE_LOST, customer_email_owe, emails_send_due
from payments.models import CustomerEmail, EmailKind, EmailStatus, StripeEvent
from payments.sessions import checkout_session_apply
from payments.tests.conftest import WEBHOOK_SECRET, emulator_worker_env
from payments.tests.events import (
    checkout_session,
    deliver,
    emulator_order,
    event,
    new_id,
    open_order,
    receive,
    refund_object,
    session_event,
)
from payments.tests.smtp import SmtpServer, body, free_port
from payments.worker import Worker

pytestmark = pytest.mark.django_db

BUYER = "buyer@example.com"
SITE = "https://shop.example.com"
COMPLETED = "checkout.session.completed"
FAILED = "checkout.session.async_payment_failed"
WITNESS_SETTINGS = "payments.tests.witness.settings"


@pytest.fixture
def smtp_server():
    """Return a real SMTP server, started, for worker processes (its env()) or this one."""
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp(smtp_server, settings):
    """Return a real SMTP server that this process's e-mails go to."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_server.port
    settings.SITE_URL = SITE
    return smtp_server


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

    assert Counter(CustomerEmail.objects.values_list("kind", "refund_id")) == Counter(
        [
            (EmailKind.ORDER_CONFIRMATION, None),
            (EmailKind.PAYMENT_FAILED, None),
            (EmailKind.REFUND_NOTICE, first.pk),
            (EmailKind.REFUND_NOTICE, second.pk),
        ]
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


def test_a_batch_of_emails_reads_its_orders_items_once_not_once_an_email(product, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    for _ in range(3):
        fulfilled(product)

    with CaptureQueriesContext(connection) as captured:
        assert emails_send_due() == 3

    reads = Counter(
        query["sql"].split(" FROM ")[1].split()[0].strip('"')
        for query in captured
        if query["sql"].startswith("SELECT")
    )
    assert reads == {"payments_customeremail": 1, "orders_orderline": 1, "orders_product": 1}
    assert len(mail.outbox) == 3 and all("Test product" in message.body for message in mail.outbox)


def test_without_site_url_the_email_carries_no_link(product, smtp, settings):
    settings.SITE_URL = ""
    fulfilled(product)

    emails_send_due()

    assert "http" not in body(smtp.messages[0], "plain")


def test_each_succeeded_refund_owes_one_notice_of_its_amount_and_what_remains(product, emulator, smtp):
    order = order_create(lines=[(product, 2)], customer_email=BUYER)
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


def refund_notice_link(emulator, synced_product, smtp, *, amount: int | None) -> tuple[Order, str]:
    """Pay and fulfil an order through the emulator, refund `amount` of it (all when None), send the
    notice; return the order and the path its link leads to."""
    order, session = emulator_order(synced_product)
    emulator.pay(session.id, "card", email=BUYER)
    paid = gateway.checkout_session_retrieve(session_id=session.id).payment_intent_id
    transitions.order_fulfill(
        order_id=order.pk, source="webhook", payment_intent_id=paid, customer_email=BUYER
    )
    order.refresh_from_db()
    refunded = order.amount_total if amount is None else amount
    refund = refund_object(order, refund_id=new_id("re_"), amount=refunded, status="succeeded")
    receive(event("refund.updated", refund))
    emails_send_due()
    return order, re.search(rf"{SITE}(\S+)", body(smtp.messages[-1], "plain"))[1]


def test_the_link_in_a_full_refunds_notice_opens_the_orders_page(client, emulator, synced_product, smtp):
    order, link = refund_notice_link(emulator, synced_product, smtp, amount=None)

    response = client.get(link)

    assert smtp.subjects()[-1] == f"A refund for your order {order.reference}"
    assert response.status_code == 200
    assert "Your order was refunded" in response.content.decode()


def test_the_link_in_a_partial_refunds_notice_shows_what_was_refunded(client, emulator, synced_product, smtp):
    order, link = refund_notice_link(emulator, synced_product, smtp, amount=1000)

    page = client.get(link).content.decode()
    status = client.get(reverse("order-status", kwargs={"order_id": order.pk})).json()

    assert '<dt>Refunded</dt><dd id="order-refunded">−$10.00</dd>' in page
    assert (status["status"], status["amount_refunded"]) == ("fulfilled", 1000)


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


@pytest.mark.django_db(transaction=True)
def test_a_failure_notice_that_cannot_be_owed_rolls_the_fail_transition_back_with_it(product, monkeypatch):
    order = open_order(product)
    failed = gateway.CheckoutSession.from_payload(checkout_session(order, payment_status="unpaid"))
    monkeypatch.setattr(CustomerEmail.objects, "bulk_create", Mock(side_effect=OperationalError("gone")))

    with pytest.raises(OperationalError):  # no caller's transaction around it: its own
        checkout_session_apply(session=failed, source="webhook", payment_failed=True)

    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING  # both again on the next try


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


# Real `process_events` workers, on the test database, sending through a real SMTP server.


@pytest.fixture
def webhook(settings):
    """Return a deliverer of signed events to this process's webhook, which stores them for the workers."""
    settings.STRIPE_WEBHOOK_SECRETS = [WEBHOOK_SECRET]
    client = Client()
    return lambda evt: deliver(client, evt)


def confirmed(order: Order) -> str:
    return f"Your order {order.reference} is confirmed"


@pytest.mark.django_db(transaction=True)
def test_a_worker_sends_one_confirmation_whatever_redeliveries_replays_audits_and_kills_follow(
    emulator, live_server, worker, synced_product, smtp_server, webhook, wait_until
):
    emulator.configure(webhook_url=f"{live_server.url}/stripe-webhook", duplicates=2)
    env = {**emulator_worker_env(emulator), **smtp_server.env(), "SITE_URL": SITE}
    first = worker(**env)
    order, session = emulator_order(synced_product, quantity=2)

    emulator.pay(session.id, "card", email=BUYER)

    wait_until(lambda: smtp_server.messages)
    (message,) = smtp_server.messages
    assert (message["To"], message["Subject"]) == (BUYER, confirmed(order))
    for part in (body(message, "plain"), body(message, "html")):
        assert "Synced product" in part and "99.98 USD" in part and order.reference in part
        assert f"{SITE}/success?session_id={session.id}" in part

    completed = StripeEvent.objects.get(order=order, type=COMPLETED)
    assert webhook(completed.event).content == b"duplicate: event already stored"
    call_command("replay_events", completed.stripe_id, verbosity=0)
    call_command("audit_payments", "--fix", "--older-than", "0s", "--max-rate", "1000", stdout=StringIO())
    call_command("reconcile_orders", "--older-than", "0s", stdout=StringIO())
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    worker(**env)
    # The next order's confirmation shows the new worker at work: by then it has swept and sent what was due.
    later, session = emulator_order(synced_product)
    emulator.pay(session.id, "card", email=BUYER)
    wait_until(lambda: len(smtp_server.messages) >= 2)

    assert Counter(smtp_server.subjects()) == Counter([confirmed(order), confirmed(later)])
    assert emails(order) == [(EmailKind.ORDER_CONFIRMATION, EmailStatus.SENT)]


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_inside_the_fulfilment_signal_owes_nothing_and_the_next_one_sends_it_once(
    product, worker, smtp_server, webhook, wait_until, tmp_path
):
    witness = {"WITNESS_DIR": str(tmp_path), **smtp_server.env(), "WORKER_SWEEP_SECONDS": "0.2"}
    order = open_order(product)
    webhook(session_event(COMPLETED, order))

    stuck = worker(settings_module=WITNESS_SETTINGS, WITNESS_BLOCK="true", **witness)
    wait_until(lambda: (tmp_path / "claimed").exists())  # the receivers run, inside the signal's claim
    os.kill(stuck.pid, signal.SIGKILL)
    stuck.wait(timeout=10)

    assert Order.objects.get(pk=order.pk).status == OrderStatus.FULFILLED
    assert emails(order) == []  # owed with the claim, so rolled back with it
    worker(settings_module=WITNESS_SETTINGS, **witness)  # its sweep finds the signal owed
    wait_until(lambda: smtp_server.messages)
    later = open_order(product)
    webhook(session_event(COMPLETED, later))
    wait_until(lambda: len(smtp_server.messages) >= 2)

    assert Counter(smtp_server.subjects()) == Counter([confirmed(order), confirmed(later)])


@pytest.mark.django_db(transaction=True)
def test_with_the_smtp_server_down_a_worker_retries_with_backoff_and_sends_once_it_is_back(
    product, worker, webhook, wait_until
):
    port = free_port()  # nothing listens: connection refused
    backoff = {"RETRY_BASE_SECONDS": "0.2", "RETRY_MAX_SECONDS": "0.4", "EMAIL_MAX_ATTEMPTS": "100"}
    worker(EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(port), **backoff)
    order = open_order(product)
    webhook(session_event(COMPLETED, order))

    def refused_twice() -> bool:
        email = CustomerEmail.objects.filter(order=order, status=EmailStatus.OWED).first()
        return email is not None and email.attempts >= 2 and "ConnectionRefusedError" in email.last_error

    wait_until(refused_twice)
    server = SmtpServer(port).start()
    try:
        wait_until(lambda: emails(order) == [(EmailKind.ORDER_CONFIRMATION, EmailStatus.SENT)])
    finally:
        server.stop()

    assert server.subjects() == [confirmed(order)]
    assert CustomerEmail.objects.get().attempts >= 3


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_while_sending_leaves_the_email_failed_and_it_is_never_sent_again(
    product, worker, smtp_server, webhook, wait_until
):
    env = {**smtp_server.env(), "WORKER_LEASE_SECONDS": "1", "WORKER_SWEEP_SECONDS": "0.2"}
    smtp_server.holding.set()  # the server takes the message and does not answer yet
    sending = worker(**env)
    order = open_order(product)
    webhook(session_event(COMPLETED, order))
    wait_until(lambda: smtp_server.messages)
    os.kill(sending.pid, signal.SIGKILL)
    sending.wait(timeout=10)
    smtp_server.holding.clear()
    assert emails(order) == [(EmailKind.ORDER_CONFIRMATION, EmailStatus.SENDING)]

    worker(**env)
    wait_until(lambda: emails(order) == [(EmailKind.ORDER_CONFIRMATION, EmailStatus.FAILED)])
    later = open_order(product)
    webhook(session_event(COMPLETED, later))
    wait_until(lambda: len(smtp_server.messages) >= 2)

    assert Counter(smtp_server.subjects()) == Counter([confirmed(order), confirmed(later)])
    assert CustomerEmail.objects.get(order=order).last_error == LEASE_LOST
