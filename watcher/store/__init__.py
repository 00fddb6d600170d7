"""Snapshot, poll-state and outbox stores behind the `Store` port, chosen by URL scheme.

    sqlite:///relative/path.db      the embedded default, one file next to the service
    sqlite:////absolute/path.db
    sqlite:///:memory:              nothing survives the process (tests, `demo`)
    postgresql://user:password@host:5432/database   (or postgres://) shared by replicas

`opened(url)` is the async context manager the composition root enters in its exit stack;
`open_store(url)` returns an open store the caller must close. Every store passes the same
contract tests (tests/test_store_contract.py). Error messages never carry the URL's password.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from watcher.core.errors import ConfigError
from watcher.core.ports import Store
from watcher.store import postgres, sqlite
from watcher.store.retention import DEFAULT_RETENTION_S

__all__ = ["open_store", "opened"]


async def open_store(
    url: str,
    *,
    retention_s: float = DEFAULT_RETENTION_S,
    read_only: bool = False,
    one_process: bool = False,
) -> Store:
    """An open store for `url`; `retention_s` is how long published events are kept.

    `read_only` opens an existing store to read it and changes nothing, not even by
    creating it: a missing store is a StoreError saying so. `one_process` is for the
    commands that write: a SQLite store already open so in another process is refused (a
    StoreError saying why); a PostgreSQL store is for any number of them.
    """
    scheme, colon, _ = url.partition(":")
    if not colon:
        raise ConfigError("store.url", "not a URL; the default is sqlite:///order-watcher.db")
    if scheme.lower() == "sqlite":
        path = sqlite.path_from_url(url)
        return await sqlite.SqliteStore.open(
            path, retention_s=retention_s, read_only=read_only, one_process=one_process
        )
    if scheme.lower() in postgres.SCHEMES:
        return await postgres.PostgresStore.open(url, retention_s=retention_s, read_only=read_only)
    raise ConfigError(
        "store.url", f"no store for the scheme {scheme!r}; supported: sqlite, postgresql"
    )


@contextlib.asynccontextmanager
async def opened(
    url: str,
    *,
    retention_s: float = DEFAULT_RETENTION_S,
    read_only: bool = False,
    one_process: bool = False,
) -> AsyncIterator[Store]:
    """The store for `url` (see `open_store`), closed on exit."""
    store = await open_store(
        url, retention_s=retention_s, read_only=read_only, one_process=one_process
    )
    try:
        yield store
    finally:
        await store.close()
