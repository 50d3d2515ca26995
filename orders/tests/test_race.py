"""The race, for real: many threads, each on its own database connection, move the same orders at once."""

import random
from collections import Counter

import pytest

from conftest import run_together
from orders import transitions
from orders.models import Order, OrderStatus, OrderTransition
from orders.services import order_create

THREADS = 8
ORDERS = 40


def _race(order_ids: list, plans: list[list[str]]) -> list[tuple[str, str, bool]]:
    """Run each plan on its own thread, all threads starting every order together; return the calls."""

    def player(plan: list[str], seed: int):
        rng = random.Random(seed)

        def play(number: int) -> list[tuple[str, str, bool]]:
            order_id, calls = order_ids[number], []
            for name in rng.sample(plan, len(plan)):
                ask = transitions.order_confirm if name == "confirm" else transitions.order_fulfill
                won = ask(order_id=order_id, source="redirect" if name == "confirm" else "webhook").won
                calls.append((str(order_id), name, won))
            return calls

        return play

    played = run_together([player(plan, i) for i, plan in enumerate(plans)], rounds=len(order_ids))
    return [call for rounds in played for calls in rounds for call in calls]


@pytest.mark.django_db(transaction=True)
def test_concurrent_confirm_and_fulfill_have_exactly_one_winner_each(product):
    order_ids = [order_create(lines=[(product, 1)]).pk for _ in range(ORDERS)]
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
