"""A store-wide poll: the orders of every customer of a store or tenant in one listing.

With `customers = "all"` on a vendor that can list orders across the whole store (Elastic
Path, Zuora: a `StoreFeed`), a poll is one paged listing of the orders updated since the
last one (with the vendor's overlap), not one listing per customer: its vendor calls grow
with the orders that changed, not with the customers. Each page is split by customer and
reconciled and committed like a customer's sync (snapshots, events and that customer's
poll state in one transaction). The feed's own poll state, under the customer id `FEED`,
is its cursor: it is committed only after the last page, so a poll cut short is read
again from the same point, and what was already committed is unchanged the second time,
so raises nothing twice.

Customers are whoever the store's orders belong to. The baseline is the feed's: its first
listing (a full one) records every order silently; afterwards an order never seen is a
new order (order.created), whichever customer it belongs to. The periodic full re-list
(`full_relist_interval_s`) reads the whole store in the vendor's slices.

An order in flight that the listing did not show has not changed: it is judged for being
stuck from its stored snapshot, so order.stuck keeps working without asking the vendor
for it. After a full re-list, an order in flight that the store no longer lists stops
keeping its customer hot.
"""

from __future__ import annotations

import contextlib
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from watcher import schedule
from watcher.core import sync
from watcher.core.events import OrderEvent
from watcher.core.models import Order
from watcher.core.ports import (
    Fence,
    OutboxRecord,
    PollState,
    Snapshot,
    SnapshotStore,
    StoreFeed,
)
from watcher.settings import SourceSettings

FEED = "*"  # the customer id of the feed's own poll state (its cursor and schedule)


@dataclass(slots=True)
class Listing:
    """What one store-wide poll read and wrote."""

    full: bool
    baseline: bool
    next_delay_s: float = 0.0  # from the poll's start to the next one
    orders: int = 0
    new_orders: int = 0
    events: list[OrderEvent] = field(default_factory=list)
    records: list[OutboxRecord] = field(default_factory=list)
    stuck: dict[str, list[sync.Stuck]] = field(default_factory=lambda: defaultdict(list))

    def add(self, customer_id: str, result: sync.Result) -> None:
        self.events += result.events
        self.records += result.records
        self.stuck[customer_id] += result.stuck


class StoreWide:
    """The store-wide polls of one source, and the customers' orders in flight between them.

    `in_flight` holds, for each hot customer, the ids of its orders not yet terminal; it is
    loaded from the stored poll states (`admit`) and kept with every commit.
    """

    def __init__(
        self,
        source: SourceSettings,
        feed: StoreFeed,
        store: SnapshotStore,
        *,
        clock: Callable[[], datetime],
        rng: random.Random,
    ) -> None:
        self._source = source
        self._feed = feed
        self._store = store
        self._clock = clock
        self._rng = rng
        self.in_flight: dict[str, frozenset[str]] = {}
        self.customers: set[str] = set()
        self.fence: Fence | None = None  # shared: the lease on the feed every commit needs

    def admit(self, states: Mapping[str, PollState]) -> PollState | None:
        """Take the customers and their orders in flight from the stored poll states; the
        feed's own state (None before its first poll)."""
        for customer_id, state in states.items():
            if customer_id == FEED:
                continue
            self.customers.add(customer_id)
            if state.hot:
                self.in_flight[customer_id] = state.in_flight
        return states.get(FEED)

    async def poll(self) -> Listing:
        """List the store's orders changed since the last poll (all of them when a full
        re-list is due), commit them customer by customer, then the cursor."""
        state = await self._store.poll_state(self._source.name, FEED) or PollState(False)
        now = self._clock()
        full = schedule.full_relist_due(self._source, state, now)
        listing = Listing(full=full, baseline=not state.baseline_done)
        seen: dict[str, set[str]] = defaultdict(set)
        pages = self._feed.store_orders(
            since=None if full else now - timedelta(days=self._source.lookback_days),
            changed_since=None if full else state.last_success_at,
        )
        async with contextlib.aclosing(pages):
            async for page in pages:
                for customer_id, orders in _by_customer(page).items():
                    seen[customer_id].update(order.order_id for order in orders)
                    await self._commit(customer_id, orders, listing, now=now)
        for customer_id, flying in list(self.in_flight.items()):
            unread = flying - seen.get(customer_id, set())
            if unread:
                await self._settle(customer_id, unread, listing, now=now)
        hot = bool(self.in_flight)
        listing.next_delay_s = schedule.next_delay_s(self._source, hot=hot, rng=self._rng)
        await self._store.commit_sync(
            self._source.name,
            FEED,
            snapshots=[],
            events=[],
            state=PollState(
                baseline_done=True,
                last_success_at=now,
                last_full_sync_at=now if full else state.last_full_sync_at,
                next_due_at=now + timedelta(seconds=listing.next_delay_s),
            ),
            fence=self.fence,
        )
        return listing

    async def _commit(
        self, customer_id: str, orders: list[Order], listing: Listing, *, now: datetime
    ) -> None:
        """Reconcile and commit one customer's orders from one page."""
        stored = await self._store.load_priors(self._source.name, customer_id, orders)
        listing.orders += len(orders)
        listing.new_orders += len(orders) - len(stored)
        previous = self.in_flight.get(customer_id, frozenset())
        flying = schedule.still_in_flight(previous, orders, complete=False)
        result = self._reconcile(orders, stored, now, baseline=listing.baseline)
        await self._write(customer_id, result, flying, listing, now=now)

    async def _settle(
        self, customer_id: str, unread: frozenset[str], listing: Listing, *, now: datetime
    ) -> None:
        """A hot customer's orders in flight that the listing did not show: after a full
        re-list the store has them no more; otherwise they did not change, and their stored
        snapshots are judged for being stuck (written only when that says something new)."""
        flying = self.in_flight[customer_id]
        if listing.full:
            await self._write(customer_id, sync.Result(), flying - unread, listing, now=now)
            return
        stored = await self._store.load_snapshots(self._source.name, customer_id, sorted(unread))
        result = self._reconcile([snapshot.order for snapshot in stored.values()], stored, now)
        if result.snapshots:
            await self._write(customer_id, result, flying, listing, now=now)
        else:
            listing.stuck[customer_id] += result.stuck

    async def _write(
        self,
        customer_id: str,
        result: sync.Result,
        flying: frozenset[str],
        listing: Listing,
        *,
        now: datetime,
    ) -> None:
        """Commit one customer's part of the poll: `result`, and `flying` as its orders in
        flight."""
        await self._store.commit_sync(
            self._source.name,
            customer_id,
            snapshots=result.snapshots,
            events=result.records,
            state=PollState(
                baseline_done=True,
                last_success_at=now,
                last_full_sync_at=now if listing.full else None,
                in_flight=flying,
            ),
            fence=self.fence,
        )
        listing.add(customer_id, result)
        self.customers.add(customer_id)
        if flying:
            self.in_flight[customer_id] = flying
        else:
            self.in_flight.pop(customer_id, None)

    def _reconcile(
        self,
        orders: Iterable[Order],
        stored: Mapping[str, Snapshot],
        now: datetime,
        *,
        baseline: bool = False,
    ) -> sync.Result:
        return sync.reconcile(
            orders,
            stored,
            baseline=baseline and not self._source.created_on_baseline,
            now=now,
            thresholds=self._source.stuck,
        )


def _by_customer(orders: Iterable[Order]) -> dict[str, list[Order]]:
    grouped: dict[str, list[Order]] = defaultdict(list)
    for order in orders:
        grouped[order.customer_id].append(order)
    return grouped
