"""The poller's loop: `Poller.run()` polling every customer on its own schedule, never more
at once than the source's concurrency, and `stop()` letting the sync in hand finish while
starting none that was only waiting for a slot.

The SQLite store and the Adobe VIP adapter against the simulator are real; a recording
provider around the adapter counts overlapping fetches and can hold them at a gate.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from tests.plugins.simulator import AdobeSimulator, SimAdmin
from tests.poller_cases import CUSTOMER, OTHER, SOURCE, Rig, opened_rig
from watcher.core.models import Order
from watcher.core.ports import Provider
from watcher.poller import CustomerSync, Poller


@pytest.fixture
async def rig(adobe_sim: AdobeSimulator, sim_admin: SimAdmin, tmp_path: Path) -> AsyncIterator[Rig]:
    async with opened_rig(adobe_sim, sim_admin, tmp_path) as opened:
        yield opened


@dataclass
class Recording:
    """A Provider around the real adapter that records overlap and can hold fetches."""

    inner: Provider
    hold_s: float = 0.0
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: int = 0
    most_in_flight: int = 0
    started: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.gate.set()

    async def fetch_orders(
        self, customer_id: str, *, since: datetime | None, changed_since: datetime | None = None
    ) -> list[Order]:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.started.append(customer_id)
        self.entered.set()
        try:
            await self.gate.wait()
            await asyncio.sleep(self.hold_s)
            return await self.inner.fetch_orders(
                customer_id, since=since, changed_since=changed_since
            )
        finally:
            self.in_flight -= 1
            self.finished.append(customer_id)


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_run_never_syncs_more_customers_at_once_than_concurrency(
    rig: Rig, concurrency: int
) -> None:
    customers = [CUSTOMER, OTHER, "1000000003", "1000000004"]
    for customer_id in customers[2:]:
        await rig.admin.create_order(customer_id, {})
    source = rig.source(
        customers=customers, concurrency=concurrency, poll_interval_s=0.05, poll_jitter_s=0.01
    )
    recording = Recording(rig.adapter(source), hold_s=0.02)
    synced: list[CustomerSync] = []
    enough = asyncio.Event()

    def on_sync(result: CustomerSync) -> None:
        synced.append(result)
        if all(sum(r.customer_id == c for r in synced) >= 2 for c in customers):
            enough.set()

    poller = Poller(
        source,
        recording,
        rig.store,
        on_sync=on_sync,
        clock=rig.clock,
        rng=random.Random(5),
    )
    running = asyncio.create_task(poller.run())
    async with asyncio.timeout(5):
        await enough.wait()
    poller.stop()
    async with asyncio.timeout(5):
        await running

    assert recording.most_in_flight == concurrency
    assert all(result.outcome == "ok" for result in synced)
    assert sorted(recording.started) == sorted(recording.finished)
    assert len(synced) == len(recording.started)


async def test_stop_lets_the_sync_in_hand_finish_then_ends_the_run(rig: Rig) -> None:
    source = rig.source(poll_interval_s=0.05, poll_jitter_s=0.01)
    recording = Recording(rig.adapter(source))
    recording.gate.clear()
    synced: list[CustomerSync] = []
    poller = Poller(
        source, recording, rig.store, on_sync=synced.append, clock=rig.clock, rng=random.Random(5)
    )
    running = asyncio.create_task(poller.run())
    async with asyncio.timeout(5):
        await recording.entered.wait()

    poller.stop()
    for _ in range(50):
        await asyncio.sleep(0)
    assert not running.done()
    recording.gate.set()
    async with asyncio.timeout(5):
        await running

    assert [(r.customer_id, r.outcome, r.orders) for r in synced] == [(CUSTOMER, "ok", 5)]
    assert recording.started == recording.finished == [CUSTOMER]
    state = await rig.store.poll_state(SOURCE, CUSTOMER)
    assert state is not None
    assert state.baseline_done


async def test_stop_starts_no_sync_that_was_only_waiting_for_a_slot(rig: Rig) -> None:
    customers = [CUSTOMER, OTHER, "1000000003"]
    await rig.admin.create_order(customers[2], {})
    # No jitter, so no first delay: every customer goes for the one slot at once, in the
    # same turns of the loop, and the two that lose are queued for it before the winner's
    # sync gets as far as the (held) fetch.
    source = rig.source(customers=customers, concurrency=1, poll_interval_s=0.05, poll_jitter_s=0.0)
    recording = Recording(rig.adapter(source))
    recording.gate.clear()
    poller = Poller(source, recording, rig.store, clock=rig.clock, rng=random.Random(5))
    running = asyncio.create_task(poller.run())
    async with asyncio.timeout(5):
        await recording.entered.wait()

    poller.stop()
    recording.gate.set()
    async with asyncio.timeout(5):
        await running

    assert len(recording.started) == 1
