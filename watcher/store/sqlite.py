"""The SQLite store: snapshots, poll state and the outbox in one embedded database file.

One aiosqlite connection serves the process. An asyncio lock gives each operation the
connection to itself, so a transaction never interleaves with another coroutine's statements
and a reader never sees a sync half-written. How the connection is opened, configured
(WAL, busy timeout) and migrated, and how its transactions and errors are handled, is
`sqlite_connection`'s part; a sync is one of its transactions.

Layout: datetimes are ISO-8601 UTC text with microseconds, so text order is time order;
event bodies are BLOBs; snapshots are `codec` JSON keyed by (source, order_id), since order
ids are unique per vendor account, with their stuck-order episode (`status_since`,
`stuck_reported`) in columns of their own. Tables are STRICT, so a value of the wrong type is
refused. Numbered migrations (`schema`) build the schema and upgrade older databases in
place. Published events are kept for `retention_s`, during which a late duplicate cannot be
enqueued again, and pruned at most hourly as events are marked published.

Every sqlite3 error is translated into `StoreError` by `sqlite_connection.translated`, with
the cause chained.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, overload

import aiosqlite
import orjson

from watcher.core import essence
from watcher.core.errors import ConfigError, StoreError
from watcher.core.models import Order
from watcher.core.ports import OutboxRecord, OutboxStats, PollState, Snapshot
from watcher.store import codec, schema, sqlite_connection

log = logging.getLogger(__name__)

URL_PREFIX = "sqlite:///"
DEFAULT_RETENTION_S = 7 * 86_400.0
PRUNE_INTERVAL = timedelta(hours=1)
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
        read_only: bool = False,
    ) -> SqliteStore:
        """Open (creating the file, its directories and its schema when missing), or only
        to read an existing store (`read_only`), which any write then fails on."""
        connect = sqlite_connection.connect_read_only if read_only else sqlite_connection.connect
        return cls(await connect(str(path)), retention_s=retention_s, clock=clock)

    async def poll_state(self, source: str, customer_id: str) -> PollState | None:
        async with self._connection("read the poll state") as db:
            rows = await db.execute_fetchall(schema.SELECT_STATE, (source, customer_id))
        return next((_poll_state(*row) for row in rows), None)

    async def poll_states(self, source: str) -> dict[str, PollState]:
        async with self._connection("read the schedules") as db:
            rows = await db.execute_fetchall(schema.SELECT_STATES, (source,))
        return {customer_id: _poll_state(*state) for customer_id, *state in rows}

    async def known_customers(self, source: str) -> list[str]:
        async with self._connection("read the discovered customers") as db:
            rows = await db.execute_fetchall(schema.SELECT_CUSTOMERS, (source,))
        return [customer_id for (customer_id,) in rows]

    async def record_customers(self, source: str, customer_ids: Sequence[str]) -> None:
        rows = [(source, customer_id) for customer_id in dict.fromkeys(customer_ids)]
        async with (
            self._connection(f"record the customers of {source}") as db,
            sqlite_connection.transaction(db),
        ):
            await db.execute(schema.UNLIST_CUSTOMERS, (source,))
            await db.executemany(schema.LIST_CUSTOMER, rows)

    async def load_snapshots(
        self, source: str, customer_id: str, order_ids: Sequence[str]
    ) -> dict[str, Snapshot]:
        rows: list[Any] = []
        async with self._connection("load snapshots") as db:
            for chunk in _chunks(list(dict.fromkeys(order_ids))):
                sql = schema.SELECT_SNAPSHOTS.format(marks=_marks(len(chunk)))
                rows.extend(await db.execute_fetchall(sql, (source, customer_id, *chunk)))
        return {row[0]: _snapshot(*row) for row in rows}

    async def load_priors(
        self, source: str, customer_id: str, orders: Sequence[Order]
    ) -> dict[str, Snapshot]:
        """One query of sequences, episodes and fingerprints; the bodies of the changed
        orders only. A row stored before fingerprints is read whole and its fingerprint
        filled in."""
        fetched = {order.order_id: order for order in orders}
        rows: list[Any] = []
        async with self._connection("load snapshots") as db:
            for chunk in _chunks(list(fetched)):
                sql = schema.SELECT_PRIORS.format(marks=_marks(len(chunk)))
                rows.extend(await db.execute_fetchall(sql, (source, customer_id, *chunk)))
        priors: dict[str, Snapshot] = {}
        changed: list[str] = []
        unknown: list[str] = []
        for order_id, sequence, status_since, stuck_reported, fingerprint in rows:
            order = fetched[order_id]
            if fingerprint is None:
                unknown.append(order_id)
            if fingerprint != essence.fingerprint(order):
                changed.append(order_id)
                continue
            priors[order_id] = Snapshot(
                order=order,
                sequence=sequence,
                status_since=_from_text(status_since),
                stuck_reported=bool(stuck_reported),
            )
        if changed:
            stored = await self.load_snapshots(source, customer_id, changed)
            priors |= stored
            await self._fill_fingerprints(source, [stored[i] for i in unknown if i in stored])
        return priors

    async def _fill_fingerprints(self, source: str, snapshots: Sequence[Snapshot]) -> None:
        """Record the fingerprints of rows stored without one (derived data: one statement
        per row, each atomic alone)."""
        if not snapshots:
            return
        rows = [(essence.fingerprint(s.order), source, s.order.order_id) for s in snapshots]
        async with self._connection("fill in snapshot fingerprints") as db:
            await db.executemany(schema.FILL_FINGERPRINT, rows)

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
            async with sqlite_connection.transaction(db):
                if snapshot_rows:
                    await db.executemany(schema.UPSERT_SNAPSHOT, snapshot_rows)
                if event_rows:
                    await db.executemany(schema.INSERT_EVENT, event_rows)
                await db.execute(schema.UPSERT_STATE, state_row)

    async def pending(self, limit: int, *, after: str | None = None) -> list[OutboxRecord]:
        """`seq` is the outbox order: AUTOINCREMENT, and rows are written under the store's
        lock, so a row committed later never gets a smaller one. An unknown `after` (pruned,
        say) finds nothing."""
        if limit <= 0:
            return []
        sql, args = (
            (schema.SELECT_PENDING, (limit,))
            if after is None
            else (schema.SELECT_PENDING_AFTER, (after, limit))
        )
        async with self._connection("read the outbox") as db:
            rows = await db.execute_fetchall(sql, args)
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
            with sqlite_connection.translated("close"):
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
            with sqlite_connection.translated(action):
                yield self._db


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
        essence.fingerprint(order),
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
        _to_text(state.next_due_at),
        orjson.dumps(sorted(state.in_flight)).decode(),
    )


def _poll_state(
    baseline_done: int,
    last_success_at: str | None,
    last_full_sync_at: str | None,
    next_due_at: str | None,
    in_flight: str,
) -> PollState:
    return PollState(
        baseline_done=bool(baseline_done),
        last_success_at=_from_text(last_success_at),
        last_full_sync_at=_from_text(last_full_sync_at),
        next_due_at=_from_text(next_due_at),
        in_flight=frozenset(orjson.loads(in_flight)),
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
