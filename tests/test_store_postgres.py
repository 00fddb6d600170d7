"""What only the PostgreSQL store does, on a real server (`pg_url`, a database per test): its
migrations raced by replicas starting at once, its outbox order under concurrent commits
from several processes' worth of connections, its read-only mode, the errors it gives for
a bad URL, a wrong password and a server that is down (none carrying the password), and
its recovery when the server is back. The rest of its behaviour is the store contract
(tests/test_store_contract.py), which it shares with SQLite.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from tests.orders import CUSTOMER_ID, SOURCE, order
from tests.plugins.postgres import Cluster
from watcher.core.errors import ConfigError, StoreError
from watcher.core.ports import OutboxRecord, PollState, Snapshot
from watcher.store import open_store, postgres, postgres_schema

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SYNCED = PollState(baseline_done=True, last_success_at=T0)
OPEN_AND_CLOSE = """
import asyncio, sys
from watcher.store import postgres

async def main() -> None:
    store = await postgres.PostgresStore.open(sys.argv[1])
    await store.close()

asyncio.run(main())
"""


def event(event_id: str) -> OutboxRecord:
    return OutboxRecord(event_id, "order.status_changed", "adobe_vip.x", b"{}", T0)


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{password}@{host}"))


async def test_three_replicas_starting_at_once_migrate_the_schema_once(pg_url: str) -> None:
    starting = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", OPEN_AND_CLOSE, pg_url, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    results = [await process.communicate() for process in starting]

    assert [process.returncode for process in starting] == [0, 0, 0], results
    db = await asyncpg.connect(pg_url)
    try:
        versions = [row[0] for row in await db.fetch("SELECT version FROM schema_version")]
        tables = {
            row[0]
            for row in await db.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        }
    finally:
        await db.close()
    assert sorted(versions) == list(range(1, postgres_schema.VERSION + 1))
    assert tables == {
        "schema_version",
        "snapshots",
        "outbox",
        "poll_state",
        "customers",
        "leases",
        "replicas",
    }


async def test_a_schema_newer_than_this_release_is_refused(pg_url: str) -> None:
    store = await postgres.PostgresStore.open(pg_url)
    await store.close()
    db = await asyncpg.connect(pg_url)
    try:
        await db.execute("INSERT INTO schema_version (version) VALUES ($1)", 99)
    finally:
        await db.close()

    with pytest.raises(StoreError, match="schema version 99, newer than"):
        await postgres.PostgresStore.open(pg_url)


async def test_events_committed_concurrently_are_read_in_commit_order(pg_url: str) -> None:
    """Writers on several pools commit events at once while a reader goes on `after` the
    last event it read, as the relay does: it misses none of them."""
    writers = [await postgres.PostgresStore.open(pg_url, pool_size=4) for _ in range(3)]
    reader = await postgres.PostgresStore.open(pg_url, pool_size=1)
    expected = {f"e-{w}-{n}-{k}" for w in range(3) for n in range(40) for k in range(3)}
    read: list[str] = []

    async def write(w: int, store: postgres.PostgresStore) -> None:
        async def commit(n: int) -> None:
            events = [event(f"e-{w}-{n}-{k}") for k in range(3)]
            await store.commit_sync(SOURCE, f"c-{w}-{n}", snapshots=[], events=events, state=SYNCED)

        await asyncio.gather(*(commit(n) for n in range(40)))

    async def follow() -> None:
        after = None
        while len(read) < len(expected):
            batch = await reader.pending(50, after=after)
            if batch:
                read.extend(record.event_id for record in batch)
                after = batch[-1].event_id
            else:
                await asyncio.sleep(0.001)

    try:
        following = asyncio.create_task(follow())
        await asyncio.gather(*(write(w, store) for w, store in enumerate(writers)))
        await asyncio.wait_for(following, timeout=20)
        assert len(read) == len(set(read))
        assert set(read) == expected
        assert [r.event_id for r in await reader.pending(1000)] == read
    finally:
        for store in [*writers, reader]:
            await store.close()


async def test_read_only_changes_nothing_and_needs_a_schema(pg_url: str) -> None:
    with pytest.raises(StoreError, match="no schema yet"):
        await open_store(pg_url, read_only=True)

    writable = await open_store(pg_url)
    snapshot = Snapshot(order=order(order_id="a"), sequence=1)
    await writable.commit_sync(
        SOURCE, CUSTOMER_ID, snapshots=[snapshot], events=[event("e1")], state=SYNCED
    )
    await writable.close()

    reading = await open_store(pg_url, read_only=True)
    try:
        assert (await reading.stats()).backlog == 1
        with pytest.raises(StoreError, match="read-only"):
            await reading.mark_published(["e1"], at=T0)
    finally:
        await reading.close()


async def test_postgres_and_postgresql_schemes_open_the_same_store(pg_url: str) -> None:
    short = pg_url.replace("postgresql://", "postgres://", 1)
    first = await open_store(pg_url)
    await first.commit_sync(SOURCE, CUSTOMER_ID, snapshots=[], events=[], state=SYNCED)
    await first.close()

    second = await open_store(short)
    try:
        assert await second.poll_state(SOURCE, CUSTOMER_ID) == SYNCED
    finally:
        await second.close()


async def test_a_wrong_password_is_a_store_error_without_the_password(pg_url: str) -> None:
    wrong = with_password(pg_url, "not-the-Secret-42")

    with pytest.raises(StoreError) as caught:
        await open_store(wrong)

    message = str(caught.value)
    assert "password authentication failed" in message
    assert "not-the-Secret-42" not in message
    assert "127.0.0.1" in message  # where it tried


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://watcher:pa55word@127.0.0.1:notaport/db",
        "postgresql://watcher:pa55word@127.0.0.1:5432/db?sslmode=sometimes",
    ],
    ids=["bad port", "bad option"],
)
async def test_a_malformed_url_is_a_config_error_without_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        await open_store(url)

    assert caught.value.key == "store.url"
    assert "pa55word" not in str(caught.value)


async def test_a_server_that_is_down_fails_each_operation_and_is_used_again_once_back(
    pg_outage_cluster: Cluster,
) -> None:
    pg_outage_cluster.create_database("outage")
    url = pg_outage_cluster.url_for("outage")
    store = await open_store(url)
    try:
        await store.commit_sync(SOURCE, CUSTOMER_ID, snapshots=[], events=[], state=SYNCED)
        pg_outage_cluster.stop()

        with pytest.raises(StoreError, match="PostgreSQL store cannot commit the sync") as down:
            await store.commit_sync(
                SOURCE, CUSTOMER_ID, snapshots=[], events=[event("e1")], state=SYNCED
            )
        assert pg_outage_cluster.password not in str(down.value)

        pg_outage_cluster.start()
        await store.commit_sync(
            SOURCE, CUSTOMER_ID, snapshots=[], events=[event("e1")], state=SYNCED
        )
        assert [record.event_id for record in await store.pending(10)] == ["e1"]
    finally:
        await store.close()
