"""Leases on a real PostgreSQL server (`ports.Leases`): replicas claiming at once split the
free customers and never share one; a lease lasts while its holder beats, passes to another
replica with a larger fencing token once the holder stops beating, leaves or releases it;
and a sync fenced by a lease that is no longer current writes nothing, its deferred poll
state included.

Several replicas are several stores (each its own pool of connections) on one database; a
replica beats before it claims, as `watcher.fleet` does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from tests.orders import SOURCE, order
from watcher.core.errors import LeaseLost
from watcher.core.ports import Fence, OutboxRecord, PollState, Snapshot
from watcher.store import postgres, postgres_schema

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SYNCED = PollState(baseline_done=True, last_success_at=T0)
CUSTOMERS = [f"c{n:03d}" for n in range(60)]
TTL_S = 30.0
SHORT_TTL_S = 1.0  # long enough for a loaded machine to act within it
LAPSE_S = SHORT_TTL_S + 0.3


@pytest.fixture
async def replicas(pg_url: str) -> AsyncIterator[list[postgres.PostgresStore]]:
    stores = [await postgres.PostgresStore.open(pg_url, pool_size=3) for _ in range(3)]
    for n, store in enumerate(stores, start=1):
        await store.heartbeat(f"r{n}", ttl_s=TTL_S)
    yield stores
    for store in stores:
        await store.close()


async def test_replicas_claiming_at_once_split_the_customers_and_never_share_one(
    replicas: list[postgres.PostgresStore],
) -> None:
    async def claim_all(n: int, store: postgres.PostgresStore) -> dict[str, int]:
        held: dict[str, int] = {}
        for _ in range(10):  # a few rounds of 7, as a replica's beats would
            held |= await store.claim(SOURCE, f"r{n}", CUSTOMERS, limit=7)
        return held

    claimed = await asyncio.gather(*(claim_all(n, s) for n, s in enumerate(replicas, start=1)))

    every = [customer for held in claimed for customer in held]
    assert sorted(every) == CUSTOMERS  # each customer once, by one replica
    assert all(token == 1 for held in claimed for token in held.values())


async def test_a_lease_of_a_live_replica_is_not_claimed_by_another(
    replicas: list[postgres.PostgresStore],
) -> None:
    first, second, _ = replicas
    held = await first.claim(SOURCE, "r1", CUSTOMERS[:3], limit=10)

    assert await second.claim(SOURCE, "r2", CUSTOMERS[:3], limit=10) == {}
    assert await first.still_held(SOURCE, "r1", held) == set(CUSTOMERS[:3])
    assert await second.still_held(SOURCE, "r2", held) == set()  # not its leases


async def test_a_replica_that_stops_beating_loses_every_lease_at_once(
    replicas: list[postgres.PostgresStore],
) -> None:
    first, second, _ = replicas
    await first.heartbeat("r1", ttl_s=SHORT_TTL_S)
    held = await first.claim(SOURCE, "r1", CUSTOMERS, limit=len(CUSTOMERS))
    await asyncio.sleep(LAPSE_S)

    taken = await second.claim(SOURCE, "r2", CUSTOMERS, limit=len(CUSTOMERS))
    beat = await first.heartbeat("r1", ttl_s=TTL_S)  # back, after a gap

    assert taken == {customer: held[customer] + 1 for customer in CUSTOMERS}
    assert not beat.continuous
    assert await first.still_held(SOURCE, "r1", held) == set()


async def test_a_heartbeat_says_whether_it_came_in_time(
    replicas: list[postgres.PostgresStore],
) -> None:
    first = replicas[0]
    assert (await first.heartbeat("r1", ttl_s=SHORT_TTL_S)).continuous
    await asyncio.sleep(LAPSE_S)
    assert not (await first.heartbeat("r1", ttl_s=TTL_S)).continuous
    assert not (await first.heartbeat("new", ttl_s=TTL_S)).continuous  # never beat before


async def test_a_released_lease_is_free_at_once(replicas: list[postgres.PostgresStore]) -> None:
    first, second, _ = replicas
    held = await first.claim(SOURCE, "r1", ["c1", "c2"], limit=2)

    await first.release(SOURCE, "r1", {"c1": held["c1"]})

    assert await second.claim(SOURCE, "r2", ["c1", "c2"], limit=2) == {"c1": 2}


async def test_a_commit_fenced_by_a_lost_lease_writes_nothing(
    replicas: list[postgres.PostgresStore],
) -> None:
    first, second, _ = replicas
    await first.heartbeat("r1", ttl_s=SHORT_TTL_S)
    held = await first.claim(SOURCE, "r1", ["c1"], limit=1)
    stale = Fence("r1", held["c1"], "c1")
    await first.commit_sync(SOURCE, "c1", snapshots=[], events=[], state=SYNCED, fence=stale)
    await asyncio.sleep(LAPSE_S)
    taken = await second.claim(SOURCE, "r2", ["c1"], limit=1)
    current = Fence("r2", taken["c1"], "c1")
    snapshot = Snapshot(order=order(order_id="o1"), sequence=1)
    event = OutboxRecord("e1", "order.created", "adobe_vip.order.created", b"{}", T0)
    await first.heartbeat("r1", ttl_s=TTL_S)  # alive again, but no longer the holder

    with pytest.raises(LeaseLost, match="no longer holds the lease"):
        await first.commit_sync(
            SOURCE, "c1", snapshots=[snapshot], events=[event], state=PollState(False), fence=stale
        )

    assert await second.load_snapshots(SOURCE, "c1", ["o1"]) == {}
    assert await second.pending(10) == []
    assert await second.poll_state(SOURCE, "c1") == SYNCED
    await second.commit_sync(
        SOURCE, "c1", snapshots=[snapshot], events=[event], state=SYNCED, fence=current
    )
    assert [record.event_id for record in await second.pending(10)] == ["e1"]


async def test_a_commit_of_a_replica_no_longer_alive_writes_nothing(
    replicas: list[postgres.PostgresStore],
) -> None:
    """Even before another replica claims the lease: its holder is not alive."""
    first = replicas[0]
    await first.heartbeat("r1", ttl_s=SHORT_TTL_S)
    held = await first.claim(SOURCE, "r1", ["c1"], limit=1)
    await asyncio.sleep(LAPSE_S)

    with pytest.raises(LeaseLost):
        await first.commit_sync(
            SOURCE, "c1", snapshots=[], events=[], state=SYNCED, fence=Fence("r1", held["c1"], "c1")
        )


async def test_a_poll_recorded_under_a_lost_lease_is_dropped(
    replicas: list[postgres.PostgresStore], pg_url: str
) -> None:
    first = replicas[0]
    held = await first.claim(SOURCE, "r1", ["c1", "c2"], limit=2)
    await first.release(SOURCE, "r1", {"c1": held["c1"]})
    later = PollState(True, last_success_at=T0, in_flight=frozenset({"o1"}))

    await first.record_poll(SOURCE, "c1", later, fence=Fence("r1", held["c1"], "c1"))
    await first.record_poll(SOURCE, "c2", later, fence=Fence("r1", held["c2"], "c2"))
    await first.close()  # writes what waits

    reader = await postgres.PostgresStore.open(pg_url)
    try:
        assert await reader.poll_states(SOURCE) == {"c2": later}
    finally:
        await reader.close()


async def test_a_claim_skips_a_lease_a_fenced_commit_holds_and_waits_for_nothing(
    replicas: list[postgres.PostgresStore], pg_url: str
) -> None:
    """A fenced commit share-locks its lease row (`CHECK_FENCE`) until it ends: a claim at
    that moment skips the row at once, even though its holder has stopped beating
    meanwhile, and takes it after the commit."""
    first, second, _ = replicas
    await first.heartbeat("r1", ttl_s=SHORT_TTL_S)
    held = await first.claim(SOURCE, "r1", ["c1"], limit=1)
    committing = await asyncpg.connect(pg_url)
    try:
        transaction = committing.transaction()
        await transaction.start()
        checked = await committing.fetchval(
            postgres_schema.CHECK_FENCE, SOURCE, "c1", "r1", held["c1"]
        )
        assert checked == 1  # the lease was current when the commit checked it
        await asyncio.sleep(LAPSE_S)

        started = time.monotonic()
        during = await second.claim(SOURCE, "r2", ["c1"], limit=1)
        waited_s = time.monotonic() - started
        await transaction.commit()
    finally:
        await committing.close()
    after = await second.claim(SOURCE, "r2", ["c1"], limit=1)

    assert during == {}
    assert waited_s < 1.0
    assert after == {"c1": held["c1"] + 1}


async def test_heartbeats_count_the_live_replicas_and_one_that_leaves_frees_its_leases(
    replicas: list[postgres.PostgresStore],
) -> None:
    first, second, third = replicas
    assert (await first.heartbeat("r1", ttl_s=TTL_S)).alive == 3
    held = await second.claim(SOURCE, "r2", ["c1"], limit=1)
    await second.heartbeat("r2", ttl_s=SHORT_TTL_S)
    await asyncio.sleep(LAPSE_S)
    assert (await third.heartbeat("r3", ttl_s=TTL_S)).alive == 2  # r2 stopped beating

    await first.leave("r1")

    assert (await third.heartbeat("r3", ttl_s=TTL_S)).alive == 1
    assert await third.claim(SOURCE, "r3", ["c1"], limit=1) == {"c1": held["c1"] + 1}
