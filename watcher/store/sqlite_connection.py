"""The SQLite store's connection: opened, configured and migrated; its transactions and errors.

`connect(path)` creates the file and its directories when missing, sets the pragmas and
brings the schema to `schema.VERSION` with the numbered migrations, recorded in
`PRAGMA user_version`; `connect_read_only(path)` (for `order-watcher check`) changes
nothing. Other processes on the same file (a second instance,
`order-watcher check`) wait up to `BUSY_TIMEOUT_MS`; `transaction` opens with BEGIN
IMMEDIATE, taking the write lock up front instead of failing later on a lock upgrade.

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
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiosqlite

from watcher.core.errors import StoreError
from watcher.store import schema

log = logging.getLogger(__name__)

MEMORY = ":memory:"
BUSY_TIMEOUT_MS = 5_000
WAL_RETRY_MS = 50


async def connect(path: str) -> aiosqlite.Connection:
    if path != MEMORY:
        _make_parent(Path(path))
    with translated(f"open {path}"):
        db = await _opening(aiosqlite.connect(path, isolation_level=None))
    try:
        with translated(f"prepare {path}"):
            await _configure(db, memory=path == MEMORY)
            await _migrate(db)
    except BaseException:
        await db.close()
        raise
    return db


async def connect_read_only(path: str) -> aiosqlite.Connection:
    """Open an existing store to read it, creating, migrating and writing nothing.

    A missing file is a StoreError saying so. With no write-ahead log beside the file, no
    process has it open, so it is read as immutable: SQLite then leaves no -wal or -shm file
    behind. With one, the service is running and those files are there already.
    """
    with translated(f"open {path} to read"):
        db = await _opening(aiosqlite.connect(_read_only_uri(path), uri=True, isolation_level=None))
    try:
        with translated(f"read {path}"):
            version = await _user_version(db)
        if version != schema.VERSION:
            raise StoreError(
                f"the store has schema version {version} and this order-watcher version "
                f"{schema.VERSION}; the service migrates an older one when it starts"
            )
    except BaseException:
        await db.close()
        raise
    return db


async def _opening(connection: aiosqlite.Connection) -> aiosqlite.Connection:
    """`connection`, opened; cancelled meanwhile, it still opens and is then closed.

    aiosqlite answers a cancelled open by queueing its worker thread's stop without waiting
    for it, and that thread later reports to an event loop that may be closed by then (a
    traceback on the way out of a Ctrl-C). Opening under a shield and closing keeps the
    thread's last report inside the running loop.
    """
    opening = asyncio.ensure_future(connection)
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await (await opening).close()
        raise


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
    async with transaction(db):
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


@contextlib.contextmanager
def translated(action: str) -> Iterator[None]:
    """The one place where sqlite3 errors become `StoreError`."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(f"SQLite store cannot {action}: {exc}") from exc


@contextlib.asynccontextmanager
async def transaction(db: aiosqlite.Connection) -> AsyncIterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception, cancellation included."""
    await db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        await db.rollback()
        raise
    await db.commit()
