"""The SQLite store's connection: its own thread; opened, configured and migrated; its
transactions and errors.

A `Worker` owns one sqlite3 connection and the one thread that ever touches it. The store
hands it whole operations (`run`): a function that runs every statement it needs, its
transaction included, and returns plain values. So an operation costs one hop between the
event loop and that thread, however many statements it runs (a sync of many snapshots and
events too), and the operations run one at a time in the order they were handed in: a
transaction never interleaves with another and a reader never sees a sync half-written.
An operation runs whole or not at all: a caller cancelled while its operation waits gets
CancelledError and the operation is dropped, unless the thread took it up meanwhile; one
already started still finishes, so no transaction is ever left open.

`Worker.open(path)` creates the file and its directories when missing, sets the pragmas and
brings the schema to `schema.VERSION` with the numbered migrations, recorded in
`PRAGMA user_version`; `Worker.open_read_only(path)` (for `order-watcher check`) changes
nothing. Other processes on the same file (a second instance, `order-watcher check`) wait
up to `BUSY_TIMEOUT_MS`; `transaction` opens with BEGIN IMMEDIATE, taking the write lock up
front instead of failing later on a lock upgrade.

Durability: the file runs in WAL mode with synchronous=NORMAL. A commit appends to the
write-ahead log without an fsync; the log is synced at each checkpoint. A killed process
loses nothing (the operating system holds the written pages) and the file is never corrupted;
only a power cut can undo the transactions since the last checkpoint. That is adequate
because a sync is one transaction: its snapshots and its events vanish together, the next
poll detects the same changes again, and the deterministic event ids let consumers drop an
event the relay had already published. An undone `mark_published` means a re-publish, which
at-least-once delivery allows anyway.

Every sqlite3 error is translated into `StoreError` in `translated`, with the cause chained.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from watcher.core.errors import StoreError
from watcher.store import schema

log = logging.getLogger(__name__)

T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], T]

MEMORY = ":memory:"
BUSY_TIMEOUT_MS = 5_000
READER_BUSY_MS = 250  # the event loop waits for `Worker.read` at most this long
WAL_RETRY_MS = 50


class Worker:
    """One sqlite3 connection on its own thread (see the module docstring)."""

    def __init__(self, thread: _Thread, db: sqlite3.Connection) -> None:
        self._thread = thread
        self._db = db
        self._reader: sqlite3.Connection | None = None
        self._closed = False

    @classmethod
    async def open(cls, path: str) -> Worker:
        """The store at `path`, created and migrated as needed, with a reader for `read`."""
        if path != MEMORY:
            _make_parent(Path(path))
        worker = await cls._started(lambda: _connect(path))
        if path != MEMORY:
            try:
                worker._reader = _connect_reader(path)
            except BaseException:
                await worker.close()
                raise
        return worker

    @classmethod
    async def open_read_only(cls, path: str) -> Worker:
        """An existing store, to read it, creating, migrating and writing nothing.

        A missing file is a StoreError saying so. With no write-ahead log beside the file,
        no process has it open, so it is read as immutable: SQLite then leaves no -wal or
        -shm file behind. With one, the service is running and those files are there
        already.
        """
        uri = _read_only_uri(path)
        return await cls._started(lambda: _connect_read_only(path, uri))

    @classmethod
    async def _started(cls, connect: Callable[[], sqlite3.Connection]) -> Worker:
        """A worker whose thread has opened its connection with `connect`. Cancelled or
        failed meanwhile, the thread still finishes opening and then closes it."""
        thread = _Thread(asyncio.get_running_loop())
        opened: list[sqlite3.Connection] = []

        def opening() -> sqlite3.Connection:
            opened.append(connect())
            return opened[0]

        def close_opened() -> None:
            for db in opened:
                db.close()

        try:
            db = await thread.run(opening)
        except BaseException:
            thread.stop(close_opened)
            raise
        return cls(thread, db)

    @property
    def closed(self) -> bool:
        return self._closed

    async def run(self, action: str, operation: Operation[T]) -> T:
        """`operation(connection)` on the worker's thread, its errors translated for
        `action` ("cannot {action}")."""
        if self._closed:
            raise StoreError(f"cannot {action}: the store is closed")

        def translated_operation() -> T:
            with translated(action):
                return operation(self._db)

        return await self._thread.run(translated_operation)

    def read(self, action: str, operation: Operation[T]) -> T:
        """`operation(connection)` at once, on the event loop's own thread, for a read of a
        few rows by index: cheaper than the round trip to the worker's thread (which costs
        more CPU than such a read when the two threads run on different cores).

        It runs on a second connection, which in WAL mode never waits for the writer and
        sees every transaction committed before it began. Without one (`:memory:`, a
        journal mode other than WAL, a read-only worker) it is an error to call this:
        see `reads_inline`."""
        if self._closed:
            raise StoreError(f"cannot {action}: the store is closed")
        assert self._reader is not None, "check reads_inline first"
        with translated(action):
            return operation(self._reader)

    @property
    def reads_inline(self) -> bool:
        return self._reader is not None

    async def close(self) -> None:
        """Close after the operations handed in already; closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        if self._reader is not None:
            self._reader.close()

        def close() -> None:
            with translated("close"):
                self._db.close()

        try:
            await asyncio.shield(self._thread.run(close))
        finally:
            self._thread.stop()


class _Thread:
    """A thread of its own that runs functions one at a time, in the order handed in, and
    hands their results back to the event loop.

    Cheaper than an executor's future per call: a result waits in `_finished` and the loop
    is woken once for every result finished meanwhile, not once each (a no-op round trip
    measured ~25 us of CPU against ~85 us through `ThreadPoolExecutor` and `wrap_future`).
    A call cancelled before the thread takes it up is dropped; one taken up finishes.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._finished: collections.deque[_Job] = collections.deque()
        self._lock = threading.Lock()
        self._wake_pending = False
        self._thread = threading.Thread(target=self._serve, name="sqlite", daemon=True)
        self._thread.start()

    async def run(self, function: Callable[[], T]) -> T:
        waiter: asyncio.Future[T] = self._loop.create_future()
        job = _Job(function, waiter)
        waiter.add_done_callback(lambda _: self._cancel_unless_started(job))
        self._jobs.put(job)
        return await waiter

    def stop(self, last: Callable[[], object] | None = None) -> None:
        """End the thread after the calls handed in, running `last` (if any) first."""
        if last is not None:
            self._jobs.put(_Job(last))
        self._jobs.put(None)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            with self._lock:
                if job.cancelled:
                    continue
                job.started = True
            try:
                job.result = job.function()
            except BaseException as exc:  # handed to the caller, whatever it is
                job.error = exc
            if job.waiter is None:
                continue
            with self._lock:
                self._finished.append(job)
                if self._wake_pending:
                    continue
                self._wake_pending = True
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                self._loop.call_soon_threadsafe(self._hand_back)

    def _cancel_unless_started(self, job: _Job) -> None:
        assert job.waiter is not None
        if job.waiter.cancelled():
            with self._lock:
                job.cancelled = not job.started

    def _hand_back(self) -> None:
        with self._lock:
            finished = list(self._finished)
            self._finished.clear()
            self._wake_pending = False
        for job in finished:
            assert job.waiter is not None
            if job.waiter.cancelled():
                continue
            if job.error is not None:
                job.waiter.set_exception(job.error)
            else:
                job.waiter.set_result(job.result)


class _Job:
    """One call handed to a `_Thread`; `started` and `cancelled` change under the thread's lock."""

    __slots__ = ("cancelled", "error", "function", "result", "started", "waiter")

    def __init__(
        self, function: Callable[[], Any], waiter: asyncio.Future[Any] | None = None
    ) -> None:
        self.function = function
        self.waiter = waiter
        self.result: Any = None
        self.error: BaseException | None = None
        self.started = False
        self.cancelled = False


def _connect(path: str) -> sqlite3.Connection:
    with translated(f"open {path}"):
        db = sqlite3.connect(path, isolation_level=None)
    try:
        with translated(f"prepare {path}"):
            _configure(db, memory=path == MEMORY)
            _migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def _connect_reader(path: str) -> sqlite3.Connection | None:
    """The second connection `Worker.read` uses, or None unless the file is in WAL mode
    (otherwise a reader would hold the writer up). It waits at most `READER_BUSY_MS`."""
    with translated(f"open {path} to read"):
        db = sqlite3.connect(path, isolation_level=None)
        db.execute(f"PRAGMA busy_timeout = {READER_BUSY_MS}")
        db.execute("PRAGMA query_only = ON")
        (mode,) = db.execute("PRAGMA journal_mode").fetchone()
    if mode != "wal":
        db.close()
        return None
    return db


def _connect_read_only(path: str, uri: str) -> sqlite3.Connection:
    with translated(f"open {path} to read"):
        db = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        with translated(f"read {path}"):
            version = _user_version(db)
        if version != schema.VERSION:
            raise StoreError(
                f"the store has schema version {version} and this order-watcher version "
                f"{schema.VERSION}; the service migrates an older one when it starts"
            )
    except BaseException:
        db.close()
        raise
    return db


def _read_only_uri(path: str) -> str:
    if path == MEMORY:
        raise StoreError("an in-memory store holds nothing to read")
    file = Path(path)
    if not file.is_file():
        raise StoreError(f"no store at {path}; the service creates it when it first runs")
    quiet = "" if Path(f"{path}-wal").exists() else "&immutable=1"
    return f"{file.resolve().as_uri()}?mode=ro{quiet}"


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        message = f"cannot create the directory {path.parent} for the store: {reason}"
        raise StoreError(message) from exc


def _configure(db: sqlite3.Connection, *, memory: bool) -> None:
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if not memory:
        mode = _switch_to_wal(db)
        if mode != "wal":
            log.warning("SQLite could not switch to WAL mode; the journal mode is %s", mode)
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA foreign_keys = ON")


def _switch_to_wal(db: sqlite3.Connection) -> str:
    """The journal mode after asking for WAL.

    Switching needs a lock SQLite does not wait for: when two processes open a new file at
    once (the service and `check`, say), the loser is told "locked" at once. It asks again
    for up to `BUSY_TIMEOUT_MS`, like any other locked statement would wait.
    """
    ((mode,),) = db.execute("PRAGMA journal_mode").fetchall()
    for _ in range(BUSY_TIMEOUT_MS // WAL_RETRY_MS):
        if mode == "wal":
            break
        try:
            ((mode,),) = db.execute("PRAGMA journal_mode = WAL").fetchall()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(WAL_RETRY_MS / 1000)  # on the worker's thread, not the event loop's
    return str(mode)


def _migrate(db: sqlite3.Connection) -> None:
    """Bring the schema to `schema.VERSION`, rechecking under the write lock."""
    if _user_version(db) == schema.VERSION:
        return
    with transaction(db):
        version = _user_version(db)
        if version > schema.VERSION:
            raise StoreError(
                f"the database has schema version {version}; this order-watcher knows "
                f"versions up to {schema.VERSION}: upgrade order-watcher"
            )
        for statement in (s for step in schema.MIGRATIONS[version:] for s in step):
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {schema.VERSION}")


def _user_version(db: sqlite3.Connection) -> int:
    ((version,),) = db.execute("PRAGMA user_version").fetchall()
    return int(version)


@contextlib.contextmanager
def translated(action: str) -> Iterator[None]:
    """The one place where sqlite3 errors become `StoreError`."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(f"SQLite store cannot {action}: {exc}") from exc


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.rollback()
        raise
    db.commit()
