"""The PostgreSQL store: snapshots, poll state and the outbox in one database that any
number of replicas share.

The driver is asyncpg: a pool of connections (`POOL_SIZE`, handed back without the driver's
session reset, `_keep_session`), prepared statements cached per connection, and PostgreSQL's
binary protocol, which hands back `timestamptz` as aware UTC datetimes, `bytea` as bytes and
`text[]` as lists. Each method is one operation on one pooled connection, most of them one
round trip (a poll's start is one query, `SELECT_PRIOR`); a sync is one transaction
(snapshots, digests, poll state and events), so a reader never sees one half-written and a
failed one leaves nothing.

Outbox order. `seq` is an identity column, handed out when a row is inserted; two syncs
committing at once could become visible out of that order, and a relay reading on `after`
the last event it read would then miss the earlier one. So a sync that enqueues events
takes a transaction-level advisory lock (`OUTBOX_LOCK`) just before its inserts and holds
it to its commit: outbox rows commit one sync at a time, in `seq` order. The lock is taken
last, after the snapshots and the poll state, so it is held for the inserts alone.

Migrations (`postgres_schema`) run at open, once, under an advisory lock: replicas starting
together wait for the first. Reading only (`read_only`, for `order-watcher check`) migrates
nothing and sets the session read-only; a database with no schema yet is a StoreError.

The poll states of syncs that wrote nothing else wait in memory and are written together
(`deferred`); published events are pruned after `retention_s` (`retention`).

Leases (`ports.Leases`): rows of `leases`, each current while its holder's `replicas` row
has not expired by the database's clock, so a replica's heartbeat renews all its leases in
one write. A claim takes rows that are free (no holder, or a holder no longer alive) with
`FOR UPDATE SKIP LOCKED`, so replicas claiming at the same moment split the free rows
instead of queueing on them, and bumps each row's fencing token. A sync with a `Fence`
share-locks its lease row first in its transaction and writes nothing (`LeaseLost`) unless
the row still has its holder and token and the holder is alive: a replica that was paused
or cut off past its lease cannot commit over the new holder's work, and no claim can take
the row over until that commit ends.

Errors: every driver or connection failure becomes a `StoreError`, its cause chained, and
no message carries the URL's password (`_redacted`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, overload
from urllib.parse import unquote, urlsplit

import asyncpg

from watcher.core import essence
from watcher.core.errors import ConfigError, LeaseLost, StoreError
from watcher.core.models import Order
from watcher.core.ports import (
    Fence,
    Heartbeat,
    OutboxRecord,
    OutboxStats,
    PollState,
    PriorPoll,
    Snapshot,
)
from watcher.store import codec, columns, deferred, retention
from watcher.store import postgres_schema as schema
from watcher.store.retention import DEFAULT_RETENTION_S

log = logging.getLogger(__name__)

SCHEMES = ("postgresql", "postgres")
POOL_SIZE = 10
CONNECT_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 30.0
NOTHING_IN_FLIGHT: frozenset[str] = frozenset()
# Whatever the driver or the network can raise; all of it is the store failing.
DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)

if TYPE_CHECKING:  # generic only to the type checker
    from asyncpg.pool import PoolConnectionProxy

    Connection = PoolConnectionProxy[asyncpg.Record]
    Pool = asyncpg.Pool[asyncpg.Record]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class PostgresStore:
    """Snapshots, poll state and the outbox in one PostgreSQL database (see the module
    docstring). Open with `await PostgresStore.open(url)`."""

    def __init__(
        self,
        pool: Pool,
        *,
        where: str,
        retention_s: float = DEFAULT_RETENTION_S,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._pool = pool
        self._where = where
        self._clock = clock
        self._closed = False
        self._unwritten = deferred.DeferredStates(self._write_states)  # see `record_poll`
        self._leased: set[tuple[str, str]] = set()  # (source, customer) known to have a row
        self._pruner = retention.Pruner(self.prune, retention_s=retention_s)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        retention_s: float = DEFAULT_RETENTION_S,
        clock: Callable[[], datetime] = _utcnow,
        read_only: bool = False,
        pool_size: int = POOL_SIZE,
    ) -> PostgresStore:
        """Connect and migrate (or, `read_only`, check that the schema is there)."""
        where = describe(url)
        settings = {"application_name": "order-watcher"}
        if read_only:
            settings["default_transaction_read_only"] = "on"
        try:
            pool: Pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=pool_size,
                timeout=CONNECT_TIMEOUT_S,
                command_timeout=COMMAND_TIMEOUT_S,
                server_settings=settings,
                reset=_keep_session,
            )
        except (asyncpg.ClientConfigurationError, ValueError) as exc:  # the URL is unusable
            raise ConfigError("store.url", _redacted(exc, url)) from None
        except DRIVER_ERRORS as exc:
            raise StoreError(
                f"cannot connect to the PostgreSQL store at {where}: {_redacted(exc, url)}"
            ) from exc
        store = cls(pool, where=where, retention_s=retention_s, clock=clock)
        try:
            await (store._check_schema() if read_only else store._migrate())
        except BaseException:
            await pool.close()
            raise
        return store

    async def _migrate(self) -> None:
        async with self._connection("migrate the schema") as db, db.transaction():
            await db.execute(schema.ADVISORY_XACT_LOCK, schema.MIGRATION_LOCK)
            await db.execute(schema.CREATE_VERSION_TABLE)
            version = await db.fetchval(schema.SELECT_VERSION)
            if version > schema.VERSION:
                raise StoreError(
                    f"the PostgreSQL store at {self._where} has schema version {version}, "
                    f"newer than this order-watcher's {schema.VERSION}: upgrade it"
                )
            for number in range(version + 1, schema.VERSION + 1):
                for statement in schema.MIGRATIONS[number - 1]:
                    await db.execute(statement)
                await db.execute(schema.RECORD_VERSION, number)
                log.info("PostgreSQL store at %s: schema migrated to %d", self._where, number)

    async def _check_schema(self) -> None:
        async with self._connection("read the schema version") as db:
            if not await db.fetchval(schema.VERSION_TABLE_EXISTS):
                raise StoreError(f"the PostgreSQL store at {self._where} has no schema yet")

    async def poll_state(self, source: str, customer_id: str) -> PollState | None:
        unwritten = self._unwritten.get(source, customer_id)
        if unwritten is not None:
            return unwritten
        async with self._connection("read the poll state") as db:
            row = await db.fetchrow(schema.SELECT_STATE, source, customer_id)
        return None if row is None else _poll_state(*row)

    async def prior_poll(self, source: str, customer_id: str) -> PriorPoll:
        """One query (`SELECT_PRIOR`): the state and the digests, read together. A state
        waiting to be written stands for the stored one."""
        async with self._connection("read the poll state") as db:
            rows = await db.fetch(schema.SELECT_PRIOR, source, customer_id)
        state = self._unwritten.get(source, customer_id)
        if state is None and rows[0][0] is not None:
            state = _poll_state(*rows[0][:5])
        known = [row[5:] for row in rows if row[5] is not None]
        return columns.prior_poll(state, known, instant=_same)

    async def poll_states(self, source: str) -> dict[str, PollState]:
        async with self._connection("read the schedules") as db:
            rows = await db.fetch(schema.SELECT_STATES, source)
        states = {customer_id: _poll_state(*state) for customer_id, *state in rows}
        return self._unwritten.overlay(source, states)

    async def record_poll(
        self, source: str, customer_id: str, state: PollState, *, fence: Fence | None = None
    ) -> None:
        if self._closed:
            raise StoreError(f"cannot record the poll of {source}/{customer_id}: closed")
        await self._unwritten.add(source, customer_id, state, fence)

    async def _write_states(self, states: Mapping[deferred.Key, deferred.Waiting]) -> None:
        """The states in one transaction; a fenced one only while its lease is current."""
        plain = [
            (*key, *_state_values(state)) for key, (state, fence) in states.items() if not fence
        ]
        fenced = [
            (*key, *_state_values(state), fence.holder, fence.token, fence.lease)
            for key, (state, fence) in states.items()
            if fence
        ]
        async with self._connection("record the poll states") as db, db.transaction():
            if plain:
                await db.executemany(schema.UPSERT_STATE, plain)
            if fenced:
                await db.executemany(schema.UPSERT_STATE_FENCED, fenced)

    async def known_customers(self, source: str) -> list[str]:
        async with self._connection("read the discovered customers") as db:
            return [row[0] for row in await db.fetch(schema.SELECT_CUSTOMERS, source)]

    async def record_customers(self, source: str, customer_ids: Sequence[str]) -> None:
        rows = [(source, customer_id) for customer_id in dict.fromkeys(customer_ids)]
        action = f"record the customers of {source}"
        async with self._connection(action) as db, db.transaction():
            await db.execute(schema.UNLIST_CUSTOMERS, source)
            await db.executemany(schema.LIST_CUSTOMER, rows)

    async def load_snapshots(
        self, source: str, customer_id: str, order_ids: Sequence[str]
    ) -> dict[str, Snapshot]:
        ids = list(dict.fromkeys(order_ids))
        async with self._connection("load snapshots") as db:
            rows = await db.fetch(schema.SELECT_SNAPSHOTS, source, customer_id, ids)
        return {row[0]: _snapshot(row) for row in rows}

    async def load_priors(
        self, source: str, customer_id: str, orders: Sequence[Order]
    ) -> dict[str, Snapshot]:
        """One query: each fetched order's stored sequence and episode, and the stored body
        only where its essence fingerprint differs from the fetched order's."""
        if not orders:
            return {}
        fetched = {order.order_id: order for order in orders}
        fingerprints = [essence.fingerprint(order) for order in fetched.values()]
        async with self._connection("load snapshots") as db:
            rows = await db.fetch(
                schema.SELECT_PRIORS, source, customer_id, list(fetched), fingerprints
            )
        priors: dict[str, Snapshot] = {}
        for order_id, sequence, since, reported, digest, same, body in rows:
            priors[order_id] = Snapshot(
                order=fetched[order_id] if same else codec.decode(body, order_id=order_id),
                sequence=sequence,
                status_since=since,
                stuck_reported=reported,
                digest=None if same else digest,
            )
        return priors

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
        updated_at = _utc(self._clock())
        snapshot_rows = [_snapshot_row(source, customer_id, s, updated_at) for s in snapshots]
        event_rows = [_event_row(event) for event in events]
        digest_rows = [(digest, source, order_id) for order_id, digest in (digests or {}).items()]
        state_row = (source, customer_id, *_state_values(state))
        self._unwritten.discard(source, customer_id)  # this state is newer
        action = f"commit the sync of {source}/{customer_id}"
        async with self._connection(action) as db, db.transaction():
            if fence is not None:
                await self._check_fence(db, source, customer_id, fence)
            if snapshot_rows:
                await db.executemany(schema.UPSERT_SNAPSHOT, snapshot_rows)
            if digest_rows:
                await db.executemany(schema.SET_DIGEST, digest_rows)
            await db.execute(schema.UPSERT_STATE, *state_row)
            if event_rows:
                await db.execute(schema.ADVISORY_XACT_LOCK, schema.OUTBOX_LOCK)
                await db.executemany(schema.INSERT_EVENT, event_rows)

    async def _check_fence(
        self, db: Connection, source: str, customer_id: str, fence: Fence
    ) -> None:
        found = await db.fetchval(
            schema.CHECK_FENCE, source, fence.lease, fence.holder, fence.token
        )
        if found is None:
            raise LeaseLost(
                f"{fence.holder} no longer holds the lease on {source}/{fence.lease} "
                f"(token {fence.token}): the sync of {customer_id} wrote nothing"
            )

    async def heartbeat(self, replica: str, *, ttl_s: float) -> Heartbeat:
        async with self._connection("record the replica's heartbeat") as db:
            continuous: bool = await db.fetchval(schema.HEARTBEAT, replica, ttl_s)
            await db.execute(schema.FORGET_REPLICAS)
            alive: int = await db.fetchval(schema.LIVE_REPLICAS)
        return Heartbeat(alive=alive, continuous=continuous)

    async def claim(
        self, source: str, replica: str, customer_ids: Sequence[str], *, limit: int
    ) -> dict[str, int]:
        if limit <= 0 or not customer_ids:
            return {}
        ids = list(dict.fromkeys(customer_ids))
        new = [customer_id for customer_id in ids if (source, customer_id) not in self._leased]
        async with self._connection(f"claim customers of {source}") as db:
            if new:
                await db.execute(schema.ADD_LEASES, source, new)
                self._leased.update((source, customer_id) for customer_id in new)
            rows = await db.fetch(schema.CLAIM, source, replica, ids, limit)
        return {row[0]: row[1] for row in rows}

    async def still_held(self, source: str, replica: str, held: Mapping[str, int]) -> set[str]:
        if not held:
            return set()
        ids, tokens = list(held), list(held.values())
        async with self._connection(f"read the leases on {source}") as db:
            rows = await db.fetch(schema.STILL_HELD, source, replica, ids, tokens)
        return {row[0] for row in rows}

    async def release(self, source: str, replica: str, held: Mapping[str, int]) -> None:
        if not held:
            return
        ids, tokens = list(held), list(held.values())
        async with self._connection(f"release leases on {source}") as db:
            await db.execute(schema.RELEASE, source, replica, ids, tokens)

    async def leave(self, replica: str) -> None:
        async with self._connection("record the replica's leaving") as db:
            await db.execute(schema.LEAVE, replica)

    async def pending(self, limit: int, *, after: str | None = None) -> list[OutboxRecord]:
        """`seq` is the outbox order, and rows commit in it (the module docstring). An
        unknown `after` (pruned, say) finds nothing."""
        if limit <= 0:
            return []
        async with self._connection("read the outbox") as db:
            if after is None:
                rows = await db.fetch(schema.SELECT_PENDING, limit)
            else:
                rows = await db.fetch(schema.SELECT_PENDING_AFTER, after, limit)
        return [OutboxRecord(*row) for row in rows]

    async def mark_published(self, event_ids: Sequence[str], *, at: datetime) -> None:
        """Mark the events published (one statement: marking twice changes nothing); every
        `retention.PRUNE_INTERVAL`, prune those past retention."""
        published_at = _utc(at)
        async with self._connection("mark events published") as db:
            await db.execute(schema.MARK_PUBLISHED, published_at, list(event_ids))
        await self._pruner.marked(at)

    async def stats(self) -> OutboxStats:
        async with self._connection("read the outbox statistics") as db:
            backlog, oldest = await db.fetchrow(schema.STATS)  # type: ignore[misc]
        return OutboxStats(backlog=backlog, oldest_created_at=oldest)

    async def prune(self, older_than: datetime) -> int:
        """Delete the events published before `older_than`; how many were deleted."""
        async with self._connection("prune the outbox") as db:
            status = await db.execute(schema.PRUNE, _utc(older_than))
        return int(status.rpartition(" ")[2])  # "DELETE <count>"

    async def close(self) -> None:
        """Write the unwritten poll states, then close the pool after the operations in hand;
        closing twice is harmless."""
        if self._closed:
            return
        await self._unwritten.flush()
        self._closed = True
        await self._pool.close()

    @contextlib.asynccontextmanager
    async def _connection(self, action: str) -> AsyncIterator[Connection]:
        """A pooled connection for one operation; the one place driver errors become
        `StoreError`."""
        if self._closed:
            raise StoreError(f"cannot {action}: the store is closed")
        try:
            async with self._pool.acquire() as db:
                yield db
        except DRIVER_ERRORS as exc:
            raise StoreError(f"PostgreSQL store cannot {action}: {exc}") from exc


async def _keep_session(connection: object) -> None:
    """A connection back in the pool is used as it is. The driver's own reset (RESET ALL,
    unlocking advisory locks, UNLISTEN) is one more round trip per operation, for session
    state this store never sets: its advisory locks are transaction-level, it listens to
    nothing, and its settings are the pool's, fixed at connect."""
    del connection


def describe(url: str) -> str:
    """host:port/database of a PostgreSQL URL, to name the store in messages (never the
    password or the user)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        raise ConfigError("store.url", "a PostgreSQL URL is postgresql://user@host:port/db")
    try:
        port = parts.port or 5432
    except ValueError:
        raise ConfigError("store.url", "the PostgreSQL URL's port is not a number") from None
    return f"{parts.hostname or 'localhost'}:{port}/{unquote(parts.path.lstrip('/'))}"


def _redacted(exc: BaseException, url: str) -> str:
    """The error's text with the URL's password (as written, and decoded) taken out."""
    text = str(exc) or type(exc).__name__
    password = urlsplit(url).password
    for secret in filter(None, {password, unquote(password or "")}):
        text = text.replace(secret, "***")
    return text


def _snapshot_row(
    source: str, customer_id: str, snapshot: Snapshot, updated_at: datetime
) -> tuple[object, ...]:
    return columns.snapshot_values(
        source, customer_id, snapshot, updated_at, instant=_utc, flag=bool
    )


def _snapshot(row: asyncpg.Record) -> Snapshot:
    """A `SELECT_SNAPSHOTS` row as a snapshot."""
    order_id, sequence, body, status_since, stuck_reported, digest = row
    return Snapshot(
        order=codec.decode(body, order_id=order_id),
        sequence=sequence,
        status_since=status_since,
        stuck_reported=stuck_reported,
        digest=digest,
    )


def _event_row(event: OutboxRecord) -> tuple[object, ...]:
    created_at = _utc(event.created_at)
    return (event.event_id, event.event_type, event.routing_key, event.body, created_at)


def _state_values(state: PollState) -> tuple[object, ...]:
    return (
        state.baseline_done,
        _utc(state.last_success_at),
        _utc(state.last_full_sync_at),
        _utc(state.next_due_at),
        sorted(state.in_flight),
    )


def _poll_state(
    baseline_done: bool,
    last_success_at: datetime | None,
    last_full_sync_at: datetime | None,
    next_due_at: datetime | None,
    in_flight: list[str],
) -> PollState:
    return PollState(
        baseline_done=baseline_done,
        last_success_at=last_success_at,
        last_full_sync_at=last_full_sync_at,
        next_due_at=next_due_at,
        in_flight=frozenset(in_flight) if in_flight else NOTHING_IN_FLIGHT,
    )


def _same(moment: datetime) -> datetime:
    return moment


@overload
def _utc(moment: datetime) -> datetime: ...
@overload
def _utc(moment: None) -> None: ...
def _utc(moment: datetime | None) -> datetime | None:
    """The instant in UTC; a naive datetime is refused, as the driver would take it for UTC."""
    if moment is None:
        return None
    if moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no timezone; the store keeps UTC instants")
    return moment.astimezone(UTC)
