"""When each customer of a source is polled next, and whether the source keeps up.

A customer is *hot* while one of its orders is in flight (the order or a line not yet in a
terminal state): it is polled every `hot_interval_s`. The others are polled every
`poll_interval_s`. Either interval gets the source's random jitter, so customers that
started together drift apart. A change moves a customer between the two cadences at its
next sync, since the next due time is chosen from what that sync saw.

`Schedule` holds every customer's next due time and hands out the earliest first, so when
the rate budget or the concurrency cannot keep up, polls run in the order they fell due:
evenly late, never bunched. `Pace` turns how late they run into one log line when the source
falls behind (with the poll rate its cadence needs) and one when it has caught up.
"""

from __future__ import annotations

import heapq
import logging
import random
from collections.abc import Iterable
from datetime import datetime

from watcher.core.models import Order
from watcher.core.ports import PollState
from watcher.settings import SourceSettings

log = logging.getLogger(__name__)


class Schedule:
    """Customers by due time (the event loop's clock), earliest first, each at most once."""

    def __init__(self) -> None:
        self._due: dict[str, float] = {}
        # (due, customer id); an entry whose due time is no longer the customer's is stale.
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, customer_id: object) -> bool:
        return customer_id in self._due

    def put(self, customer_id: str, due: float) -> None:
        """Make `due` the customer's next due time, replacing any earlier one."""
        self._due[customer_id] = due
        heapq.heappush(self._heap, (due, customer_id))

    def discard(self, customer_id: str) -> None:
        self._due.pop(customer_id, None)

    def first(self) -> tuple[float, str] | None:
        """The earliest (due, customer id), left in place; None when empty."""
        while self._heap:
            due, customer_id = self._heap[0]
            if self._due.get(customer_id) == due:
                return due, customer_id
            heapq.heappop(self._heap)
        return None

    def pop(self) -> tuple[float, str]:
        """Take the earliest (due, customer id) out; IndexError when empty."""
        first = self.first()
        if first is None:
            raise IndexError("the schedule is empty")
        heapq.heappop(self._heap)
        del self._due[first[1]]
        return first


def still_in_flight(
    previous: frozenset[str], orders: Iterable[Order], *, complete: bool
) -> frozenset[str]:
    """The customer's orders in flight after a sync that fetched `orders`.

    A `complete` listing (a full re-list) shows every order, so it alone decides. Any other
    listing may leave out an order that did not change: one in flight before stays so until
    a listing shows it finished.
    """
    fetched = {order.order_id: order.in_flight for order in orders}
    kept = set() if complete else {order_id for order_id in previous if order_id not in fetched}
    return frozenset(kept | {order_id for order_id, flying in fetched.items() if flying})


def full_relist_due(source: SourceSettings, state: PollState, now: datetime) -> bool:
    """Whether the next sync re-lists everything: the first, and one every
    `full_relist_interval_s`."""
    if not state.baseline_done or state.last_full_sync_at is None:
        return True
    return (now - state.last_full_sync_at).total_seconds() >= source.full_relist_interval_s


def next_delay_s(
    source: SourceSettings, *, hot: bool, rng: random.Random, first: bool = False
) -> float:
    """How long after a poll the customer is due again: its cadence's interval, jittered.

    After a customer's `first` sync, one to two intervals, drawn evenly: the first syncs of
    a new source (or of many customers found at once) run back to back at the rate
    limit, and repeating them at one interval would repeat that burst on every pass,
    running the source late for most of each interval although its cadence fits the
    rate. Drawn this way, the customers' polls spread evenly over the interval from the
    second pass on.
    """
    interval = source.hot_cadence_s if hot else source.poll_interval_s
    if first:
        return interval + rng.uniform(0, interval)
    jitter = source.poll_jitter_s
    return max(0.0, interval + rng.uniform(-jitter, jitter))


def first_delay_s(source: SourceSettings, *, rng: random.Random) -> float:
    """How soon a customer with no schedule yet (new, or stored before schedules) is due:
    soon, spread over the jitter so that a new source's customers do not start at once."""
    return rng.uniform(0, min(source.poll_interval_s, source.poll_jitter_s))


class Pace:
    """Says once when a source's polls run late against their due times, and once when
    they are on time again. Late is more than half a hot interval (a second at least); on
    time again, less than half that, so that a lag hovering at the line does not flap."""

    def __init__(self, source: SourceSettings) -> None:
        self._source = source
        self._late_after_s = max(source.hot_cadence_s / 2, 1.0)
        self.behind = False

    def polled(self, lag_s: float, *, hot: int, known: int) -> None:
        """A poll started `lag_s` after it was due, with `hot` of `known` customers hot."""
        if self.behind:
            if lag_s < self._late_after_s / 2:
                self.behind = False
                log.info("source %s is on schedule again", self._source.name)
            return
        if lag_s > self._late_after_s:
            self.behind = True
            log.warning(
                "source %s is behind its schedule: polls start %.0fs late; its cadence needs "
                "%.2f polls/s (%d hot customers every %gs, %d others every %gs); raise "
                "limits.rate_per_s or concurrency, or lengthen the intervals",
                self._source.name,
                lag_s,
                polls_per_s(self._source, hot=hot, known=known),
                hot,
                self._source.hot_cadence_s,
                known - hot,
                self._source.poll_interval_s,
            )


def polls_per_s(source: SourceSettings, *, hot: int, known: int) -> float:
    """The poll rate that keeps `hot` of `known` customers on their cadences."""
    return hot / source.hot_cadence_s + (known - hot) / source.poll_interval_s
