"""One poll of one customer, and the per-source loop around it.

A customer's sync fetches its recent orders (all or nothing), reconciles them with the
stored snapshots and commits the new snapshots, their events and the poll state in one
transaction. It never waits for the broker: after a commit it only wakes the relay.

Windows: a customer's first sync, and then one every `full_relist_interval_s`, re-lists
everything; the syncs between ask only for orders created in the last `lookback_days`.
The first successful sync is the baseline: orders already there are recorded without an
order.created each, unless `created_on_baseline` is set.

The loop gives each customer its own schedule (the interval plus random jitter) and lets
at most `concurrency` of a source's customers sync at once. `stop()` lets the syncs in hand
finish and then ends the loop: that is how SIGTERM drains.

`on_sync` hears about every finished sync (the relay's wake-up, metrics, readiness), and
`orders_tracked` sums the orders of each customer's last successful sync.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from watcher import logs
from watcher.core import sync
from watcher.core.errors import (
    PermanentProviderError,
    ProviderError,
    StoreError,
    WaitingError,
)
from watcher.core.events import OrderEvent
from watcher.core.models import Order
from watcher.core.ports import OutboxRecord, PollState, Provider, SnapshotStore
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
    stuck: list[Order] = field(default_factory=list)
    full: bool = False
    baseline: bool = False
    seconds: float = 0.0
    error: ProviderError | StoreError | None = None

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
    if isinstance(exc, StoreError):
        return logging.ERROR
    return logging.DEBUG if isinstance(exc, WaitingError) else logging.WARNING


def _no_op(_: CustomerSync) -> None:
    return None


class Poller:
    """Polls every customer of one source."""

    def __init__(
        self,
        source: SourceSettings,
        provider: Provider,
        store: SnapshotStore,
        *,
        on_sync: Callable[[CustomerSync], None] = _no_op,
        clock: Callable[[], datetime],
        rng: random.Random | None = None,
    ) -> None:
        self._source = source
        self._provider = provider
        self._store = store
        self._on_sync = on_sync
        self._clock = clock
        self._rng = rng or random.Random()
        self._limit = asyncio.Semaphore(source.concurrency)
        self._stopping = asyncio.Event()
        self._orders: dict[str, int] = {}
        self._stuck: dict[str, Counter[str]] = {}

    @property
    def name(self) -> str:
        return self._source.name

    @property
    def orders_tracked(self) -> int:
        """Orders in each customer's last successful sync, summed over the customers."""
        return sum(self._orders.values())

    @property
    def stuck_by_status(self) -> Counter[str]:
        """Orders past their stuck threshold at each customer's last sync, by status."""
        return sum(self._stuck.values(), Counter())

    def stop(self) -> None:
        self._stopping.set()

    async def cycle(self) -> list[CustomerSync]:
        """Sync every customer once, `concurrency` at a time (fewer after `stop()`)."""
        results = await asyncio.gather(*map(self._limited, self._source.customers))
        return [result for result in results if result is not None]

    async def run(self) -> None:
        """Poll every customer on its own schedule until `stop()` or cancellation."""
        async with asyncio.TaskGroup() as group:
            for customer_id in self._source.customers:
                group.create_task(self._customer_loop(customer_id))

    async def _customer_loop(self, customer_id: str) -> None:
        if await self._wait(self._rng.uniform(0, self._first_delay_s())):
            return
        while not self._stopping.is_set():
            await self._limited(customer_id)
            if await self._wait(self._next_delay_s()):
                return

    def _first_delay_s(self) -> float:
        return min(self._source.poll_interval_s, self._source.poll_jitter_s)

    def _next_delay_s(self) -> float:
        jitter = self._source.poll_jitter_s
        return max(0.0, self._source.poll_interval_s + self._rng.uniform(-jitter, jitter))

    async def _wait(self, seconds: float) -> bool:
        """Sleep `seconds` unless stopped first; True when stopping."""
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
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
        self._orders[customer_id] = result.orders
        self._stuck[customer_id] = Counter(order.status.value for order in result.stuck)
        result = dataclasses.replace(result, seconds=seconds)
        log.info(
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
        state = await self._store.poll_state(self.name, customer_id) or PollState(False)
        now = self._clock()
        full = self._full_relist_due(state, now)
        since = None if full else now - timedelta(days=self._source.lookback_days)
        orders = await self._provider.fetch_orders(
            customer_id, since=since, changed_since=None if full else state.last_success_at
        )
        stored = await self._store.load_snapshots(
            self.name, customer_id, [order.order_id for order in orders]
        )
        baseline = not state.baseline_done and not self._source.created_on_baseline
        result = sync.reconcile(
            orders, stored, baseline=baseline, now=now, thresholds=self._source.stuck
        )
        await self._store.commit_sync(
            self.name,
            customer_id,
            snapshots=result.snapshots,
            events=result.records,
            state=PollState(
                baseline_done=True,
                last_success_at=now,
                last_full_sync_at=now if full else state.last_full_sync_at,
            ),
        )
        return CustomerSync(
            self.name,
            customer_id,
            orders=len(orders),
            events=result.events,
            records=result.records,
            stuck=result.stuck,
            full=full,
            baseline=not state.baseline_done,
        )

    def _full_relist_due(self, state: PollState, now: datetime) -> bool:
        if not state.baseline_done or state.last_full_sync_at is None:
            return True
        age_s = (now - state.last_full_sync_at).total_seconds()
        return age_s >= self._source.full_relist_interval_s


def summary(results: Sequence[CustomerSync]) -> str:
    """One line for a whole cycle: customers ok/failed, orders and events."""
    failed = sum(1 for result in results if result.error is not None)
    orders = sum(result.orders for result in results)
    events = sum(len(result.records) for result in results)
    return f"{len(results) - failed} ok, {failed} failed, {orders} orders, {events} events"
