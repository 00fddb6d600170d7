"""One poll of one customer, and the per-source loop around it.

A customer's sync fetches its recent orders (all or nothing), reconciles them with the
stored snapshots and commits the new snapshots, their events and the poll state in one
transaction; a sync with nothing else to write, once the customer's baseline is done, only
records its poll state (`record_poll`, which the store may write later with others). It
never waits for the broker: after a commit it only wakes the relay.

Windows: a customer's first sync, and then one every `full_relist_interval_s`, re-lists
everything; the syncs between ask only for orders created in the last `lookback_days`.
The first successful sync is the baseline: orders already there are recorded without an
order.created each, unless `created_on_baseline` is set.

The loop polls each customer when it falls due (`watcher.schedule`: the hot or the cold
cadence, chosen from what its last sync saw, plus jitter), earliest due first, at most
`concurrency` of a source's customers at once. The next due time is committed with the sync,
so a restart resumes the schedule. With `customers = "all"` the customers are the account's
own, listed by the `CustomerDirectory` every `discovery_interval_s` and kept in the store: a
new one is baselined like any first sync, one no longer listed stops being polled (its
snapshots stay), and a failed listing keeps the customers known. `stop()` lets the syncs in
hand finish and then ends the loop: that is how SIGTERM drains.

Shared work (`shared=True`, replicas on one PostgreSQL store): the poller polls only the
customers whose leases this replica holds, as `watcher.fleet` hands them over (`hold`) and
takes them back (`let_go`); each sync commits fenced by its lease (`ports.Fence`), so one
that lost its lease meanwhile writes nothing (`LeaseLost`) and the customer is let go at
once. A customer taken over resumes the schedule its last holder stored. With `customers =
"all"`, only the replica holding the discovery lease lists the account (`discover`), and
then only records the customers: the fleet shares them out.

`on_sync` hears about every finished sync (the relay's wake-up, metrics, readiness) and
`on_discovery` about every listing; `orders_tracked` sums the orders of each customer's last
successful sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from watcher import feed, logs, schedule
from watcher.core import ports, sync
from watcher.core.errors import (
    LeaseLost,
    PermanentProviderError,
    ProviderError,
    StoreError,
    WaitingError,
)
from watcher.core.events import OrderEvent
from watcher.core.ports import (
    CustomerDirectory,
    Fence,
    Listing,
    OutboxRecord,
    PollState,
    PriorPoll,
    Provider,
    SnapshotStore,
    StoreFeed,
)
from watcher.settings import SourceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CustomerSync:
    """The outcome of one customer's sync: `error` is None when it succeeded.

    `events` are the typed events and `records` the outbox rows committed for them;
    `baseline` says this was the customer's first successful sync.
    """

    source: str
    customer_id: str
    orders: int = 0
    events: list[OrderEvent] = field(default_factory=list)
    records: list[OutboxRecord] = field(default_factory=list)
    stuck: list[sync.Stuck] = field(default_factory=list)
    full: bool = False
    baseline: bool = False
    seconds: float = 0.0
    error: ProviderError | StoreError | None = None
    hot: bool = False  # an order or line still in flight: the faster cadence
    next_delay_s: float | None = None  # from the sync's start to its next one
    lag_s: float = 0.0  # how long after it fell due the sync started

    @property
    def outcome(self) -> str:
        match self.error:
            case None:
                return "ok"
            case PermanentProviderError():
                return "permanent_error"
            case StoreError():
                return "store_error"
            case _:
                return "error"


def _failure_level(exc: ProviderError | StoreError) -> int:
    """A store failure is an error; a vendor's a warning; a wait already announced (the
    circuit is open, the request budget is spent) is said once where it began, so debug."""
    if isinstance(exc, LeaseLost):
        return logging.INFO  # another replica polls the customer now
    if isinstance(exc, StoreError):
        return logging.ERROR
    return logging.DEBUG if isinstance(exc, WaitingError) else logging.WARNING


@dataclass(frozen=True, slots=True)
class Discovery:
    """The outcome of one listing of an account's customers: `error` is None when it worked."""

    source: str
    customers: int = 0
    added: int = 0
    removed: int = 0
    seconds: float = 0.0
    error: ProviderError | None = None


def _no_op(_: object) -> None:
    return None


class Tally:
    """Each customer's orders and stuck orders at its last sync, with the sums kept as they
    change: `observe` reads them after every sync, so reading costs nothing per customer.

    Only the customers with something stuck keep their stuck orders."""

    def __init__(self) -> None:
        self.orders = 0
        self.stuck: Counter[str] = Counter()
        self._orders: dict[str, int] = {}
        self._stuck: dict[str, list[sync.Stuck]] = {}

    def count_orders(self, customer_id: str, orders: int) -> None:
        self.orders += orders - self._orders.get(customer_id, 0)
        self._orders[customer_id] = orders

    def orders_of(self, customer_id: str) -> int:
        return self._orders.get(customer_id, 0)

    def count_stuck(self, customer_id: str, stuck: list[sync.Stuck]) -> None:
        before = self._stuck.pop(customer_id, None)
        if before is None and not stuck:
            return
        if before:
            self.stuck.subtract(order.status for order in before)
        if stuck:
            self._stuck[customer_id] = stuck
            self.stuck.update(order.status for order in stuck)
        for status in [status for status, count in self.stuck.items() if count <= 0]:
            del self.stuck[status]

    def stuck_of(self, customer_id: str) -> list[sync.Stuck]:
        return self._stuck.get(customer_id, [])

    def stuck_customers(self) -> set[str]:
        return set(self._stuck)


class Poller:
    """Polls every customer of one source."""

    def __init__(
        self,
        source: SourceSettings,
        provider: Provider,
        store: SnapshotStore,
        *,
        directory: CustomerDirectory | None = None,
        on_sync: Callable[[CustomerSync], None] = _no_op,
        on_discovery: Callable[[Discovery], None] = _no_op,
        clock: Callable[[], datetime],
        rng: random.Random | None = None,
        shared: bool = False,
    ) -> None:
        if source.discovers and directory is None:
            raise ValueError(f"source {source.name} discovers its customers: pass a directory")
        self._source = source
        self._provider = ports.by_digest(provider)
        self._directory = directory if source.discovers else None
        self._store_wide: feed.StoreWide | None = None
        self._rng = rng or random.Random()
        if source.feeds:
            if not isinstance(provider, StoreFeed):
                raise ValueError(f"source {source.name} lists its whole store: pass a StoreFeed")
            self._store_wide = feed.StoreWide(source, provider, store, clock=clock, rng=self._rng)
        self._store = store
        self._on_sync = on_sync
        self._on_discovery = on_discovery
        self._clock = clock
        self._limit = asyncio.Semaphore(source.concurrency)
        self._stopping = asyncio.Event()
        self._changed = asyncio.Event()  # the schedule or the stop flag changed
        self._members: set[str] = set()
        self._hot: set[str] = set()  # always a subset of _members
        self._schedule = schedule.Schedule()
        self._pace = schedule.Pace(source)
        self._tally = Tally()
        self._shared = shared
        self._fences: dict[str, Fence] = {}  # shared: the leases held, by customer

    @property
    def name(self) -> str:
        return self._source.name

    @property
    def orders_tracked(self) -> int:
        """Orders in each customer's last successful sync, summed over the customers."""
        return self._tally.orders

    @property
    def stuck_by_status(self) -> Counter[str]:
        """Orders past their stuck threshold at each customer's last sync, by status."""
        return Counter(self._tally.stuck)

    @property
    def customers_known(self) -> int:
        """The customers polled: the configured list, those discovery found, or those the
        store's orders belong to."""
        if self._store_wide is not None:
            return len(self._store_wide.customers)
        return len(self._members)

    @property
    def customers_hot(self) -> int:
        """The customers with an order in flight at their last sync (the faster cadence)."""
        if self._store_wide is not None:
            return len(self._store_wide.in_flight)
        return len(self._hot)

    @property
    def behind(self) -> bool:
        """Whether polls run late against their due times (see `schedule.Pace`)."""
        return self._pace.behind

    @property
    def shared(self) -> bool:
        return self._shared

    @property
    def discovers(self) -> bool:
        """Whether the customers come from listing the account (`customers = "all"`)."""
        return self._directory is not None

    @property
    def fences(self) -> dict[str, Fence]:
        """Shared: the customers this replica holds leases on, with each lease's fence."""
        return dict(self._fences)

    async def wanted(self) -> list[str]:
        """Every customer of the source, whoever polls it: the configured list, those the last
        discovery recorded, or the store-wide feed."""
        if self._store_wide is not None:
            return [feed.FEED]
        if self._directory is not None:
            return await self._store.known_customers(self.name)
        return list(self._source.fixed_customers)

    async def hold(self, fences: Mapping[str, Fence]) -> None:
        """Shared: poll these customers too, each from the schedule its last holder stored."""
        new = {key: fence for key, fence in fences.items() if key not in self._fences}
        if not new:
            return
        self._fences.update(new)
        if self._store_wide is not None and feed.FEED in new:
            self._store_wide.fence = new[feed.FEED]
            self._schedule_feed(self._store_wide.admit(await self._schedules()))
        else:
            self._admit(new, await self._states_of(set(new)))

    def let_go(self, customer_ids: Iterable[str]) -> None:
        """Shared: stop polling these customers (a sync in hand of one cannot commit)."""
        for customer_id in customer_ids:
            self._fences.pop(customer_id, None)
            if self._store_wide is not None and customer_id == feed.FEED:
                self._store_wide.fence = None
            self._members.discard(customer_id)
            self._hot.discard(customer_id)
            self._schedule.discard(customer_id)
            self._tally.count_orders(customer_id, 0)
            self._tally.count_stuck(customer_id, [])
        self._changed.set()

    def stop(self) -> None:
        self._stopping.set()
        self._changed.set()

    async def cycle(self) -> list[CustomerSync]:
        """Sync every customer once, `concurrency` at a time (fewer after `stop()`).

        With `customers = "all"` the account's customers are listed first; if that fails,
        the ones its last listing found are synced."""
        customers = self._source.fixed_customers
        if self._store_wide is not None:
            self._store_wide.admit(await self._store.poll_states(self.name))
            customers = [feed.FEED]
        elif self._directory is not None:
            self._admit(await self._store.known_customers(self.name), {})
            await self.discover()
            customers = sorted(self._members)
        results = await asyncio.gather(*map(self._limited, customers))
        return [result for result in results if result is not None]

    async def run(self) -> None:
        """Poll every customer when it falls due, until `stop()` or cancellation.

        The schedule stored with each customer's last sync is resumed; with `customers =
        "all"`, the customers are listed again every `discovery_interval_s`.
        """
        await self._resume()
        async with asyncio.TaskGroup() as group:
            if self._directory is not None and not self._shared:  # shared: `watcher.fleet`
                group.create_task(self.discover_every_interval())
            while (due := await self._next_due()) is not None:
                group.create_task(self._poll(*due))

    async def _resume(self) -> None:
        """Schedule the customers from their stored poll states (read once, then let go:
        at 100,000 customers they are tens of megabytes)."""
        if self._shared:
            return  # the fleet hands the customers over (`hold`)
        states = await self._store.poll_states(self.name)
        if self._store_wide is not None:
            self._schedule_feed(self._store_wide.admit(states))
        elif self._directory is None:
            self._admit(self._source.fixed_customers, states)
        else:
            self._admit(await self._store.known_customers(self.name), states)

    async def discover(self) -> None:
        """List the account's customers; poll the new ones and stop polling those gone.

        A failed listing keeps the customers known; a store failure keeps the new list in
        memory for this run only."""
        assert self._directory is not None, 'discover() needs customers = "all"'
        started = time.perf_counter()
        try:
            found = await self._directory.list_customers()
        except ProviderError as exc:
            log.log(
                logging.DEBUG if isinstance(exc, WaitingError) else logging.WARNING,
                "discovery source=%s failed; still polling the %d customers known: %s",
                self.name,
                len(self._members),
                exc,
                extra=logs.fields(source=self.name, outcome="error", error=exc),
            )
            self._on_discovery(Discovery(self.name, error=exc))
            return
        try:
            await self._store.record_customers(self.name, found)
        except StoreError as exc:
            log.error("discovery source=%s cannot record the customers: %s", self.name, exc)
        if self._shared:  # the fleet shares the recorded customers out
            self._on_discovery(Discovery(self.name, customers=len(found)))
            return
        listed = set(found)
        gone = self._members - listed
        added = listed - self._members
        states = await self._states_of(added)
        for customer_id in gone:
            self._members.discard(customer_id)
            self._hot.discard(customer_id)
            self._schedule.discard(customer_id)
        self._admit(added, states)
        discovery = Discovery(
            self.name,
            customers=len(listed),
            added=len(added),
            removed=len(gone),
            seconds=time.perf_counter() - started,
        )
        log.log(
            logging.INFO if added or gone else logging.DEBUG,
            "discovery source=%s customers=%d added=%d removed=%d in %.2fs",
            self.name,
            discovery.customers,
            discovery.added,
            discovery.removed,
            discovery.seconds,
            extra=logs.fields(source=self.name, outcome="ok", duration_s=discovery.seconds),
        )
        if not listed:
            log.warning("discovery source=%s: the account lists no customers", self.name)
        self._on_discovery(discovery)

    async def _states_of(self, customer_ids: set[str]) -> dict[str, PollState]:
        """The stored schedules of `customer_ids` (a customer listed again keeps its own)."""
        if not customer_ids:
            return {}
        states = await self._schedules()
        return {customer_id: states[customer_id] for customer_id in customer_ids & set(states)}

    async def _schedules(self) -> dict[str, PollState]:
        """Every stored schedule of the source; none when the store cannot say (the
        customers are then polled soon, as new ones are)."""
        try:
            return await self._store.poll_states(self.name)
        except StoreError as exc:
            log.warning("cannot read the schedules of %s: %s", self.name, exc)
            return {}

    async def discover_every_interval(self) -> None:
        """`discover` every `discovery_interval_s` until `stop()` (shared: while this
        replica holds the discovery lease, `watcher.fleet`)."""
        while not self._stopping.is_set():
            await self.discover()
            if await self._wait(self._source.discovery_interval_s):
                return

    def _admit(self, customer_ids: Iterable[str], states: Mapping[str, PollState]) -> None:
        """Poll `customer_ids` too: when their stored schedules say, or soon if they have none.

        The schedule runs on the event loop's clock; a stored due time (the wall clock) is
        carried over by its distance from now, late when it has passed."""
        now, loop_now = self._clock(), asyncio.get_running_loop().time()
        for customer_id in customer_ids:
            if customer_id in self._members:
                continue
            self._members.add(customer_id)
            state = states.get(customer_id)
            if state is not None and state.hot:
                self._hot.add(customer_id)
            self._schedule.put(customer_id, loop_now + self._delay_from(state, now))
        self._changed.set()

    def _schedule_feed(self, state: PollState | None) -> None:
        """Poll the whole store when its stored schedule says, or soon before its first."""
        loop_now = asyncio.get_running_loop().time()
        self._schedule.put(feed.FEED, loop_now + self._delay_from(state, self._clock()))
        self._changed.set()

    def _delay_from(self, state: PollState | None, now: datetime) -> float:
        if state is not None and state.next_due_at is not None:
            return (state.next_due_at - now).total_seconds()
        return schedule.first_delay_s(self._source, rng=self._rng)

    async def _next_due(self) -> tuple[str, float] | None:
        """The next customer due, once it is due and a sync slot is free; None on `stop()`.

        The slot taken is released by `_poll`."""
        loop = asyncio.get_running_loop()
        await self._limit.acquire()
        while not self._stopping.is_set():
            self._changed.clear()
            first = self._schedule.first()
            wait_s = None if first is None else first[0] - loop.time()
            if wait_s is not None and wait_s <= 0:
                due, customer_id = self._schedule.pop()
                return customer_id, due
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that arrives as the event is set, and this loop would then never end.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await self._changed.wait()
        self._limit.release()
        return None

    async def _poll(self, customer_id: str, due: float) -> None:
        """Sync a customer that fell due at `due` (its slot taken), then schedule it again."""
        started = asyncio.get_running_loop().time()
        lag_s = max(0.0, started - due)
        try:
            result = await self.sync_customer(customer_id)
        finally:
            self._limit.release()
        result = dataclasses.replace(result, lag_s=lag_s)
        if isinstance(result.error, LeaseLost):
            self.let_go([customer_id])
        elif self._store_wide is not None and (not self._shared or feed.FEED in self._fences):
            delay_s = result.next_delay_s
            if delay_s is None:
                hot = bool(self._store_wide.in_flight)
                delay_s = schedule.next_delay_s(self._source, hot=hot, rng=self._rng)
            self._schedule.put(customer_id, started + delay_s)
            self._changed.set()
        elif customer_id in self._members:
            hot = result.hot if result.error is None else customer_id in self._hot
            (self._hot.add if hot else self._hot.discard)(customer_id)
            delay_s = result.next_delay_s
            if delay_s is None:
                delay_s = schedule.next_delay_s(self._source, hot=hot, rng=self._rng)
            self._schedule.put(customer_id, started + delay_s)
            self._changed.set()
        self._pace.polled(lag_s, hot=self.customers_hot, known=self.customers_known)
        self._on_sync(result)

    async def _wait(self, seconds: float) -> bool:
        """Sleep `seconds` unless stopped first; True when stopping."""
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        except TimeoutError:
            return False
        return True

    async def _limited(self, customer_id: str) -> CustomerSync | None:
        """Sync when a slot is free; None when `stop()` came while waiting for one."""
        async with self._limit:
            if self._stopping.is_set():
                return None
            result = await self.sync_customer(customer_id)
        self._on_sync(result)
        return result

    async def sync_customer(self, customer_id: str) -> CustomerSync:
        """Fetch, reconcile and commit one customer; a failure changes nothing.

        A vendor or store failure is reported in the result (and logged), never raised, so
        one customer's trouble does not stop the others; the next poll tries again.
        """
        started = time.perf_counter()
        try:
            if self._store_wide is not None and customer_id == feed.FEED:
                result = await self._sync_store(self._store_wide)
            else:
                result = await self._sync(customer_id)
        except (ProviderError, StoreError) as exc:
            seconds = time.perf_counter() - started
            failed = CustomerSync(self.name, customer_id, seconds=seconds, error=exc)
            log.log(
                _failure_level(exc),
                "poll source=%s customer=%s failed after %.2fs: %s",
                self.name,
                customer_id,
                seconds,
                exc,
                extra=self._context(failed),
            )
            return failed
        seconds = time.perf_counter() - started
        if customer_id != feed.FEED:
            self._tally.count_orders(customer_id, result.orders)
            self._tally.count_stuck(customer_id, result.stuck)
        result = dataclasses.replace(result, seconds=seconds)
        # A poll that found nothing new is the common case, thousands a minute: debug.
        quiet = not result.records and not result.full and not result.baseline
        level = logging.DEBUG if quiet else logging.INFO
        if log.isEnabledFor(level):
            log.log(
                level,
                "poll source=%s customer=%s orders=%d events=%d full=%s in %.2fs",
                self.name,
                customer_id,
                result.orders,
                len(result.records),
                result.full,
                seconds,
                extra=self._context(result),
            )
        return result

    def _context(self, result: CustomerSync) -> dict[str, object]:
        return logs.fields(
            source=self.name,
            provider=self._source.provider,
            customer=result.customer_id,
            outcome=result.outcome,
            duration_s=result.seconds,
            error=result.error,
        )

    async def _sync(self, customer_id: str) -> CustomerSync:
        prior = await self._store.prior_poll(self.name, customer_id)
        state = prior.state or PollState(False)
        now = self._clock()
        full = schedule.full_relist_due(self._source, state, now)
        since = None if full else now - timedelta(days=self._source.lookback_days)
        thresholds = self._source.stuck
        listing = await self._provider.fetch_listing(
            customer_id,
            since=since,
            changed_since=None if full else state.last_success_at,
            known=sync.offered(prior, thresholds=thresholds, now=now),
        )
        orders = listing.orders
        stored = await self._store.load_priors(self.name, customer_id, orders) if orders else {}
        baseline = not state.baseline_done and not self._source.created_on_baseline
        result = sync.reconcile(
            orders,
            stored,
            baseline=baseline,
            now=now,
            thresholds=thresholds,
            digests=listing.digests,
        )
        # An order listed as before is as much in flight as it was.
        as_before = listing.same & (state.in_flight | prior.episodes.keys())
        in_flight = schedule.still_in_flight(state.in_flight, orders, complete=full) | as_before
        stuck = self._stuck_after(
            customer_id, prior, listing, result.stuck, in_flight=in_flight, full=full, now=now
        )
        delay_s = schedule.next_delay_s(
            self._source, hot=bool(in_flight), rng=self._rng, first=not state.baseline_done
        )
        polled = PollState(
            baseline_done=True,
            last_success_at=now,
            last_full_sync_at=now if full else state.last_full_sync_at,
            next_due_at=now + timedelta(seconds=delay_s),
            in_flight=in_flight,
        )
        fence = self._fences.get(customer_id)
        if state.baseline_done and not (result.snapshots or result.records or result.digests):
            await self._store.record_poll(self.name, customer_id, polled, fence=fence)
        else:
            await self._store.commit_sync(
                self.name,
                customer_id,
                snapshots=result.snapshots,
                events=result.records,
                state=polled,
                digests=result.digests,
                fence=fence,
            )
        return CustomerSync(
            self.name,
            customer_id,
            orders=len(orders) + len(listing.same),
            events=result.events,
            records=result.records,
            stuck=stuck,
            full=full,
            baseline=not state.baseline_done,
            hot=bool(in_flight),
            next_delay_s=delay_s,
        )

    def _stuck_after(
        self,
        customer_id: str,
        prior: PriorPoll,
        listing: Listing,
        read_in_full: list[sync.Stuck],
        *,
        in_flight: frozenset[str],
        full: bool,
        now: datetime,
    ) -> list[sync.Stuck]:
        """The customer's stuck orders after a sync: those it read in full, those listed as
        before (judged from their episodes) and, between full re-lists, those stuck at the
        last sync that the window no longer shows, while they are still in flight."""
        thresholds = self._source.stuck
        stuck = read_in_full + sync.stuck_as_before(
            prior, listing.same, thresholds=thresholds, now=now
        )
        if not full:
            listed = listing.same | {order.order_id for order in listing.orders}
            stuck += [
                order
                for order in self._tally.stuck_of(customer_id)
                if order.order_id not in listed and order.order_id in in_flight
            ]
        return stuck

    async def _sync_store(self, store_wide: feed.StoreWide) -> CustomerSync:
        """One store-wide poll (`watcher.feed`), as one sync of the customer `feed.FEED`."""
        listing = await store_wide.poll()
        tracked = self._tally.orders_of(feed.FEED)
        self._tally.count_orders(
            feed.FEED, listing.orders if listing.full else tracked + listing.new_orders
        )
        for customer_id, stuck in listing.stuck.items():
            self._tally.count_stuck(customer_id, stuck)
        for customer_id in self._tally.stuck_customers() - store_wide.in_flight.keys():
            self._tally.count_stuck(customer_id, [])
        return CustomerSync(
            self.name,
            feed.FEED,
            orders=listing.orders,
            events=listing.events,
            records=listing.records,
            stuck=[order for orders in listing.stuck.values() for order in orders],
            full=listing.full,
            baseline=listing.baseline,
            hot=bool(store_wide.in_flight),
            next_delay_s=listing.next_delay_s,
        )


def summary(results: Sequence[CustomerSync]) -> str:
    """One line for a whole cycle: customers ok/failed, orders and events."""
    failed = sum(1 for result in results if result.error is not None)
    orders = sum(result.orders for result in results)
    events = sum(len(result.records) for result in results)
    return f"{len(results) - failed} ok, {failed} failed, {orders} orders, {events} events"
