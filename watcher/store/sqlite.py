"""The SQLite store: snapshots, poll state and the outbox in one embedded database file.

One aiosqlite connection serves the process. An asyncio lock gives each operation the
connection to itself, so a transaction never interleaves with another coroutine's statements
and a reader never sees a sync half-written. Other processes on the same file (a second
instance, `order-watcher check`) wait up to `busy_timeout`; writes open with BEGIN IMMEDIATE,
taking the write lock up front instead of failing later on a lock upgrade.

Durability: the file runs in WAL mode with synchronous=NORMAL. A commit appends to the
write-ahead log without an fsync; the log is synced at each checkpoint. A killed process
loses nothing (the operating system holds the written pages) and the file is never corrupted;
only a power cut can undo the transactions since the last checkpoint. That is adequate
because a sync is one transaction: its snapshots and its events vanish together, the next
poll detects the same changes again, and the deterministic event ids let consumers drop an
event the relay had already published. An undone `mark_published` means a re-publish, which
at-least-once delivery allows anyway.

Layout: datetimes are ISO-8601 UTC text with microseconds, so text order is time order;
event bodies are BLOBs; snapshots are `codec` JSON keyed by (source, order_id), since order
ids are unique per vendor account, with their stuck-order episode (`status_since`,
`stuck_reported`) in columns of their own. Tables are STRICT, so a value of the wrong type is
refused. Numbered migrations (`schema`) build the schema and upgrade older databases in
place, recorded in `PRAGMA user_version`. Published events
are kept for `retention_s`, during which a late duplicate cannot be enqueued again, and
pruned at most hourly as events are marked published.

Every sqlite3 error is translated into `StoreError` in `_translated`, with the cause chained.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, overload

import aiosqlite

from watcher.core.errors import ConfigError, StoreError
from watcher.core.ports import OutboxRecord, OutboxStats, PollState, Snapshot
from watcher.store import codec, schema

log = logging.getLogger(__name__)

URL_PREFIX = "sqlite:///"
MEMORY = ":memory:"
DEFAULT_RETENTION_S = 7 * 86_400.0
PRUNE_INTERVAL = timedelta(hours=1)
BUSY_TIMEOUT_MS = 5_000
WAL_RETRY_MS = 50
IN_LIST_CHUNK = 500  # ids per IN (...): well under the 999 parameters of old SQLite builds


def _utcnow() -> datetime:
    return datetime.now(UTC)


def path_from_url(url: str) -> str:
    """The path in `sqlite:///relative.db`, `sqlite:////absolute.db` or `sqlite:///:memory:`."""
    path = url[len(URL_PREFIX) :] if url.startswith(URL_PREFIX) else ""
    if not path or "?" in path:
        raise ConfigError(
            "store.url",
            "a SQLite URL is sqlite:///relative/path.db or sqlite:////absolute/path.db",
        )
    return path


class SqliteStore:
    """Snapshots, poll state and the outbox in one SQLite file (see the module docstring).

    Open with `await SqliteStore.open(path)`. `clock` stamps snapshots' `updated_at`.
    """

    def __init__(
        self,
        db: aiosqlite.Connection,
        *,
        retention_s: float = DEFAULT_RETENTION_S,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._db = db
        self._lock = asyncio.Lock()
        self._closed = False
        self._retention = timedelta(seconds=retention_s)
        self._clock = clock
        self._pruned_at: datetime | None = None

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        retention_s: float = DEFAULT_RETENTION_S,
        clock: Callable[[], datetime] = _utcnow,
    ) -> SqliteStore:
        """Open (creating the file, its directories and its schema when missing)."""
        return cls(await _connect(str(path)), retention_s=retention_s, clock=clock)

    async def poll_state(self, source: str, customer_id: str) -> PollState | None:
        async with self._connection("read the poll state") as db:
            rows = await db.execute_fetchall(schema.SELECT_STATE, (source, customer_id))
        return next((_poll_state(*row) for row in rows), None)

    async def load_snapshots(
        self, source: str, customer_id: str, order_ids: Sequence[str]
    ) -> dict[str, Snapshot]:
        rows: list[Any] = []
        async with self._connection("load snapshots") as db:
            for chunk in _chunks(list(dict.fromkeys(order_ids))):
                sql = schema.SELECT_SNAPSHOTS.format(marks=_marks(len(chunk)))
                rows.extend(await db.execute_fetchall(sql, (source, customer_id, *chunk)))
        return {row[0]: _snapshot(*row) for row in rows}

    async def commit_sync(
        self,
        source: str,
        customer_id: str,
        *,
        snapshots: Sequence[Snapshot],
        events: Sequence[OutboxRecord],
        state: PollState,
    ) -> None:
        updated_at = _to_text(self._clock())
        snapshot_rows = [_snapshot_row(source, customer_id, s, updated_at) for s in snapshots]
        event_rows = [_event_row(event) for event in events]
        state_row = (source, customer_id, *_state_values(state))
        async with self._connection(f"commit the sync of {source}/{customer_id}") as db:
            if not snapshot_rows and not event_rows:
                await db.execute(schema.UPSERT_STATE, state_row)  # one statement is atomic alone
                return
            async with _transaction(db):
                if snapshot_rows:
                    await db.executemany(schema.UPSERT_SNAPSHOT, snapshot_rows)
                if event_rows:
                    await db.executemany(schema.INSERT_EVENT, event_rows)
                await db.execute(schema.UPSERT_STATE, state_row)

    async def pending(self, limit: int) -> list[OutboxRecord]:
        if limit <= 0:
            return []
        async with self._connection("read the outbox") as db:
            rows = await db.execute_fetchall(schema.SELECT_PENDING, (limit,))
        return [_outbox_record(*row) for row in rows]

    async def mark_published(self, event_ids: Sequence[str], *, at: datetime) -> None:
        """Mark the events published; every `PRUNE_INTERVAL`, prune those past retention."""
        published_at = _to_text(at)
        async with self._connection("mark events published") as db:
            # Each chunk is one statement, atomic alone; marking twice changes nothing.
            for chunk in _chunks(list(event_ids)):
                sql = schema.MARK_PUBLISHED.format(marks=_marks(len(chunk)))
                await db.execute(sql, (published_at, *chunk))
        if self._pruned_at is None or at - self._pruned_at >= PRUNE_INTERVAL:
            self._pruned_at = at
            await self._prune_quietly(at - self._retention)

    async def stats(self) -> OutboxStats:
        async with self._connection("read the outbox statistics") as db:
            rows = await db.execute_fetchall(schema.STATS)
        ((backlog, oldest),) = rows
        return OutboxStats(backlog=backlog, oldest_created_at=_from_text(oldest))

    async def prune(self, older_than: datetime) -> int:
        """Delete the events published before `older_than`; how many were deleted."""
        async with self._connection("prune the outbox") as db:
            cursor = await db.execute(schema.PRUNE, (_to_text(older_than),))
        return cursor.rowcount

    async def close(self) -> None:
        """Close the connection after the operation in progress; closing twice is harmless."""
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            with _translated("close"):
                await self._db.close()

    async def _prune_quietly(self, older_than: datetime) -> None:
        # The events are marked already; a failed prune only waits for the next interval.
        try:
            deleted = await self.prune(older_than)
        except StoreError as exc:
            log.warning("outbox prune failed, retrying later: %s", exc)
        else:
            log.debug("pruned %d published events older than %s", deleted, older_than)

    @contextlib.asynccontextmanager
    async def _connection(self, action: str) -> AsyncIterator[aiosqlite.Connection]:
        """The connection to this operation alone, its errors translated."""
        async with self._lock:
            if self._closed:
                raise StoreError(f"cannot {action}: the store is closed")
            with _translated(action):
                yield self._db


@contextlib.contextmanager
def _translated(action: str) -> Iterator[None]:
    """The one place where sqlite3 errors become `StoreError`."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(f"SQLite store cannot {action}: {exc}") from exc


@contextlib.asynccontextmanager
async def _transaction(db: aiosqlite.Connection) -> AsyncIterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception, cancellation included."""
    await db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        await db.rollback()
        raise
    await db.commit()


async def _connect(path: str) -> aiosqlite.Connection:
    if path != MEMORY:
        _make_parent(Path(path))
    with _translated(f"open {path}"):
        db = await aiosqlite.connect(path, isolation_level=None)
    try:
        with _translated(f"prepare {path}"):
            await _configure(db, memory=path == MEMORY)
            await _migrate(db)
    except BaseException:
        await db.close()
        raise
    return db


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        message = f"cannot create the directory {path.parent} for the store: {reason}"
        raise StoreError(message) from exc


async def _configure(db: aiosqlite.Connection, *, memory: bool) -> None:
    await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if not memory:
        mode = await _switch_to_wal(db)
        if mode != "wal":
            log.warning("SQLite could not switch to WAL mode; the journal mode is %s", mode)
    await db.execute("PRAGMA synchronous = NORMAL")
    await db.execute("PRAGMA foreign_keys = ON")


async def _switch_to_wal(db: aiosqlite.Connection) -> str:
    """The journal mode after asking for WAL.

    Switching needs a lock SQLite does not wait for: when two processes open a new file at
    once (the service and `check`, say), the loser is told "locked" at once. It asks again
    for up to `BUSY_TIMEOUT_MS`, like any other locked statement would wait.
    """
    ((mode,),) = await db.execute_fetchall("PRAGMA journal_mode")
    for _ in range(BUSY_TIMEOUT_MS // WAL_RETRY_MS):
        if mode == "wal":
            break
        try:
            ((mode,),) = await db.execute_fetchall("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            await asyncio.sleep(WAL_RETRY_MS / 1000)
    return str(mode)


async def _migrate(db: aiosqlite.Connection) -> None:
    """Bring the schema to `schema.VERSION`, rechecking under the write lock."""
    if await _user_version(db) == schema.VERSION:
        return
    async with _transaction(db):
        version = await _user_version(db)
        if version > schema.VERSION:
            raise StoreError(
                f"the database has schema version {version}; this order-watcher knows "
                f"versions up to {schema.VERSION}: upgrade order-watcher"
            )
        for statement in (s for step in schema.MIGRATIONS[version:] for s in step):
            await db.execute(statement)
        await db.execute(f"PRAGMA user_version = {schema.VERSION}")


async def _user_version(db: aiosqlite.Connection) -> int:
    ((version,),) = await db.execute_fetchall("PRAGMA user_version")
    return int(version)


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), IN_LIST_CHUNK):
        yield ids[start : start + IN_LIST_CHUNK]


@functools.cache
def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _snapshot_row(
    source: str, customer_id: str, snapshot: Snapshot, updated_at: str
) -> tuple[object, ...]:
    order = snapshot.order
    return (
        source,
        customer_id,
        order.order_id,
        snapshot.sequence,
        codec.encode(order),
        updated_at,
        _to_text(snapshot.status_since),
        int(snapshot.stuck_reported),
    )


def _snapshot(
    order_id: str, sequence: int, body: bytes, status_since: str | None, stuck_reported: int
) -> Snapshot:
    return Snapshot(
        order=codec.decode(body, order_id=order_id),
        sequence=sequence,
        status_since=_from_text(status_since),
        stuck_reported=bool(stuck_reported),
    )


def _event_row(event: OutboxRecord) -> tuple[object, ...]:
    created_at = _to_text(event.created_at)
    return (event.event_id, event.event_type, event.routing_key, event.body, created_at)


def _state_values(state: PollState) -> tuple[object, ...]:
    return (
        int(state.baseline_done),
        _to_text(state.last_success_at),
        _to_text(state.last_full_sync_at),
    )


def _poll_state(
    baseline_done: int, last_success_at: str | None, last_full_sync_at: str | None
) -> PollState:
    return PollState(
        baseline_done=bool(baseline_done),
        last_success_at=_from_text(last_success_at),
        last_full_sync_at=_from_text(last_full_sync_at),
    )


def _outbox_record(
    event_id: str, event_type: str, routing_key: str, body: bytes, created_at: str
) -> OutboxRecord:
    return OutboxRecord(
        event_id=event_id,
        event_type=event_type,
        routing_key=routing_key,
        body=body,
        created_at=datetime.fromisoformat(created_at),
    )


@overload
def _to_text(moment: datetime) -> str: ...
@overload
def _to_text(moment: None) -> None: ...
def _to_text(moment: datetime | None) -> str | None:
    """ISO-8601 UTC text with microseconds, so that text order is time order."""
    if moment is None:
        return None
    if moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no timezone; the store keeps UTC instants")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _from_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
