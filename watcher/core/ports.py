"""The small interfaces that adapters implement and the pipeline depends on.

Only `watcher.app` knows the concrete classes behind them. The records passed across these
ports are plain frozen dataclasses so that every adapter can build and read them cheaply.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from watcher.core.models import Order, OrderStatus


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The last stored view of one order and its per-order sequence number.

    `status_since` is when the order entered its current status (None in snapshots stored
    before it was kept); `stuck_reported` says whether order.stuck was published for the
    time it has spent in that status (see `watcher.core.stuck`). `digest` is the digest of
    the vendor's JSON the order was read from (`Listing`), None when unknown.
    """

    order: Order
    sequence: int
    status_since: datetime | None = None
    stuck_reported: bool = False
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One event waiting to be published. `body` is the serialised CloudEvent."""

    event_id: str
    event_type: str
    routing_key: str
    body: bytes
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PollState:
    """What the poller remembers about one customer of one source.

    `next_due_at` is when the customer is polled next and `in_flight` the ids of its orders
    with the order or a line not yet in a terminal state, which make it `hot` (polled at the
    faster cadence): a restart resumes both.
    """

    baseline_done: bool
    last_success_at: datetime | None = None
    last_full_sync_at: datetime | None = None
    next_due_at: datetime | None = None
    in_flight: frozenset[str] = frozenset()

    @property
    def hot(self) -> bool:
        return bool(self.in_flight)


@dataclass(frozen=True, slots=True)
class Episode:
    """What the store keeps of a stored order's stay in its status: enough to judge it stuck
    (`watcher.core.stuck`) without the order itself."""

    status: OrderStatus
    status_raw: str
    since: datetime
    reported: bool


@dataclass(frozen=True, slots=True)
class PriorPoll:
    """What a customer's poll starts from: its poll state (None before its first sync), the
    stored digests of its orders, and the episode of each order in flight, by order id.

    Every order in flight that has a digest has an episode: the store leaves out the digest
    of one whose episode it cannot give, so that order is read in full (`Listing`)."""

    state: PollState | None
    digests: Mapping[str, str] = field(default_factory=dict)
    episodes: Mapping[str, Episode] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Listing:
    """A customer's orders as one fetch found them, against the digests it was given.

    The digest of an order is a hash of the vendor's own JSON for it (`reply.digest`): the
    same digest means the same JSON, which maps to the same order. `same` holds the ids of
    the orders listed with the digest they were given, none of them read any further;
    `orders` the others, mapped in full; `digests` the digest of each order in `orders`
    that has one.
    """

    orders: list[Order]
    same: frozenset[str] = frozenset()
    digests: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Fence:
    """A replica's lease as a sync commits under it: the holder, the fencing token the lease
    had when claimed, and the customer id the lease is on (the customer itself, or the one
    lease that covers a whole store-wide feed). A commit with a fence writes only while that
    lease is still current (`LeaseLost` otherwise)."""

    holder: str
    token: int
    lease: str


@dataclass(frozen=True, slots=True)
class OutboxStats:
    backlog: int
    oldest_created_at: datetime | None


class Provider(Protocol):
    """Fetches one customer's orders from a vendor, all or nothing.

    Raises a `ProviderError`; a fetch that fails part-way returns nothing at all.
    `since=None` asks for a full re-list; otherwise `since` is the start of the creation
    window the source looks back over. `changed_since`, when given, is the time of the
    customer's last successful sync: vendors that can filter by update time use it (with
    an overlap of their own) to ask only for orders changed since; the others ignore it.
    """

    async def fetch_orders(
        self, customer_id: str, *, since: datetime | None, changed_since: datetime | None = None
    ) -> list[Order]: ...


@runtime_checkable
class ListsByDigest(Protocol):
    """A `Provider` that recognises an order listed exactly as before from the vendor's JSON,
    before mapping it (the fast path of an unchanged order).

    `known` maps order ids to digests; an order listed with its digest there is only named
    in `Listing.same`. Otherwise this is `Provider.fetch_orders`, errors included.
    """

    async def fetch_listing(
        self,
        customer_id: str,
        *,
        since: datetime | None,
        changed_since: datetime | None,
        known: Mapping[str, str],
    ) -> Listing: ...


def by_digest(provider: Provider) -> ListsByDigest:
    """`provider` itself when it recognises orders by digest; else one that lists through its
    `fetch_orders` and maps every order. Asked once, not per fetch."""
    if isinstance(provider, ListsByDigest):
        return provider
    return _AllMapped(provider)


@dataclass(frozen=True, slots=True)
class _AllMapped:
    provider: Provider

    async def fetch_listing(
        self,
        customer_id: str,
        *,
        since: datetime | None,
        changed_since: datetime | None,
        known: Mapping[str, str],
    ) -> Listing:
        orders = await self.provider.fetch_orders(
            customer_id, since=since, changed_since=changed_since
        )
        return Listing(orders)


@runtime_checkable
class CustomerDirectory(Protocol):
    """Lists every customer an account can see (`customers = "all"`), all or nothing."""

    async def list_customers(self) -> list[str]: ...


@runtime_checkable
class StoreFeed(Protocol):
    """Lists orders across a whole store or tenant (`customers = "all"`), page by page.

    Each order carries the customer (or account) it belongs to. `since` and `changed_since`
    mean what they mean to `Provider.fetch_orders`, for every customer at once. A page is
    yielded once read, so a store of any size is never held in memory; a failure raises a
    `ProviderError` part-way, after the pages already yielded.
    """

    def store_orders(
        self, *, since: datetime | None, changed_since: datetime | None
    ) -> AsyncGenerator[list[Order], None]: ...


class SnapshotStore(Protocol):
    async def poll_state(self, source: str, customer_id: str) -> PollState | None: ...

    async def prior_poll(self, source: str, customer_id: str) -> PriorPoll:
        """The customer's poll state and its orders' digests and episodes, read together."""
        ...

    async def poll_states(self, source: str) -> dict[str, PollState]:
        """Every customer's poll state of `source`, by customer id (the schedules)."""
        ...

    async def known_customers(self, source: str) -> list[str]:
        """The customers the last successful discovery of `source` listed."""
        ...

    async def record_customers(self, source: str, customer_ids: Sequence[str]) -> None:
        """Replace the listed customers of `source`; those no longer listed keep their rows."""
        ...

    async def load_snapshots(
        self, source: str, customer_id: str, order_ids: Sequence[str]
    ) -> dict[str, Snapshot]:
        """The stored snapshots of those orders that have one, by order id."""
        ...

    async def load_priors(
        self, source: str, customer_id: str, orders: Sequence[Order]
    ) -> dict[str, Snapshot]:
        """What `load_snapshots` gives for the fetched `orders`, read cheaply: a stored
        snapshot whose essence fingerprint is the fetched order's comes back as the fetched
        order itself, with the stored sequence and stuck episode, its stored body left
        unread (same essence, same events: none)."""
        ...

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
        """Write the new snapshots, their events and the poll state in ONE transaction.

        Events whose id is already in the outbox are ignored, so a repeated sync after a
        crash cannot enqueue an event twice. `digests` are new digests of stored orders whose
        snapshots are not rewritten (`Snapshot.digest`), recorded in the same transaction.
        With a `fence`, the same transaction checks that lease first and raises `LeaseLost`,
        writing nothing, when it is no longer current (a store of one process ignores it).
        """
        ...

    async def record_poll(
        self, source: str, customer_id: str, state: PollState, *, fence: Fence | None = None
    ) -> None:
        """Record the poll state of a sync that wrote nothing else, perhaps later and with
        others: the next reads see it at once, but a crash may lose it (the next poll then
        repeats that one's work). Only for a customer whose baseline is done already: a
        lost first sync would baseline orders created since then silently. With a `fence`,
        it is written only while that lease is current, and dropped otherwise."""
        ...


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A replica's heartbeat: how many replicas are alive, and whether this one had been
    alive without a gap since its last beat (when not, its leases may have been taken)."""

    alive: int
    continuous: bool


@runtime_checkable
class Leases(Protocol):
    """Leases on work (a source's customers, or one named task) shared by the replicas of
    one database, timed by the database's clock. Keys are (source, customer id).

    A lease is held by one replica for as long as that replica is alive: its `heartbeat`
    keeps all of its leases at once, so renewing costs one write whatever their number. A
    replica that misses its heartbeats past their `ttl_s` loses every lease it held; each
    claim of a lease gives it a new, larger fencing token."""

    async def heartbeat(self, replica: str, *, ttl_s: float) -> Heartbeat:
        """Record that `replica` is alive for `ttl_s` more."""
        ...

    async def claim(
        self, source: str, replica: str, customer_ids: Sequence[str], *, limit: int
    ) -> dict[str, int]:
        """Claim up to `limit` of `customer_ids` that no live replica holds (never leased,
        released, or held by a replica no longer alive), skipping any another replica is
        claiming at the same moment: the customers claimed, with their new fencing tokens."""
        ...

    async def still_held(self, source: str, replica: str, held: Mapping[str, int]) -> set[str]:
        """Which of the leases `held` (customer id -> token) are still this replica's: after
        a heartbeat that was not `continuous`, others may have taken some."""
        ...

    async def release(self, source: str, replica: str, held: Mapping[str, int]) -> None:
        """Give up these leases at once, for another replica to claim."""
        ...

    async def leave(self, replica: str) -> None:
        """`replica` stops: it no longer counts as alive."""
        ...


class Outbox(Protocol):
    async def pending(self, limit: int, *, after: str | None = None) -> list[OutboxRecord]:
        """The oldest unpublished events, oldest first; with `after`, only those that come
        after the event of that id in the outbox (the last one a reader has in hand).

        An event committed later always comes after every event already readable, so a
        reader that goes on `after` the last event it read misses nothing new.
        """
        ...

    async def mark_published(self, event_ids: Sequence[str], *, at: datetime) -> None: ...

    async def stats(self) -> OutboxStats: ...


class Store(SnapshotStore, Outbox, Protocol):
    """Snapshots, poll state and the outbox, in one database."""

    async def close(self) -> None: ...
