"""The contract every store behind the `Store` port keeps, run against each implementation.

Covers snapshot and poll-state round trips (a snapshot's stuck-order episode included), the
one-transaction guarantee of `commit_sync` (a sync that fails half-way leaves nothing, and
no reader sees it half-written), duplicate event ids, the outbox's order, limit, publishing,
statistics and pruning, isolation between customers and sources, durability across close
and reopen, and a closed store's errors.

A store joins by adding an async context manager to `FACTORIES`: given the test's request
(for fixtures such as `pg_url`) and a fresh `tmp_path`, it yields an `Opener` that opens the
same empty database each time it is called.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Protocol, cast

import pytest

from tests.orders import CUSTOMER_ID, SOURCE, line, order
from watcher.core.errors import StoreError
from watcher.core.models import OrderStatus, Provisioning
from watcher.core.ports import Episode, OutboxRecord, PollState, PriorPoll, Snapshot, Store
from watcher.store import postgres, sqlite

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SYNCED = PollState(baseline_done=True, last_success_at=T0)
NOT_BYTES = cast(bytes, object())  # a body no database can store, to fail a sync half-way


class ContractStore(Store, Protocol):
    async def prune(self, older_than: datetime) -> int: ...


Opener = Callable[[], Awaitable[ContractStore]]


@contextlib.asynccontextmanager
async def _sqlite_file(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    async def open_() -> ContractStore:
        return await sqlite.SqliteStore.open(tmp_path / "store" / "order-watcher.db")

    yield open_


@contextlib.asynccontextmanager
async def _postgres(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    url = cast(str, request.getfixturevalue("pg_url"))  # a fresh database of its own

    async def open_() -> ContractStore:
        return await postgres.PostgresStore.open(url)

    yield open_


Factory = Callable[[pytest.FixtureRequest, Path], contextlib.AbstractAsyncContextManager[Opener]]
FACTORIES = [pytest.param(_sqlite_file, id="sqlite"), pytest.param(_postgres, id="postgres")]


@pytest.fixture(params=FACTORIES)
async def opener(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    factory = cast(Factory, request.param)
    async with factory(request, tmp_path) as open_:
        yield open_


@pytest.fixture
async def store(opener: Opener) -> AsyncIterator[ContractStore]:
    opened = await opener()
    yield opened
    await opened.close()


def event(event_id: str, *, created_at: datetime = T0, body: bytes | None = None) -> OutboxRecord:
    return OutboxRecord(
        event_id=event_id,
        event_type="order.status_changed",
        routing_key="adobe_vip.order.status_changed.completed",
        body=f'{{"id":"{event_id}"}}'.encode() if body is None else body,
        created_at=created_at,
    )


async def commit(
    store: Store,
    *,
    snapshots: Sequence[Snapshot] = (),
    events: Sequence[OutboxRecord] = (),
    state: PollState = SYNCED,
    customer_id: str = CUSTOMER_ID,
    source: str = SOURCE,
) -> None:
    await store.commit_sync(source, customer_id, snapshots=snapshots, events=events, state=state)


def snapshot(
    order_id: str = "5123456789",
    sequence: int = 1,
    *,
    status_since: datetime | None = None,
    stuck_reported: bool = False,
    digest: str | None = None,
    **overrides: object,
) -> Snapshot:
    return Snapshot(
        order=order(order_id=order_id, **overrides),
        sequence=sequence,
        status_since=status_since,
        stuck_reported=stuck_reported,
        digest=digest,
    )


async def test_snapshot_round_trips_with_line_items_and_datetimes(store: ContractStore) -> None:
    rich = snapshot(
        sequence=3,
        status=OrderStatus.COMPLETED,
        status_raw="1000",
        created_at=datetime(2024, 5, 1, 11, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2))),
        line_items=(
            line("1", quantity=12, subscription_id="sub-1", provisioning=Provisioning.PROVISIONED),
            line("2", status=OrderStatus.FAILED, status_raw="1004"),
        ),
        payment="paid",
        payment_raw="PAID",
    )
    await commit(store, snapshots=[rich])

    loaded = await store.load_snapshots(SOURCE, CUSTOMER_ID, ["5123456789"])

    assert loaded == {"5123456789": rich}
    created_at = loaded["5123456789"].order.created_at
    assert created_at is not None
    assert created_at.utcoffset() is not None
    assert created_at == rich.order.created_at


async def test_a_snapshot_episode_round_trips(store: ContractStore) -> None:
    local = timezone(timedelta(hours=-5))
    since = datetime(2024, 5, 1, 7, 0, 0, 250_000, tzinfo=local)
    stuck = snapshot("a", sequence=2, status_since=since, stuck_reported=True)
    fresh = snapshot("b", status_since=T0)
    unknown = snapshot("c")
    await commit(store, snapshots=[stuck, fresh, unknown])

    loaded = await store.load_snapshots(SOURCE, CUSTOMER_ID, ["a", "b", "c"])

    assert loaded == {"a": stuck, "b": fresh, "c": unknown}
    assert loaded["a"].status_since is not None
    assert loaded["a"].status_since.utcoffset() == timedelta(0)
    assert (loaded["c"].status_since, loaded["c"].stuck_reported) == (None, False)


async def test_a_snapshot_written_again_at_the_same_sequence_keeps_the_new_episode(
    store: ContractStore,
) -> None:
    await commit(store, snapshots=[snapshot(sequence=3, status_since=T0)])
    reported = snapshot(sequence=3, status_since=T0, stuck_reported=True)
    await commit(store, snapshots=[reported])
    assert await store.load_snapshots(SOURCE, CUSTOMER_ID, ["5123456789"]) == {
        "5123456789": reported
    }

    moved_on = snapshot(
        sequence=4,
        status_since=T0 + timedelta(hours=3),
        status=OrderStatus.COMPLETED,
        status_raw="1000",
    )
    await commit(store, snapshots=[moved_on])
    assert await store.load_snapshots(SOURCE, CUSTOMER_ID, ["5123456789"]) == {
        "5123456789": moved_on
    }


async def test_load_snapshots_returns_only_stored_orders(store: ContractStore) -> None:
    await commit(store, snapshots=[snapshot("a"), snapshot("b")])

    assert set(await store.load_snapshots(SOURCE, CUSTOMER_ID, ["a", "x", "b", "a"])) == {"a", "b"}
    assert await store.load_snapshots(SOURCE, CUSTOMER_ID, []) == {}


async def test_load_snapshots_handles_more_ids_than_one_query_takes(store: ContractStore) -> None:
    ids = [f"order-{n:04d}" for n in range(1_234)]
    await commit(store, snapshots=[snapshot(order_id, sequence=7) for order_id in ids])

    loaded = await store.load_snapshots(SOURCE, CUSTOMER_ID, [*ids, "unknown"])

    assert sorted(loaded) == ids
    assert {s.sequence for s in loaded.values()} == {7}


async def test_load_priors_hands_back_an_unchanged_order_as_fetched(
    store: ContractStore,
) -> None:
    stored = snapshot("a", sequence=3, status_since=T0, stuck_reported=True, reference="old")
    await commit(store, snapshots=[stored, snapshot("b", sequence=5)])
    # Same essence, another reference: the fetched order itself, the stored bookkeeping.
    same = order(order_id="a", reference="new")
    moved = order(order_id="b", status=OrderStatus.COMPLETED, status_raw="1000")

    priors = await store.load_priors(SOURCE, CUSTOMER_ID, [same, moved, order(order_id="new")])

    assert priors == {
        "a": Snapshot(order=same, sequence=3, status_since=T0, stuck_reported=True),
        "b": snapshot("b", sequence=5),  # the stored order, read back to be diffed
    }
    assert await store.load_priors(SOURCE, CUSTOMER_ID, []) == {}


async def test_load_priors_handles_more_orders_than_one_query_takes(
    store: ContractStore,
) -> None:
    ids = [f"order-{n:04d}" for n in range(1_234)]
    await commit(store, snapshots=[snapshot(order_id, sequence=7) for order_id in ids])

    loaded = await store.load_priors(SOURCE, CUSTOMER_ID, [order(order_id=i) for i in ids])

    assert sorted(loaded) == ids
    assert {s.sequence for s in loaded.values()} == {7}


async def test_prior_poll_reads_the_state_the_digests_and_the_episodes_in_flight(
    store: ContractStore,
) -> None:
    assert await store.prior_poll(SOURCE, CUSTOMER_ID) == PriorPoll(state=None, digests={})
    done = order(order_id="a", status=OrderStatus.COMPLETED, status_raw="1000")
    await commit(
        store,
        snapshots=[
            Snapshot(order=done, sequence=1, digest="d-a"),
            snapshot("b", status_since=T0, stuck_reported=True, digest="d-b"),
            snapshot("c", digest="d-c"),  # in flight with no episode start: read in full
            snapshot("d", status_since=T0),  # no digest
        ],
    )
    await commit(store, snapshots=[snapshot("e", digest="d-e")], customer_id="someone-else")

    prior = await store.prior_poll(SOURCE, CUSTOMER_ID)

    assert prior == PriorPoll(
        state=SYNCED,
        digests={"a": "d-a", "b": "d-b"},
        episodes={"b": Episode(OrderStatus.PENDING, "1002", since=T0, reported=True)},
    )
    assert (await store.load_snapshots(SOURCE, CUSTOMER_ID, ["a"]))["a"].digest == "d-a"


async def test_a_new_digest_keeps_the_episode_its_row_gives(store: ContractStore) -> None:
    await commit(store, snapshots=[snapshot("b", status_since=T0)])
    await store.commit_sync(
        SOURCE, CUSTOMER_ID, snapshots=[], events=[], state=SYNCED, digests={"b": "2"}
    )

    prior = await store.prior_poll(SOURCE, CUSTOMER_ID)

    assert prior.digests == {"b": "2"}
    assert prior.episodes == {"b": Episode(OrderStatus.PENDING, "1002", T0, reported=False)}


async def test_digests_are_recorded_with_the_sync_and_cleared_by_a_snapshot_without_one(
    store: ContractStore,
) -> None:
    await commit(store, snapshots=[snapshot("a", status_since=T0), snapshot("b", status_since=T0)])
    await store.commit_sync(
        SOURCE, CUSTOMER_ID, snapshots=[], events=[], state=SYNCED, digests={"a": "1", "b": "2"}
    )
    assert (await store.prior_poll(SOURCE, CUSTOMER_ID)).digests == {"a": "1", "b": "2"}

    await commit(store, snapshots=[snapshot("b", sequence=2, status_since=T0)])  # read again

    assert (await store.prior_poll(SOURCE, CUSTOMER_ID)).digests == {"a": "1"}


async def test_digests_commit_with_the_sync_or_not_at_all(store: ContractStore) -> None:
    await commit(store, snapshots=[snapshot("a")])

    with pytest.raises(StoreError):
        await store.commit_sync(
            SOURCE,
            CUSTOMER_ID,
            snapshots=[],
            events=[event("e1", body=NOT_BYTES)],
            state=SYNCED,
            digests={"a": "1"},
        )

    assert (await store.prior_poll(SOURCE, CUSTOMER_ID)).digests == {}


async def test_a_newer_snapshot_replaces_the_stored_one(store: ContractStore) -> None:
    await commit(store, snapshots=[snapshot(sequence=1)])
    newer = snapshot(sequence=2, status=OrderStatus.PROCESSING, status_raw="1001")
    await commit(store, snapshots=[newer])

    assert await store.load_snapshots(SOURCE, CUSTOMER_ID, [newer.order.order_id]) == {
        newer.order.order_id: newer
    }


async def test_poll_state_round_trips_as_utc_aware_datetimes(store: ContractStore) -> None:
    assert await store.poll_state(SOURCE, CUSTOMER_ID) is None
    local = timezone(timedelta(hours=-5))
    state = PollState(
        baseline_done=True,
        last_success_at=datetime(2024, 5, 1, 7, 0, 0, 250_000, tzinfo=local),
        last_full_sync_at=T0,
    )
    await commit(store, state=state)

    loaded = await store.poll_state(SOURCE, CUSTOMER_ID)

    assert loaded == state
    assert loaded is not None
    assert loaded.last_success_at is not None
    assert loaded.last_success_at.utcoffset() == timedelta(0)


async def test_poll_state_is_overwritten_including_nulls(store: ContractStore) -> None:
    await commit(store, state=PollState(True, last_success_at=T0, last_full_sync_at=T0))
    await commit(store, state=PollState(False))

    assert await store.poll_state(SOURCE, CUSTOMER_ID) == PollState(False)


async def test_a_sync_failing_half_way_writes_nothing(store: ContractStore) -> None:
    with pytest.raises(StoreError):
        await commit(
            store,
            snapshots=[snapshot("a"), snapshot("b")],
            events=[event("e1"), event("e2", body=NOT_BYTES)],
        )

    assert await store.load_snapshots(SOURCE, CUSTOMER_ID, ["a", "b"]) == {}
    assert await store.poll_state(SOURCE, CUSTOMER_ID) is None
    assert await store.pending(10) == []
    assert (await store.stats()).backlog == 0


async def test_the_store_works_on_after_a_failed_sync(store: ContractStore) -> None:
    with pytest.raises(StoreError):
        await commit(store, snapshots=[snapshot("a")], events=[event("e1", body=NOT_BYTES)])

    await commit(store, snapshots=[snapshot("a")], events=[event("e1")])

    assert set(await store.load_snapshots(SOURCE, CUSTOMER_ID, ["a"])) == {"a"}
    assert [record.event_id for record in await store.pending(10)] == ["e1"]


async def test_no_reader_sees_a_sync_half_written(store: ContractStore) -> None:
    failing = asyncio.create_task(
        commit(store, snapshots=[snapshot("a")], events=[event("e1"), event("e2", body=NOT_BYTES)])
    )
    seen: list[OutboxRecord] = []
    while not failing.done():
        seen += await store.pending(10)
        seen_snapshots = await store.load_snapshots(SOURCE, CUSTOMER_ID, ["a"])
        assert seen_snapshots == {}

    with pytest.raises(StoreError):
        await failing
    assert seen == []


async def test_naive_datetimes_are_refused_before_anything_is_written(
    store: ContractStore,
) -> None:
    with pytest.raises(ValueError, match="timezone"):
        await commit(
            store,
            snapshots=[snapshot("a")],
            events=[event("e1", created_at=T0.replace(tzinfo=None))],
        )

    assert await store.load_snapshots(SOURCE, CUSTOMER_ID, ["a"]) == {}


async def test_duplicate_event_ids_are_enqueued_once(store: ContractStore) -> None:
    await commit(store, events=[event("e1"), event("e2")])
    await commit(store, events=[event("e2"), event("e3"), event("e3")])

    assert [record.event_id for record in await store.pending(10)] == ["e1", "e2", "e3"]


async def test_pending_is_oldest_first_and_limited(store: ContractStore) -> None:
    await commit(
        store, events=[event(f"e{n}", created_at=T0 + timedelta(seconds=n)) for n in range(5)]
    )
    await commit(
        store, events=[event("e5", created_at=T0 + timedelta(seconds=5))], customer_id="other"
    )

    first = await store.pending(3)

    assert [record.event_id for record in first] == ["e0", "e1", "e2"]
    assert first[0] == event("e0")
    assert [record.event_id for record in await store.pending(100)] == [f"e{n}" for n in range(6)]
    assert await store.pending(0) == []


async def test_published_events_leave_pending(store: ContractStore) -> None:
    await commit(store, events=[event("e1"), event("e2"), event("e3")])

    await store.mark_published(["e1", "e3", "unknown"], at=T0)

    assert [record.event_id for record in await store.pending(10)] == ["e2"]
    await store.mark_published([], at=T0)
    assert (await store.stats()).backlog == 1


async def test_pending_after_an_event_reads_on_from_it(store: ContractStore) -> None:
    """The relay reads its next batch while the one before is still unmarked: `after` the
    last event it read, it gets only what comes later, published or not in between."""
    await commit(store, events=[event(f"e{n}", created_at=T0) for n in range(4)])
    await commit(store, events=[event("e4", created_at=T0)], customer_id="other")

    first = await store.pending(2)
    await store.mark_published(["e3"], at=T0)

    assert [r.event_id for r in await store.pending(10, after=first[-1].event_id)] == ["e2", "e4"]
    assert [r.event_id for r in await store.pending(1, after="e1")] == ["e2"]
    assert await store.pending(10, after="e4") == []
    assert await store.pending(10, after="unknown") == []
    assert [r.event_id for r in await store.pending(10)] == ["e0", "e1", "e2", "e4"]


async def test_stats_count_the_backlog_and_its_oldest_event(store: ContractStore) -> None:
    empty = await store.stats()
    assert (empty.backlog, empty.oldest_created_at) == (0, None)
    times = [T0 + timedelta(minutes=n) for n in (5, 1, 9)]
    await commit(store, events=[event(f"e{n}", created_at=t) for n, t in enumerate(times)])
    await store.mark_published(["e1"], at=T0 + timedelta(minutes=10))

    stats = await store.stats()

    assert stats.backlog == 2
    assert stats.oldest_created_at == T0 + timedelta(minutes=5)
    assert stats.oldest_created_at is not None
    assert stats.oldest_created_at.utcoffset() == timedelta(0)


async def test_everything_survives_close_and_reopen(opener: Opener) -> None:
    first = await opener()
    await commit(first, snapshots=[snapshot("a", sequence=4)], events=[event("e1"), event("e2")])
    await first.mark_published(["e1"], at=T0)
    await first.close()

    second = await opener()
    try:
        assert await second.load_snapshots(SOURCE, CUSTOMER_ID, ["a"]) == {
            "a": snapshot("a", sequence=4)
        }
        assert await second.poll_state(SOURCE, CUSTOMER_ID) == SYNCED
        assert [record.event_id for record in await second.pending(10)] == ["e2"]
    finally:
        await second.close()


async def test_customers_and_sources_are_kept_apart(store: ContractStore) -> None:
    await commit(store, snapshots=[snapshot("a")], state=PollState(True), customer_id="c1")
    await commit(store, snapshots=[snapshot("b")], state=PollState(False), customer_id="c2")
    await commit(
        store, snapshots=[snapshot("a", sequence=9)], source="other-source", customer_id="c1"
    )

    assert set(await store.load_snapshots(SOURCE, "c1", ["a", "b"])) == {"a"}
    assert set(await store.load_snapshots(SOURCE, "c2", ["a", "b"])) == {"b"}
    assert (await store.load_snapshots(SOURCE, "c1", ["a"]))["a"].sequence == 1
    assert await store.poll_state(SOURCE, "c1") == PollState(True)
    assert await store.poll_state(SOURCE, "c2") == PollState(False)
    assert await store.poll_state("other-source", "c2") is None


async def test_concurrent_syncs_all_land(store: ContractStore) -> None:
    customers = [f"c{n}" for n in range(30)]

    await asyncio.gather(
        *(
            commit(store, snapshots=[snapshot(c)], events=[event(c)], customer_id=c)
            for c in customers
        )
    )

    assert (await store.stats()).backlog == 30
    for customer in customers:
        assert set(await store.load_snapshots(SOURCE, customer, [customer])) == {customer}


async def test_prune_deletes_only_events_published_before_the_cutoff(
    store: ContractStore,
) -> None:
    await commit(store, events=[event("old"), event("recent"), event("unpublished")])
    await store.mark_published(["old"], at=T0)
    await store.mark_published(["recent"], at=T0 + timedelta(days=2))

    assert await store.prune(T0 + timedelta(days=1)) == 1
    assert await store.prune(T0 + timedelta(days=1)) == 0
    assert [record.event_id for record in await store.pending(10)] == ["unpublished"]
    assert await store.prune(T0 + timedelta(days=30)) == 1
    assert (await store.stats()).backlog == 1


async def test_a_closed_store_refuses_work(opener: Opener) -> None:
    closed = await opener()
    await closed.close()
    await closed.close()

    with pytest.raises(StoreError, match="closed"):
        await closed.pending(1)


async def test_a_recorded_poll_is_read_at_once_and_kept_across_a_restart(
    opener: Opener,
) -> None:
    later = PollState(True, last_success_at=T0 + timedelta(minutes=2), in_flight=frozenset("a"))
    store = await opener()
    try:
        await commit(store)
        await store.record_poll(SOURCE, CUSTOMER_ID, later)
        await store.record_poll(SOURCE, "another", SYNCED)

        assert await store.poll_state(SOURCE, CUSTOMER_ID) == later
        assert (await store.prior_poll(SOURCE, CUSTOMER_ID)).state == later
        assert await store.poll_states(SOURCE) == {CUSTOMER_ID: later, "another": SYNCED}
        assert await store.poll_states("elsewhere") == {}
    finally:
        await store.close()

    reopened = await opener()
    try:
        assert await reopened.poll_states(SOURCE) == {CUSTOMER_ID: later, "another": SYNCED}
    finally:
        await reopened.close()


async def test_the_latest_of_a_recorded_poll_and_a_committed_sync_wins(
    store: ContractStore,
) -> None:
    first, second, third = (
        PollState(True, last_success_at=T0 + timedelta(minutes=n)) for n in (1, 2, 3)
    )
    await store.record_poll(SOURCE, CUSTOMER_ID, first)
    await commit(store, snapshots=[snapshot("a")], state=second)
    assert await store.poll_state(SOURCE, CUSTOMER_ID) == second

    await store.record_poll(SOURCE, CUSTOMER_ID, third)

    assert await store.poll_state(SOURCE, CUSTOMER_ID) == third
    assert await store.poll_states(SOURCE) == {CUSTOMER_ID: third}


async def test_a_closed_store_records_no_poll(store: ContractStore) -> None:
    await store.close()

    with pytest.raises(StoreError, match="closed"):
        await store.record_poll(SOURCE, CUSTOMER_ID, SYNCED)
