"""The poller's running totals equal the sums they replace, whatever order syncs come in."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from watcher.poller import Tally

CUSTOMERS = st.sampled_from(["c1", "c2", "c3", "c4"])
STUCK = st.dictionaries(st.sampled_from(["pending", "processing", "open"]), st.integers(0, 3))
UPDATES = st.lists(st.tuples(CUSTOMERS, st.integers(0, 50), STUCK), max_size=40)


@given(UPDATES)
def test_the_totals_are_the_sums_of_each_customers_last_sync(
    updates: list[tuple[str, int, dict[str, int]]],
) -> None:
    tally = Tally()
    last: dict[str, tuple[int, Counter[str]]] = {}
    for customer_id, orders, stuck in updates:
        counted = +Counter(stuck)
        tally.count_orders(customer_id, orders)
        tally.count_stuck(customer_id, counted)
        last[customer_id] = (orders, counted)

    assert tally.orders == sum(orders for orders, _ in last.values())
    assert tally.stuck == sum((stuck for _, stuck in last.values()), Counter())
    assert all(count > 0 for count in tally.stuck.values())
    assert tally.stuck_customers() == {c for c, (_, stuck) in last.items() if stuck}


def test_a_customer_with_nothing_stuck_keeps_no_counter() -> None:
    tally = Tally()
    tally.count_stuck("c1", Counter({"pending": 2}))
    tally.count_stuck("c2", Counter())
    assert tally.stuck_customers() == {"c1"}

    tally.count_stuck("c1", Counter())

    assert tally.stuck_customers() == set()
    assert tally.stuck == Counter()
