"""Copies of one event delivered at the same moment, each on its own thread and database connection.

The deliveries race at the webhook; a worker then runs what they queued.
"""

import random
import threading
from collections import Counter

import pytest
from django.test import Client

from conftest import run_together
from orders.models import Order, OrderStatus, OrderTransition
from orders.signals import order_fulfilled
from payments.models import StripeEvent
from payments.tests.conftest import WEBHOOK_SECRET
from payments.tests.events import body, deliver, open_order, session_event

THREADS = 8


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRETS = [WEBHOOK_SECRET]


@pytest.fixture
def fulfilled_signals():
    sent: list = []
    lock = threading.Lock()

    def record(**kwargs):
        with lock:
            sent.append(kwargs["order_id"])

    order_fulfilled.connect(record, weak=False, dispatch_uid="concurrency-test")
    yield sent
    order_fulfilled.disconnect(dispatch_uid="concurrency-test")


@pytest.mark.django_db(transaction=True)
def test_concurrent_copies_of_one_event_fulfill_once(product, fulfilled_signals, worker_run):
    order = open_order(product)
    payload = body(session_event("checkout.session.completed", order))

    responses = run_together([lambda: deliver(Client(), payload) for _ in range(THREADS)])
    worker_run()

    assert [r.status_code for r in responses] == [200] * THREADS
    answers = Counter(r.content for r in responses)
    assert answers[b"received: processing queued"] == 1
    assert sum(answers.values()) - answers[b"received: processing queued"] == THREADS - 1
    assert answers[b"duplicate: event already stored"] == THREADS - 1
    assert StripeEvent.objects.count() == 1
    assert StripeEvent.objects.get().attempts == 1
    assert OrderTransition.objects.filter(order=order, to_status="fulfilled").count() == 1
    assert fulfilled_signals == [order.pk]


@pytest.mark.django_db(transaction=True)
def test_concurrent_storms_of_duplicates_and_sibling_events_fulfill_each_order_once(
    product, fulfilled_signals, worker_run
):
    # Every order gets completed (unpaid) and async_payment_succeeded, each delivered by every thread,
    # in a different order on each thread: Stripe's duplicates and lack of ordering, all at once.
    orders = [open_order(product) for _ in range(10)]
    payloads = []
    for order in orders:
        payloads.append(body(session_event("checkout.session.completed", order, payment_status="unpaid")))
        payloads.append(body(session_event("checkout.session.async_payment_succeeded", order)))

    def storm(seed: int):
        client = Client()
        return [deliver(client, p).status_code for p in random.Random(seed).sample(payloads, len(payloads))]

    results = run_together([lambda seed=seed: storm(seed) for seed in range(THREADS)])
    worker_run()

    assert {code for codes in results for code in codes} == {200}
    assert StripeEvent.objects.count() == len(payloads)
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.FULFILLED}
    fulfilments = Counter(
        OrderTransition.objects.filter(to_status="fulfilled").values_list("order_id", flat=True)
    )
    assert fulfilments == Counter({order.pk: 1 for order in orders})
    assert sorted(map(str, fulfilled_signals)) == sorted(str(order.pk) for order in orders)
