"""The SQLite store: snapshots, poll state and the outbox in one embedded database file.

One connection on a thread of its own serves the process (`sqlite_connection.Worker`).
Each method is one operation on that thread: every statement it runs, its transaction
included, in one hop from the event loop, and operations run one at a time, so a
transaction never interleaves with another and a reader never sees a sync half-written.
The reads of one customer's rows that a poll makes (`prior_poll`, `poll_state`,
`load_priors`) run instead on the event loop's thread, on a second connection
(`Worker.read`): each a read transaction of its own, which sees only committed syncs.
How the connection is opened, configured (WAL, busy timeout) and migrated, and how its
transactions and errors are handled, is `sqlite_connection`'s part; a sync is one of its
transactions.

Layout: datetimes are ISO-8601 UTC text with microseconds, so text order is time order;
event bodies are BLOBs; snapshots are `codec` JSON keyed by (source, order_id), since order
ids are unique per vendor account, with their stuck-order episode (`status_since`,
`stuck_reported`), essence fingerprint and vendor digest in columns of their own. Tables
are STRICT, so a value of the wrong type is refused. Numbered migrations (`schema`) build
the schema and upgrade older databases in place. Published events are kept for
`retention_s`, during which a late duplicate cannot be enqueued again, and pruned at most
hourly as events are marked published.

The poll states of syncs that wrote nothing else (`record_poll`) wait in memory and are
written together (`deferred`); the reads give them as if written.

One process: a SQLite store serves one order-watcher process that writes (`run`, `once`):
two would each think its relay the only one. Opened with `one_process`, the store holds an
exclusive lock (flock) on `<file>.lock` beside it until it closes, or its process dies, and
a second such open is refused, naming the holder's pid. Readers (`order-watcher check`)
take no lock. Several replicas share a PostgreSQL store instead.

Every sqlite3 error is translated into `StoreError` by `sqlite_connection.translated`, with
the cause chained.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, overload

import orjson

from watcher.core import essence
from watcher.core.errors import ConfigError, StoreError
from watcher.core.models import Order
from watcher.core.ports import (
    Fence,
    OutboxRecord,
    OutboxStats,
    PollState,
    PriorPoll,
    Snapshot,
)
from watcher.store import codec, columns, deferred, retention, schema, sqlite_connection
from watcher.store.retention import DEFAULT_RETENTION_S

log = logging.getLogger(__name__)

URL_PREFIX = "sqlite:///"
IN_LIST_CHUNK = 500  # ids per IN (...): well under the 999 parameters of old SQLite builds
T = TypeVar("T")
NOTHING_IN_FLIGHT: frozenset[str] = frozenset()  # shared by every state with none in flight


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
        worker: sqlite_connection.Worker,
        *,
        retention_s: float = DEFAULT_RETENTION_S,
        clock: Callable[[], datetime] = _utcnow,
        lock_fd: int | None = None,
    ) -> None:
        self._worker = worker
        self._lock_fd = lock_fd  # see `one_process`
        self._clock = clock
        self._pruner = retention.Pruner(self.prune, retention_s=retention_s)
        self._unwritten = deferred.DeferredStates(self._write_states)  # see `record_poll`

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        retention_s: float = DEFAULT_RETENTION_S,
        clock: Callable[[], datetime] = _utcnow,
        read_only: bool = False,
        one_process: bool = False,
    ) -> SqliteStore:
        """Open (creating the file, its directories and its schema when missing), or only
        to read an existing store (`read_only`), which any write then fails on.

        `one_process` refuses the store while another process holds it so (the module
        docstring)."""
        worker = sqlite_connection.Worker
        opening = worker.open_read_only if read_only else worker.open
        path = str(path)
        sole = one_process and not read_only and path != sqlite_connection.MEMORY
        lock_fd = _hold(path) if sole else None
        try:
            opened = await opening(path)
        except BaseException:
            if lock_fd is not None:
                os.close(lock_fd)
            raise
        return cls(opened, retention_s=retention_s, clock=clock, lock_fd=lock_fd)

    async def poll_state(self, source: str, customer_id: str) -> PollState | None:
        def read(db: sqlite3.Connection) -> PollState | None:
            row = db.execute(schema.SELECT_STATE, (source, customer_id)).fetchone()
            return None if row is None else _poll_state(*row)

        unwritten = self._unwritten.get(source, customer_id)
        return unwritten or await self._small_read("read the poll state", read)

    async def prior_poll(self, source: str, customer_id: str) -> PriorPoll:
        def read(db: sqlite3.Connection) -> PriorPoll:
            row = db.execute(schema.SELECT_STATE, (source, customer_id)).fetchone()
            known = db.execute(schema.SELECT_KNOWN, (source, customer_id))
            state = None if row is None else _poll_state(*row)
            return columns.prior_poll(state, known, instant=datetime.fromisoformat)

        prior = await self._small_read("read the poll state", read)
        unwritten = self._unwritten.get(source, customer_id)
        return prior if unwritten is None else dataclasses.replace(prior, state=unwritten)

    async def poll_states(self, source: str) -> dict[str, PollState]:
        def read(db: sqlite3.Connection) -> dict[str, PollState]:
            rows = db.execute(schema.SELECT_STATES, (source,))
            return {customer_id: _poll_state(*state) for customer_id, *state in rows}

        return self._unwritten.overlay(source, await self._worker.run("read the schedules", read))

    async def _small_read(self, action: str, read: Callable[[sqlite3.Connection], T]) -> T:
        """A read of one customer's rows: on the event loop's thread when the worker can."""
        if self._worker.reads_inline:
            return self._worker.read(action, read)
        return await self._worker.run(action, read)

    async def record_poll(
        self, source: str, customer_id: str, state: PollState, *, fence: Fence | None = None
    ) -> None:
        """As the port says; a `fence` is ignored: one process holds every lease."""
        if self._worker.closed:
            raise StoreError(f"cannot record the poll of {source}/{customer_id}: closed")
        await self._unwritten.add(source, customer_id, state)

    async def _write_states(self, states: Mapping[deferred.Key, deferred.Waiting]) -> None:
        rows = [(*key, *_state_values(state)) for key, (state, _) in states.items()]

        def write(db: sqlite3.Connection) -> None:
            with sqlite_connection.transaction(db):
                db.executemany(schema.UPSERT_STATE, rows)

        await self._worker.run("record the poll states", write)

    async def known_customers(self, source: str) -> list[str]:
        def read(db: sqlite3.Connection) -> list[str]:
            return [
                customer_id for (customer_id,) in db.execute(schema.SELECT_CUSTOMERS, (source,))
            ]

        return await self._worker.run("read the discovered customers", read)

    async def record_customers(self, source: str, customer_ids: Sequence[str]) -> None:
        rows = [(source, customer_id) for customer_id in dict.fromkeys(customer_ids)]

        def write(db: sqlite3.Connection) -> None:
            with sqlite_connection.transaction(db):
                db.execute(schema.UNLIST_CUSTOMERS, (source,))
                db.executemany(schema.LIST_CUSTOMER, rows)

        await self._worker.run(f"record the customers of {source}", write)

    async def load_snapshots(
        self, source: str, customer_id: str, order_ids: Sequence[str]
    ) -> dict[str, Snapshot]:
        ids = list(dict.fromkeys(order_ids))

        def read(db: sqlite3.Connection) -> list[Any]:
            return _rows_of(db, schema.SELECT_SNAPSHOTS, (source, customer_id), ids)

        rows = await self._worker.run("load snapshots", read)
        return {row[0]: _snapshot(row) for row in rows}

    async def load_priors(
        self, source: str, customer_id: str, orders: Sequence[Order]
    ) -> dict[str, Snapshot]:
        """One query of sequences, episodes and fingerprints, then the bodies of the changed
        orders only, in one operation. A row stored before fingerprints is read whole and its
        fingerprint filled in."""
        fetched = {order.order_id: order for order in orders}

        def read(db: sqlite3.Connection) -> tuple[list[Any], list[Any], set[str]]:
            rows = _rows_of(db, schema.SELECT_PRIORS, (source, customer_id), list(fetched))
            same: list[Any] = []
            changed: list[Any] = []
            for row in rows:  # (order_id, sequence, status_since, stuck_reported, fingerprint)
                (same if row[4] == essence.fingerprint(fetched[row[0]]) else changed).append(row)
            ids = [row[0] for row in changed]
            bodies = _rows_of(db, schema.SELECT_SNAPSHOTS, (source, customer_id), ids)
            return same, bodies, {row[0] for row in changed if row[4] is None}

        same, bodies, unknown = await self._small_read("load snapshots", read)
        found = {
            order_id: Snapshot(
                order=fetched[order_id],
                sequence=sequence,
                status_since=_from_text(status_since),
                stuck_reported=bool(stuck_reported),
            )
            for order_id, sequence, status_since, stuck_reported, _ in same
        }
        stored = {row[0]: _snapshot(row) for row in bodies}
        await self._fill_fingerprints(source, [stored[i] for i in unknown if i in stored])
        return found | stored

    async def _fill_fingerprints(self, source: str, snapshots: Sequence[Snapshot]) -> None:
        """Record the fingerprints of rows stored without one (derived data: one statement
        per row, each atomic alone)."""
        if not snapshots:
            return
        rows = [(essence.fingerprint(s.order), source, s.order.order_id) for s in snapshots]

        def write(db: sqlite3.Connection) -> None:
            db.executemany(schema.FILL_FINGERPRINT, rows)

        await self._worker.run("fill in snapshot fingerprints", write)

    async def commit_sync(
        self,
        source: str,
        customer_id: str,
        *,
        snapshots: Sequence[Snapshot],
        events: Sequence[OutboxRecord],
        state: PollState,
        digests: Mapping[str, str] | None = None,
        fence: Fence | None = None,
    ) -> None:
        """As the port says; a `fence` is ignored: one process holds every lease."""
        updated_at = _to_text(self._clock())
        snapshot_rows = [_snapshot_row(source, customer_id, s, updated_at) for s in snapshots]
        event_rows = [_event_row(event) for event in events]
        digest_rows = [(digest, source, order_id) for order_id, digest in (digests or {}).items()]
        state_row = (source, customer_id, *_state_values(state))
        self._unwritten.discard(source, customer_id)  # this state is newer

        def write(db: sqlite3.Connection) -> None:
            if not snapshot_rows and not event_rows and not digest_rows:
                db.execute(schema.UPSERT_STATE, state_row)  # one statement is atomic alone
                return
            with sqlite_connection.transaction(db):
                db.executemany(schema.UPSERT_SNAPSHOT, snapshot_rows)
                db.executemany(schema.INSERT_EVENT, event_rows)
                db.executemany(schema.SET_DIGEST, digest_rows)
                db.execute(schema.UPSERT_STATE, state_row)

        await self._worker.run(f"commit the sync of {source}/{customer_id}", write)

    async def pending(self, limit: int, *, after: str | None = None) -> list[OutboxRecord]:
        """`seq` is the outbox order: AUTOINCREMENT, and rows are written one operation at a
        time on the store's thread, so a row committed later never gets a smaller one. An
        unknown `after` (pruned, say) finds nothing."""
        if limit <= 0:
            return []
        sql, args = (
            (schema.SELECT_PENDING, (limit,))
            if after is None
            else (schema.SELECT_PENDING_AFTER, (after, limit))
        )

        def read(db: sqlite3.Connection) -> list[Any]:
            return db.execute(sql, args).fetchall()

        rows = await self._worker.run("read the outbox", read)
        return [_outbox_record(*row) for row in rows]

    async def mark_published(self, event_ids: Sequence[str], *, at: datetime) -> None:
        """Mark the events published; every `PRUNE_INTERVAL`, prune those past retention."""
        published_at = _to_text(at)
        ids = list(event_ids)

        def write(db: sqlite3.Connection) -> None:
            # Each chunk is one statement, atomic alone; marking twice changes nothing.
            for chunk in _chunks(ids):
                sql = schema.MARK_PUBLISHED.format(marks=_marks(len(chunk)))
                db.execute(sql, (published_at, *chunk))

        await self._worker.run("mark events published", write)
        await self._pruner.marked(at)

    async def stats(self) -> OutboxStats:
        def read(db: sqlite3.Connection) -> tuple[int, str | None]:
            backlog, oldest = db.execute(schema.STATS).fetchone()
            return backlog, oldest

        backlog, oldest = await self._worker.run("read the outbox statistics", read)
        return OutboxStats(backlog=backlog, oldest_created_at=_from_text(oldest))

    async def prune(self, older_than: datetime) -> int:
        """Delete the events published before `older_than`; how many were deleted."""

        def write(db: sqlite3.Connection) -> int:
            return db.execute(schema.PRUNE, (_to_text(older_than),)).rowcount

        return await self._worker.run("prune the outbox", write)

    async def close(self) -> None:
        """Write the unwritten poll states, then close the connection after the operations
        in hand; closing twice is harmless."""
        if not self._worker.closed:
            await self._unwritten.flush()
        await self._worker.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # lets another process open the store
            self._lock_fd = None


def _hold(path: str) -> int:
    """An open descriptor of `<path>.lock` holding its exclusive lock, with this process's
    pid written in it; a StoreError when another process holds it."""
    lock_path = f"{path}.lock"
    _make_parent_of(lock_path)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot open the lock file {lock_path}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        raise StoreError(
            f"the SQLite store {path} is in use by another order-watcher process"
            f"{f' (pid {holder})' if holder.isdigit() else ''}: a SQLite store serves one "
            'process; to run several, give them one PostgreSQL store (store.url = "postgresql'
            '://...")'
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _make_parent_of(path: str) -> None:
    with contextlib.suppress(OSError):  # opening the lock file then says what is wrong
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _rows_of(
    db: sqlite3.Connection, sql: str, key: tuple[str, str], ids: Sequence[str]
) -> list[Any]:
    """The rows of `sql` (its `{marks}` the ids) for `ids`, a chunk of them at a time."""
    rows: list[Any] = []
    for chunk in _chunks(list(ids)):
        rows += db.execute(sql.format(marks=_marks(len(chunk))), (*key, *chunk)).fetchall()
    return rows


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), IN_LIST_CHUNK):
        yield ids[start : start + IN_LIST_CHUNK]


@functools.cache
def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _snapshot_row(
    source: str, customer_id: str, snapshot: Snapshot, updated_at: str
) -> tuple[object, ...]:
    return columns.snapshot_values(
        source, customer_id, snapshot, updated_at, instant=_to_text, flag=int
    )


def _snapshot(row: Sequence[Any]) -> Snapshot:
    """A `SELECT_SNAPSHOTS` row as a snapshot."""
    order_id, sequence, body, status_since, stuck_reported, digest = row
    return Snapshot(
        order=codec.decode(body, order_id=order_id),
        sequence=sequence,
        status_since=_from_text(status_since),
        stuck_reported=bool(stuck_reported),
        digest=digest,
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
        in_flight=NOTHING_IN_FLIGHT if in_flight == "[]" else frozenset(orjson.loads(in_flight)),
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
