"""An operator closes orders while their buyers pay them, at the same moment, for real.

Each order has two threads released together by a barrier: one closes the order through the service the
admin's actions call (expire the session at Stripe first), the other pays the session through the
emulator's pay control endpoint over HTTP, as the hosted page's button does. Stripe's webhooks are
delivered to the live server meanwhile. Whoever reaches the session first, every order ends either
expired with its session expired and nothing charged, or paid and fulfilled: never closed and charged.
"""

import json
import threading
import urllib.error
import urllib.request
from collections import Counter

import pytest

from conftest import run_together
from orders.models import Order, OrderStatus, TransitionSource
from payments import gateway
from payments.order_actions import order_close
from payments.tests.events import emulator_order

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

ORDERS = 30


def pay_over_http(base_url: str, session_id: str) -> bool:
    """Pay the session as the hosted page's button would; return whether the emulator took the payment."""
    request = urllib.request.Request(
        f"{base_url}/_emulator/checkout/sessions/{session_id}/pay",
        data=json.dumps({"method": "card"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status == 200
    except urllib.error.HTTPError as exc:
        assert exc.code == 409, exc.read()  # "This Checkout Session has expired"
        return False


def race(emulator, pairs: list[tuple[Order, str]], *, payer_first_wait: bool | None) -> list[bool]:
    """Close and pay each order at once (or one side first, when told); return whether each payment took."""
    first_done = [threading.Event() for _ in pairs]

    def closer(number: int) -> None:
        if payer_first_wait is True:
            first_done[number].wait(10)
        order_close(order_id=pairs[number][0].pk, transition="expire", source=TransitionSource.ADMIN)
        if payer_first_wait is False:
            first_done[number].set()

    def payer(number: int) -> bool:
        if payer_first_wait is False:
            first_done[number].wait(10)
        paid = pay_over_http(emulator.base_url, pairs[number][1])
        if payer_first_wait is True:
            first_done[number].set()
        return paid

    return run_together([closer, payer], rounds=len(pairs))[1]


@pytest.mark.parametrize(
    "payer_first_wait",
    [None, True, False],
    ids=["at-the-same-moment", "buyer-pays-first", "operator-closes-first"],
)
def test_an_order_is_never_closed_and_charged(emulator, synced_product, live_server, payer_first_wait):
    emulator.configure(webhook_url=f"{live_server.url}/stripe-webhook")
    orders = [emulator_order(synced_product) for _ in range(ORDERS)]
    pairs = [(order, session.id) for order, session in orders]

    paid = race(emulator, pairs, payer_first_wait=payer_first_wait)
    assert emulator.wait_for_idle(timeout=30)

    outcomes: Counter[str] = Counter()
    for (order, session_id), took in zip(pairs, paid, strict=True):
        order = Order.objects.get(pk=order.pk)
        session = gateway.checkout_session_retrieve(session_id=session_id)
        if order.status == OrderStatus.EXPIRED:
            assert (session.status, session.payment_status, session.payment_intent_id) == (
                "expired",
                "unpaid",
                "",
            ), f"order {order.pk} is expired but its session is {session}"
            assert not took
            assert not order.needs_attention
        else:
            assert order.status == OrderStatus.FULFILLED, f"order {order.pk} is {order.status}"
            assert (session.status, session.payment_status, took) == ("complete", "paid", True)
        outcomes[order.status] += 1
    assert sum(outcomes.values()) == ORDERS
    if payer_first_wait is True:
        assert outcomes == {OrderStatus.FULFILLED: ORDERS}
    elif payer_first_wait is False:
        assert outcomes == {OrderStatus.EXPIRED: ORDERS}
