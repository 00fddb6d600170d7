"""`watcher.fleet` in one process: two replicas (each a `Fleet`, its own PostgreSQL store and
a shared `Poller` of the Adobe simulator) beating by hand, so every step is seen.

They even out the customers (a fair share each, none held twice), one leads the relay, the
rate is split between them, a stopped replica's leases pass to the other at once, a sync
whose lease was taken over writes nothing and lets the customer go, and discovery in a
fleet only records the customers for the leases to share out; a store-wide feed is one
lease, polled and committed under it by one replica.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from tests.plugins.elastic_path import EpAdmin, EpSimulator
from tests.plugins.simulator import SIM_NOW, AdobeSimulator, ManualClock, SimAdmin
from tests.poller_cases import SOURCE, Rig
from tests.test_store_wide import Rig as WideRig
from watcher.core.errors import LeaseLost
from watcher.feed import FEED
from watcher.fleet import RELAY, Fleet
from watcher.poller import Poller
from watcher.providers import connect, guard
from watcher.simulator.adobe_vip.world import RESELLER_ID
from watcher.store import postgres

CUSTOMERS = ["1000000001", "1000000002", *(f"10000000{n:02d}" for n in range(3, 7))]
LEASE_S = 30.0  # the beats are by hand: nothing expires during a test


@dataclass
class Replica:
    fleet: Fleet
    poller: Poller
    store: postgres.PostgresStore
    limiter: guard.RateLimiter


@pytest.fixture
async def rig(adobe_sim: AdobeSimulator, sim_admin: SimAdmin, pg_url: str) -> AsyncIterator[Rig]:
    for customer_id in CUSTOMERS[2:]:
        await sim_admin.create_customer(customer_id)
    snapshots = await postgres.PostgresStore.open(pg_url)
    async with aiohttp.ClientSession() as session:
        yield Rig(adobe_sim, sim_admin, snapshots, session, ManualClock(SIM_NOW))
    await snapshots.close()


@contextlib.asynccontextmanager
async def replicas(rig: Rig, pg_url: str) -> AsyncIterator[list[Replica]]:
    settings = rig.source(customers=CUSTOMERS)
    made: list[Replica] = []
    try:
        for name in ("r1", "r2"):
            store = await postgres.PostgresStore.open(pg_url, pool_size=2)
            provider = connect.guarded(settings, rig.session)
            poller = Poller(
                settings,
                provider,
                store,
                directory=provider if settings.discovers else None,
                clock=rig.clock,
                shared=True,
            )
            fleet = Fleet(store, replica=name, lease_s=LEASE_S)
            fleet.add(poller, provider.limiter)
            fleet.gate(RELAY, asyncio.Event().wait)  # type: ignore[arg-type]
            assert provider.limiter is not None
            made.append(Replica(fleet, poller, store, provider.limiter))
        yield made
    finally:
        for replica in made:
            await replica.store.close()


def held(replica: Replica) -> set[str]:
    return set(replica.poller.fences)


async def test_two_replicas_even_out_and_a_stopped_one_hands_everything_over(
    rig: Rig, pg_url: str
) -> None:
    async with replicas(rig, pg_url) as (first, second):
        await first.fleet.beat()
        assert held(first) == set(CUSTOMERS)  # alone: everything
        assert first.fleet.leads(RELAY)

        await second.fleet.beat()  # two alive now, but nothing is free yet
        assert held(second) == set()
        await first.fleet.beat()  # gives its surplus back
        await second.fleet.beat()  # and the second takes it

        assert len(held(first)) == len(held(second)) == 3
        assert held(first) | held(second) == set(CUSTOMERS)
        assert first.fleet.leads(RELAY)
        assert not second.fleet.leads(RELAY)
        assert (first.fleet.alive, second.fleet.alive) == (2, 2)

        running = asyncio.create_task(first.fleet.run())
        await first.fleet.started()
        running.cancel()  # a SIGTERM: its leases are given back at once, the relay's after
        with contextlib.suppress(asyncio.CancelledError):  # the drain
            await running
        assert first.fleet.relayed_until_stop
        assert first.fleet.may_relay()
        assert 0 < first.fleet.relay_lease_left_s() <= LEASE_S
        await second.fleet.beat()
        assert not second.fleet.leads(RELAY)  # not while the first drains
        await first.fleet.hand_over()
        assert not first.fleet.may_relay()
        await second.fleet.beat()

        assert held(first) == set()
        assert held(second) == set(CUSTOMERS)
        assert second.fleet.leads(RELAY)


async def test_each_replica_sends_its_share_of_the_rate(rig: Rig, pg_url: str) -> None:
    async with replicas(rig, pg_url) as (first, second):
        await first.fleet.beat()
        assert first.limiter.share == 1.0
        await second.fleet.beat()
        await first.fleet.beat()

        assert (first.limiter.share, second.limiter.share) == (0.5, 0.5)


async def test_a_replica_that_missed_its_beats_writes_nothing_and_lets_go(
    rig: Rig, pg_url: str
) -> None:
    async with replicas(rig, pg_url) as (first, second):
        await first.fleet.beat()
        customer = CUSTOMERS[0]
        token = first.poller.fences[customer].token
        await first.store.heartbeat("r1", ttl_s=0.5)  # and then it is paused past that
        await asyncio.sleep(0.8)
        await second.fleet.beat()  # alone alive: takes everything

        result = await first.poller.sync_customer(customer)

        assert second.poller.fences[customer].token == token + 1
        assert isinstance(result.error, LeaseLost)
        assert await first.store.poll_state(SOURCE, customer) is None  # nothing written
        await first.fleet.beat()  # its heartbeat had a gap: it looks, and lets go
        assert held(first) == set()
        assert held(second) == set(CUSTOMERS)


async def test_discovery_in_a_fleet_records_the_customers_and_the_leases_share_them(
    rig: Rig, pg_url: str
) -> None:
    settings = rig.source(customers="all", adobe_vip={"reseller_id": RESELLER_ID})
    provider = connect.guarded(settings, rig.session)
    poller = Poller(settings, provider, rig.store, directory=provider, clock=rig.clock, shared=True)

    await poller.discover()

    assert poller.customers_known == 0  # recorded, not polled: the fleet shares them out
    assert sorted(await poller.wanted()) == sorted(CUSTOMERS)
    fleet = Fleet(rig.store, replica="r1", lease_s=LEASE_S)  # type: ignore[arg-type]
    fleet.add(poller, provider.limiter)
    await fleet.beat()
    assert set(poller.fences) == set(CUSTOMERS)
    assert poller.customers_known == len(CUSTOMERS)


async def test_a_store_wide_feed_is_polled_by_one_replica_under_its_lease(
    ep_sim: EpSimulator, ep_admin: EpAdmin, pg_url: str, sim_clock: ManualClock
) -> None:
    """The whole store is one lease (`feed.FEED`): its holder polls and commits under it;
    a holder that missed its beats writes nothing once another took the feed."""
    stores = [await postgres.PostgresStore.open(pg_url, pool_size=2) for _ in range(2)]
    try:
        async with aiohttp.ClientSession() as session:
            made = []
            for name, snapshots in zip(("r1", "r2"), stores, strict=True):
                rig = WideRig(ep_sim.base_url, ep_admin, snapshots, session, sim_clock)
                source = rig.source("elastic_path")
                provider = connect.guarded(source, session)
                poller = Poller(source, provider, snapshots, clock=sim_clock, shared=True)
                fleet = Fleet(snapshots, replica=name, lease_s=LEASE_S)
                fleet.add(poller, provider.limiter)
                made.append((fleet, poller, snapshots))
            (first, first_poller, first_store), (second, second_poller, _) = made

            await first.beat()
            await second.beat()
            assert set(first_poller.fences) == {FEED}
            assert set(second_poller.fences) == set()
            baseline = await first_poller.sync_customer(FEED)
            assert baseline.error is None
            stored = await first_store.poll_state(source.name, FEED)
            assert stored is not None

            await first_store.heartbeat("r1", ttl_s=0.5)  # then paused past that
            await asyncio.sleep(0.8)
            await second.beat()
            again = await first_poller.sync_customer(FEED)

            assert set(second_poller.fences) == {FEED}
            assert isinstance(again.error, LeaseLost)
            assert await first_store.poll_state(source.name, FEED) == stored
    finally:
        for snapshots in stores:
            await snapshots.close()
