"""The race, for real: many threads, each on its own database connection, move the same orders at once."""

import random
import threading
from collections import Counter

import pytest
from django.db import connection

from orders import transitions
from orders.models import Order, OrderStatus, OrderTransition
from orders.services import order_create

THREADS = 8
ORDERS = 40


def _race(order_ids: list, plans: list[list[str]]) -> list[tuple[str, str, bool]]:
    """Run each plan on its own thread, all threads starting every order together; return the calls."""
    barrier = threading.Barrier(len(plans), timeout=60)
    results: list[tuple[str, str, bool]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(plan: list[str], seed: int) -> None:
        rng = random.Random(seed)
        try:
            for order_id in order_ids:
                barrier.wait()
                for name in rng.sample(plan, len(plan)):
                    if name == "confirm":
                        won = transitions.order_confirm(order_id=order_id).won
                    else:
                        won = transitions.order_fulfill(order_id=order_id, source="webhook").won
                    with lock:
                        results.append((str(order_id), name, won))
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)
            barrier.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(plan, i)) for i, plan in enumerate(plans)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_confirm_and_fulfill_have_exactly_one_winner_each(product):
    order_ids = [order_create(product=product, quantity=1).pk for _ in range(ORDERS)]
    # Half the threads play the success redirect and the webhook, half play duplicate webhooks.
    plans = [["confirm", "fulfill"] if i % 2 == 0 else ["fulfill"] for i in range(THREADS)]

    results = _race(order_ids, plans)

    assert len(results) == ORDERS * sum(len(plan) for plan in plans)
    wins = Counter((order_id, name) for order_id, name, won in results if won)
    for order_id in map(str, order_ids):
        assert wins[(order_id, "fulfill")] == 1
        assert wins[(order_id, "confirm")] <= 1
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.FULFILLED}

    audit = Counter(
        (str(order_id), to_status)
        for order_id, to_status in OrderTransition.objects.values_list("order_id", "to_status")
    )
    assert sum(audit.values()) == sum(wins.values())
    for order_id in map(str, order_ids):
        assert audit[(order_id, "fulfilled")] == 1
        assert audit[(order_id, "confirmed")] == wins[(order_id, "confirm")]
        steps = list(
            OrderTransition.objects.filter(order_id=order_id).values_list("from_status", "to_status")
        )
        assert steps in (
            [("pending", "fulfilled")],
            [("pending", "confirmed"), ("confirmed", "fulfilled")],
        )
