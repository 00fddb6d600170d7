"""What only the SQLite store does: its URL forms, file and directory handling, WAL mode,
the schema version and its migrations (a version 1 database upgraded in place, its rows
kept), the translation of sqlite3 errors, the `updated_at`
clock, the outbox's partial index, pruning after the retention period as events are
marked published, and its thread's operations (whole or not at all when their caller is
cancelled). The shared behaviour is in test_store_contract.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from tests.orders import CUSTOMER_ID, SOURCE, order
from watcher.core import essence
from watcher.core.errors import ConfigError, StoreError
from watcher.core.models import OrderStatus
from watcher.core.ports import Episode, OutboxRecord, PollState, Snapshot
from watcher.store import (
    codec,
    deferred,
    open_store,
    opened,
    retention,
    schema,
    sqlite,
    sqlite_connection,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    """Rows of `sql`, read through a separate plain sqlite3 connection."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return cast(list[tuple[object, ...]], db.execute(sql).fetchall())


def event(event_id: str) -> OutboxRecord:
    return OutboxRecord(
        event_id=event_id, event_type="order.created", routing_key="k", body=b"{}", created_at=T0
    )


async def test_a_new_file_gets_wal_mode_and_the_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "order-watcher.db"

    async with opened(f"sqlite:///{path}"):
        pass

    assert query(path, "PRAGMA journal_mode") == [("wal",)]
    assert query(path, "PRAGMA user_version") == [(schema.VERSION,)]
    tables = query(path, "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
    assert {"outbox", "poll_state", "snapshots"} <= {name for (name,) in tables}


async def test_reopening_keeps_the_schema_and_the_data(tmp_path: Path) -> None:
    path = tmp_path / "order-watcher.db"
    for _ in range(2):
        store = await sqlite.SqliteStore.open(path)
        await store.commit_sync(
            SOURCE, CUSTOMER_ID, snapshots=[], events=[event("e1")], state=PollState(True)
        )
        await store.close()

    assert query(path, "SELECT count(*) FROM outbox") == [(1,)]
    assert query(path, "PRAGMA user_version") == [(schema.VERSION,)]


def create_version_1(path: Path) -> None:
    """A database as order-watcher wrote it before snapshots kept their episode."""
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        for statement in schema.MIGRATIONS[0]:
            db.execute(statement)
        db.execute(
            "INSERT INTO snapshots (source, customer_id, order_id, sequence, body, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                SOURCE,
                CUSTOMER_ID,
                "5123456789",
                4,
                codec.encode(order()),
                "2024-05-01T11:00:00.000000+00:00",
            ),
        )
        db.execute(
            "INSERT INTO outbox (event_id, event_type, routing_key, body, created_at)"
            " VALUES ('e1', 'order.created', 'k', x'7b7d', '2024-05-01T11:00:00.000000+00:00')"
        )
        db.execute(
            "INSERT INTO poll_state (source, customer_id, baseline_done) VALUES (?, ?, 1)",
            (SOURCE, CUSTOMER_ID),
        )
        db.execute("PRAGMA user_version = 1")


async def test_a_version_1_database_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "order-watcher.db"
    create_version_1(path)

    store = await sqlite.SqliteStore.open(path)
    try:
        loaded = await store.load_snapshots(SOURCE, CUSTOMER_ID, ["5123456789"])
        assert loaded == {"5123456789": Snapshot(order=order(), sequence=4)}
        assert [record.event_id for record in await store.pending(10)] == ["e1"]
        assert await store.poll_state(SOURCE, CUSTOMER_ID) == PollState(True)
        # No digest yet: its next listing maps it in full.
        assert (await store.prior_poll(SOURCE, CUSTOMER_ID)).digests == {}
        episode = Snapshot(order=order(), sequence=4, status_since=T0, stuck_reported=True)
        await store.commit_sync(
            SOURCE, CUSTOMER_ID, snapshots=[episode], events=[], state=PollState(True)
        )
        assert await store.load_snapshots(SOURCE, CUSTOMER_ID, ["5123456789"]) == {
            "5123456789": episode
        }
    finally:
        await store.close()

    assert query(path, "PRAGMA user_version") == [(schema.VERSION,)]
    assert query(path, "SELECT status_since, stuck_reported FROM snapshots") == [
        ("2024-05-01T12:00:00.000000+00:00", 1)
    ]


async def test_a_version_5_database_gets_the_status_of_every_row_from_its_body(
    tmp_path: Path,
) -> None:
    """Version 5 kept digests of settled orders only; the upgrade fills in the status columns
    from the stored bodies, so an order in flight given a digest later has its episode."""
    path = tmp_path / "order-watcher.db"
    done = order(order_id="a", status=OrderStatus.COMPLETED, status_raw="1000")
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        for step in schema.MIGRATIONS[:5]:
            for statement in step:
                db.execute(statement)
        for row, digest in ((done, "d-a"), (order(order_id="b"), None)):
            db.execute(
                "INSERT INTO snapshots (source, customer_id, order_id, sequence, body,"
                " updated_at, status_since, digest) VALUES (?, ?, ?, 1, ?, ?, ?, ?)",
                (SOURCE, CUSTOMER_ID, row.order_id, codec.encode(row), "x", T0.isoformat(), digest),
            )
        db.execute("PRAGMA user_version = 5")

    async with opened(f"sqlite:///{path}") as store:
        before = await store.prior_poll(SOURCE, CUSTOMER_ID)
        await store.commit_sync(
            SOURCE,
            CUSTOMER_ID,
            snapshots=[],
            events=[],
            state=PollState(True),
            digests={"b": "d-b"},
        )
        after = await store.prior_poll(SOURCE, CUSTOMER_ID)

    assert query(path, "SELECT order_id, status, status_raw FROM snapshots ORDER BY 1") == [
        ("a", "completed", "1000"),
        ("b", "pending", "1002"),
    ]
    assert (before.digests, before.episodes) == ({"a": "d-a"}, {})
    assert after.digests == {"a": "d-a", "b": "d-b"}
    assert after.episodes == {"b": Episode(OrderStatus.PENDING, "1002", T0, reported=False)}


async def test_a_snapshot_stored_before_fingerprints_is_read_whole_then_fingerprinted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "order-watcher.db"
    create_version_1(path)
    store = await sqlite.SqliteStore.open(path)
    try:
        assert query(path, "SELECT fingerprint FROM snapshots") == [(None,)]
        fetched = order(reference="fetched")

        priors = await store.load_priors(SOURCE, CUSTOMER_ID, [fetched])

        assert priors == {"5123456789": Snapshot(order=order(), sequence=4)}  # the stored one
        assert query(path, "SELECT fingerprint FROM snapshots") == [(essence.fingerprint(order()),)]
        again = await store.load_priors(SOURCE, CUSTOMER_ID, [fetched])
        assert again == {"5123456789": Snapshot(order=fetched, sequence=4)}
    finally:
        await store.close()


async def test_a_new_database_has_every_column_of_the_last_migration(tmp_path: Path) -> None:
    path = tmp_path / "order-watcher.db"
    async with opened(f"sqlite:///{path}"):
        pass

    columns = {name for _, name, *_ in query(path, "PRAGMA table_info(snapshots)")}

    assert {"status_since", "stuck_reported", "fingerprint", "digest"} <= columns


async def test_a_schema_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "order-watcher.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {schema.VERSION + 1}")

    with pytest.raises(StoreError, match="schema version"):
        await sqlite.SqliteStore.open(path)


async def test_a_file_that_is_not_a_database_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "order-watcher.db"
    path.write_bytes(b"this is not a database, just some text " * 100)

    with pytest.raises(StoreError, match="not a database") as caught:
        await sqlite.SqliteStore.open(path)
    assert isinstance(caught.value.__cause__, sqlite3.Error)


async def test_a_directory_that_cannot_be_created_raises_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")

    with pytest.raises(StoreError, match="cannot create the directory") as caught:
        await open_store(f"sqlite:///{blocker}/sub/order-watcher.db")
    assert str(blocker / "sub") in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError)


async def test_a_relative_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    async with opened("sqlite:///data/order-watcher.db"):
        pass

    assert (tmp_path / "data" / "order-watcher.db").is_file()


async def test_an_in_memory_store_works_without_a_file() -> None:
    snapshot = Snapshot(order=order(), sequence=1)
    async with opened("sqlite:///:memory:") as store:
        await store.commit_sync(
            SOURCE, CUSTOMER_ID, snapshots=[snapshot], events=[], state=PollState(True)
        )
        assert await store.load_snapshots(SOURCE, CUSTOMER_ID, [snapshot.order.order_id]) == {
            snapshot.order.order_id: snapshot
        }


@pytest.mark.parametrize(
    "url",
    [
        "order-watcher.db",
        "sqlite://order-watcher.db",
        "sqlite://host/order-watcher.db",
        "sqlite:///",
        "sqlite:///order-watcher.db?mode=ro",
        "mysql://user:hunter2@db/orders",
    ],
)
async def test_a_bad_url_raises_config_error_naming_store_url(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        await open_store(url)

    assert caught.value.key == "store.url"
    assert "hunter2" not in str(caught.value)


async def test_errors_are_translated_with_the_cause_chained(tmp_path: Path) -> None:
    async with opened(f"sqlite:///{tmp_path / 'db'}") as store:
        bad = OutboxRecord("e1", "order.created", "k", cast(bytes, "text"), T0)
        with pytest.raises(StoreError, match="commit the sync") as caught:
            await store.commit_sync(
                SOURCE, CUSTOMER_ID, snapshots=[], events=[bad], state=PollState(True)
            )

    assert isinstance(caught.value.__cause__, sqlite3.Error)


async def test_an_unreadable_snapshot_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "order-watcher.db"
    store = await sqlite.SqliteStore.open(path)
    snapshot = Snapshot(order=order(), sequence=1)
    await store.commit_sync(
        SOURCE, CUSTOMER_ID, snapshots=[snapshot], events=[], state=PollState(True)
    )
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE snapshots SET body = x'7b7d'")

    with pytest.raises(StoreError, match=snapshot.order.order_id):
        await store.load_snapshots(SOURCE, CUSTOMER_ID, [snapshot.order.order_id])
    await store.close()


async def test_snapshots_are_stamped_by_the_clock_in_utc_text(tmp_path: Path) -> None:
    path = tmp_path / "order-watcher.db"
    store = await sqlite.SqliteStore.open(path, clock=lambda: T0)
    await store.commit_sync(
        SOURCE,
        CUSTOMER_ID,
        snapshots=[Snapshot(order=order(), sequence=1)],
        events=[],
        state=PollState(True),
    )
    await store.close()

    assert query(path, "SELECT updated_at FROM snapshots") == [
        ("2024-05-01T12:00:00.000000+00:00",)
    ]


async def test_every_schedule_of_a_source_is_read_the_idle_ones_sharing_one_empty_set(
    tmp_path: Path,
) -> None:
    """At 100,000 customers an empty set each would be megabytes for nothing."""
    written = {
        f"c{n:04d}": PollState(
            True,
            last_success_at=T0,
            next_due_at=T0 + timedelta(seconds=n),
            in_flight=frozenset({f"o{n}"}) if n % 3 == 0 else frozenset(),
        )
        for n in range(1_200)
    }
    async with opened(f"sqlite:///{tmp_path / 'order-watcher.db'}") as store:
        for customer_id, state in written.items():
            await store.commit_sync(SOURCE, customer_id, snapshots=[], events=[], state=state)
        await store.commit_sync("other", "c0000", snapshots=[], events=[], state=PollState(True))

        read = await store.poll_states(SOURCE)

    assert read == written
    idle = {id(state.in_flight) for state in read.values() if not state.in_flight}
    assert idle == {id(sqlite.NOTHING_IN_FLIGHT)}


async def test_pending_reads_the_partial_index(tmp_path: Path) -> None:
    path = tmp_path / "order-watcher.db"
    async with opened(f"sqlite:///{path}"):
        pass

    plan = query(path, "EXPLAIN QUERY PLAN " + schema.SELECT_PENDING.replace("?", "10"))

    assert "outbox_unpublished" in str(plan)


async def test_published_events_past_retention_are_pruned_as_events_are_marked(
    tmp_path: Path,
) -> None:
    path = tmp_path / "order-watcher.db"
    day = timedelta(days=1)
    store = await sqlite.SqliteStore.open(path, retention_s=day.total_seconds())
    await store.commit_sync(
        SOURCE,
        CUSTOMER_ID,
        snapshots=[],
        events=[event("e1"), event("e2"), event("e3")],
        state=PollState(True),
    )
    await store.mark_published(["e1"], at=T0)
    await store.mark_published(["e2"], at=T0 + retention.PRUNE_INTERVAL / 2)
    assert query(path, "SELECT count(*) FROM outbox") == [(3,)]

    await store.mark_published(["e3"], at=T0 + day + retention.PRUNE_INTERVAL)
    await store.close()

    assert query(path, "SELECT event_id FROM outbox ORDER BY seq") == [("e3",)]


async def test_stores_opening_a_new_file_at_the_same_moment_all_open(tmp_path: Path) -> None:
    """Switching a new file to WAL needs a lock SQLite does not wait for; opening retries."""
    for attempt in range(5):
        url = f"sqlite:///{tmp_path / f'race-{attempt}.db'}"
        opened = await asyncio.gather(*(open_store(url) for _ in range(4)))
        try:
            assert query(tmp_path / f"race-{attempt}.db", "PRAGMA journal_mode") == [("wal",)]
        finally:
            for each in opened:
                await each.close()


def test_an_open_cut_short_finishes_inside_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C while the store opens: the store's thread finishes opening the connection and
    closes it, and never reports to the event loop, closed by then."""
    entered, release = threading.Event(), threading.Event()
    connect = sqlite3.connect

    def held(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        entered.set()
        release.wait(5)
        db: sqlite3.Connection = connect(*args, **kwargs)
        return db

    async def cut_short() -> None:
        opening = asyncio.create_task(open_store("sqlite:///:memory:"))
        await asyncio.to_thread(entered.wait, 5)
        opening.cancel()
        threading.Timer(0.2, release.set).start()  # after the loop is gone, were it not waited
        with pytest.raises(asyncio.CancelledError):
            await opening

    reports: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(sqlite3, "connect", held)
    monkeypatch.setattr(threading, "excepthook", reports.append)
    workers = set(threading.enumerate())
    asyncio.run(cut_short())
    for worker in set(threading.enumerate()) - workers:
        worker.join(5)

    assert [report.exc_value for report in reports] == []


async def test_an_operation_runs_whole_or_not_at_all_when_its_caller_is_cancelled(
    tmp_path: Path,
) -> None:
    """The store's thread runs one operation at a time: one cancelled while it waits never
    starts; one cancelled once started still commits, transaction and all."""
    path = str(tmp_path / "order-watcher.db")
    worker = await sqlite_connection.Worker.open(path)
    started, release = threading.Event(), threading.Event()

    def held(db: sqlite3.Connection) -> None:
        with sqlite_connection.transaction(db):
            db.execute("INSERT INTO customers VALUES ('s', 'held', 1)")
            started.set()
            release.wait(5)

    def queued(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO customers VALUES ('s', 'queued', 1)")

    try:
        running = asyncio.create_task(worker.run("hold", held))
        await asyncio.to_thread(started.wait, 5)
        waiting = asyncio.create_task(worker.run("queue", queued))
        await asyncio.sleep(0)
        running.cancel()
        waiting.cancel()
        await asyncio.sleep(0.05)  # the cancellations reach the thread's queue
        release.set()
        for task in (running, waiting):
            with pytest.raises(asyncio.CancelledError):
                await task
    finally:
        await worker.close()

    assert query(Path(path), "SELECT customer_id FROM customers") == [("held",)]


async def test_a_closed_store_refuses_operations(tmp_path: Path) -> None:
    store = await sqlite.SqliteStore.open(tmp_path / "order-watcher.db")
    await store.close()
    await store.close()

    with pytest.raises(StoreError, match="the store is closed"):
        await store.poll_state(SOURCE, CUSTOMER_ID)


async def test_recorded_polls_are_written_together_soon_after_or_once_enough_wait(
    tmp_path: Path,
) -> None:
    path = tmp_path / "order-watcher.db"
    state = PollState(True, last_success_at=T0)
    async with opened(f"sqlite:///{path}") as store:
        await store.record_poll(SOURCE, "early", state)
        assert query(path, "SELECT count(*) FROM poll_state") == [(0,)]

        await asyncio.sleep(deferred.DELAY_S + 0.5)
        assert query(path, "SELECT customer_id FROM poll_state") == [("early",)]

        for n in range(deferred.BATCH):
            await store.record_poll(SOURCE, f"c{n:04d}", state)
        assert query(path, "SELECT count(*) FROM poll_state") == [(deferred.BATCH + 1,)]


async def test_a_poll_reads_on_the_loop_without_waiting_for_a_writer_or_seeing_its_work(
    tmp_path: Path,
) -> None:
    """Another process holds the write lock with a poll state written but not committed:
    `prior_poll` (on the event loop's own connection) neither waits nor sees it."""
    path = tmp_path / "order-watcher.db"
    state = PollState(True, last_success_at=T0)
    async with opened(f"sqlite:///{path}") as store:
        await store.commit_sync(SOURCE, CUSTOMER_ID, snapshots=[], events=[], state=state)
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            other.execute("UPDATE poll_state SET last_success_at = 'uncommitted'")
            started = time.perf_counter()

            prior = await store.prior_poll(SOURCE, CUSTOMER_ID)

            waited_s = time.perf_counter() - started
            other.execute("ROLLBACK")

    assert prior.state == state
    assert waited_s < sqlite_connection.READER_BUSY_MS / 1000


async def test_a_store_in_memory_reads_through_its_thread(tmp_path: Path) -> None:
    async with opened("sqlite:///:memory:") as store:
        state = PollState(True, last_success_at=T0)
        await store.commit_sync(SOURCE, CUSTOMER_ID, snapshots=[], events=[], state=state)

        assert (await store.prior_poll(SOURCE, CUSTOMER_ID)).state == state
        assert await store.poll_state(SOURCE, CUSTOMER_ID) == state


HOLD_THE_STORE = """
import asyncio, sys
from watcher.store import sqlite

async def main() -> None:
    await sqlite.SqliteStore.open(sys.argv[1], one_process=True)
    print("open", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_a_second_process_on_one_sqlite_store_is_refused_until_the_first_is_gone(
    tmp_path: Path,
) -> None:
    path = tmp_path / "watcher.db"
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLD_THE_STORE, str(path), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), timeout=30) == b"open\n"

        with pytest.raises(
            StoreError, match=f"another order-watcher process \\(pid {holder.pid}\\)"
        ):
            await sqlite.SqliteStore.open(path, one_process=True)
        reading = await sqlite.SqliteStore.open(path, read_only=True)  # `check` still reads
        await reading.close()
    finally:
        holder.kill()
        await holder.wait()

    store = await sqlite.SqliteStore.open(path, one_process=True)  # the lock died with it
    try:
        with pytest.raises(StoreError, match="PostgreSQL store"):
            await sqlite.SqliteStore.open(path, one_process=True)
    finally:
        await store.close()
    again = await sqlite.SqliteStore.open(path, one_process=True)
    await again.close()
