"""The poller's running totals equal the sums they replace, whatever order syncs come in."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from watcher.core.sync import Stuck
from watcher.poller import Tally

CUSTOMERS = st.sampled_from(["c1", "c2", "c3", "c4"])
STUCK = st.lists(
    st.builds(Stuck, st.sampled_from(["o1", "o2", "o3"]), st.sampled_from(["pending", "open"])),
    max_size=3,
)
UPDATES = st.lists(st.tuples(CUSTOMERS, st.integers(0, 50), STUCK), max_size=40)


@given(UPDATES)
def test_the_totals_are_the_sums_of_each_customers_last_sync(
    updates: list[tuple[str, int, list[Stuck]]],
) -> None:
    tally = Tally()
    last: dict[str, tuple[int, list[Stuck]]] = {}
    for customer_id, orders, stuck in updates:
        tally.count_orders(customer_id, orders)
        tally.count_stuck(customer_id, stuck)
        last[customer_id] = (orders, stuck)

    assert tally.orders == sum(orders for orders, _ in last.values())
    expected = Counter(order.status for _, stuck in last.values() for order in stuck)
    assert tally.stuck == expected
    assert all(count > 0 for count in tally.stuck.values())
    assert tally.stuck_customers() == {c for c, (_, stuck) in last.items() if stuck}
    assert all(tally.stuck_of(c) == stuck for c, (_, stuck) in last.items())


def test_a_customer_with_nothing_stuck_keeps_nothing() -> None:
    tally = Tally()
    tally.count_stuck("c1", [Stuck("o1", "pending"), Stuck("o2", "pending")])
    tally.count_stuck("c2", [])
    assert tally.stuck_customers() == {"c1"}

    tally.count_stuck("c1", [])

    assert tally.stuck_customers() == set()
    assert tally.stuck == Counter()
    assert tally.stuck_of("c1") == []
