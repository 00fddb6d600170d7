"""The schedule's parts on their own: due times earliest first, which orders keep a customer
hot, the jittered intervals, and the settings that choose them."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from pydantic import ValidationError

from tests.orders import line, order
from watcher import schedule
from watcher.core.models import OrderStatus
from watcher.settings import SourceSettings

DONE = {"status": OrderStatus.COMPLETED, "status_raw": "1000"}


def source(**settings: object) -> SourceSettings:
    return SourceSettings.model_validate(
        {"name": "s", "provider": "adobe_vip", "base_url": "https://a", "customers": ["c"]}
        | settings
    )


def test_the_schedule_hands_out_the_earliest_due_first() -> None:
    due = schedule.Schedule()
    for customer_id, at in (("late", 30.0), ("soon", 10.0), ("middle", 20.0)):
        due.put(customer_id, at)

    assert [due.pop() for _ in range(3)] == [(10.0, "soon"), (20.0, "middle"), (30.0, "late")]
    assert len(due) == 0
    with pytest.raises(IndexError):
        due.pop()


def test_a_new_due_time_replaces_the_old_and_a_discarded_customer_is_gone() -> None:
    due = schedule.Schedule()
    due.put("a", 10.0)
    due.put("b", 20.0)
    due.put("a", 30.0)  # rescheduled later
    due.put("c", 5.0)
    due.discard("c")

    assert due.first() == (20.0, "b")
    assert [due.pop(), due.pop()] == [(20.0, "b"), (30.0, "a")]
    assert "a" not in due
    assert due.first() is None


def test_an_order_or_a_line_not_terminal_is_in_flight() -> None:
    assert order().in_flight
    assert order(**DONE, line_items=(line("1", **DONE), line("2"))).in_flight
    assert not order(**DONE, line_items=(line("1", **DONE),)).in_flight
    # A line with no status of its own (Elastic Path's items) follows its order.
    silent = line("1", status=OrderStatus.UNKNOWN, status_raw="")
    assert not order(**DONE, line_items=(silent,)).in_flight
    assert order(line_items=(silent,)).in_flight
    assert order(
        **DONE, line_items=(line("1", status=OrderStatus.UNKNOWN, status_raw="x"),)
    ).in_flight


def test_a_partial_listing_keeps_orders_in_flight_it_did_not_show() -> None:
    previous = frozenset({"shown-done", "not-shown"})
    fetched = [order(order_id="shown-done", **DONE, line_items=()), order(order_id="new")]

    assert schedule.still_in_flight(previous, fetched, complete=False) == {"not-shown", "new"}
    assert schedule.still_in_flight(previous, fetched, complete=True) == {"new"}
    assert schedule.still_in_flight(frozenset(), [], complete=False) == frozenset()


def test_each_cadence_has_its_interval_jittered_within_the_jitter() -> None:
    settings = source(poll_interval_s="10m", hot_interval_s="1m", poll_jitter_s=5)
    rng = random.Random(3)

    hot = [schedule.next_delay_s(settings, hot=True, rng=rng) for _ in range(200)]
    cold = [schedule.next_delay_s(settings, hot=False, rng=rng) for _ in range(200)]

    assert 55 <= min(hot) < 57
    assert 63 < max(hot) <= 65
    assert min(cold) >= 595
    assert max(cold) <= 605
    first = [schedule.first_delay_s(settings, rng=rng) for _ in range(200)]
    assert min(first) >= 0
    assert max(first) <= 5


def test_after_a_first_sync_the_next_poll_is_spread_over_a_second_interval() -> None:
    settings = source(poll_interval_s="10m", hot_interval_s="1m", poll_jitter_s=5)
    rng = random.Random(3)

    cold = [schedule.next_delay_s(settings, hot=False, rng=rng, first=True) for _ in range(400)]
    hot = [schedule.next_delay_s(settings, hot=True, rng=rng, first=True) for _ in range(400)]

    assert 600 <= min(cold) < 620
    assert 1180 < max(cold) <= 1200
    # Spread evenly: each tenth of the second interval holds about a tenth of the polls.
    tenths = Counter(int((delay - 600) // 60) for delay in cold)
    assert set(tenths) == set(range(10))
    assert max(tenths.values()) < 3 * min(tenths.values())
    assert 60 <= min(hot) < 62
    assert 118 < max(hot) <= 120


def test_without_a_hot_interval_both_cadences_are_the_poll_interval() -> None:
    settings = source(poll_interval_s=90)
    assert (settings.hot_cadence_s, settings.discovery_interval_s) == (90.0, 3600.0)
    assert schedule.polls_per_s(settings, hot=3, known=9) == pytest.approx(0.1)


def test_all_customers_lists_them_or_reads_the_whole_store_by_vendor() -> None:
    listed = source(customers="all")
    assert (listed.discovers, listed.feeds, listed.fixed_customers) == (True, False, [])
    for provider in ("zuora", "elastic_path"):
        whole = source(customers="all", provider=provider)
        assert (whole.discovers, whole.feeds, whole.fixed_customers) == (False, True, [])
    fixed = source(provider="zuora")
    assert (fixed.discovers, fixed.feeds, fixed.fixed_customers) == (False, False, ["c"])
    with pytest.raises(ValidationError, match="customers"):
        source(customers="some")
