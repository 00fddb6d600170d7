"""What every store makes of its rows the same way, whatever its column types: a snapshot's
columns, and a poll's start (`PriorPoll`) from its digest-bearing rows.

Each store passes how it writes an instant and a flag (SQLite: ISO-8601 text and 0/1;
PostgreSQL: timestamptz and boolean) and how it reads an instant back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from watcher.core import essence
from watcher.core.models import TERMINAL_STATUSES, OrderStatus
from watcher.core.ports import Episode, PollState, PriorPoll, Snapshot
from watcher.store import codec

ORDER_STATUSES = frozenset(OrderStatus)


def snapshot_values(
    source: str,
    customer_id: str,
    snapshot: Snapshot,
    updated_at: object,
    *,
    instant: Callable[[datetime | None], object],
    flag: Callable[[bool], object],
) -> tuple[object, ...]:
    """The columns of `UPSERT_SNAPSHOT`, in its order."""
    order = snapshot.order
    return (
        source,
        customer_id,
        order.order_id,
        snapshot.sequence,
        codec.encode(order),
        updated_at,
        instant(snapshot.status_since),
        flag(snapshot.stuck_reported),
        essence.fingerprint(order),
        snapshot.digest,
        order.status.value,
        order.status_raw,
    )


def prior_poll(
    state: PollState | None,
    known: Iterable[Sequence[Any]],
    *,
    instant: Callable[[Any], datetime],
) -> PriorPoll:
    """`SELECT_KNOWN` rows (order id, digest, status, raw status, since, reported) as a
    `PriorPoll`: the digest of every row, and the episode of each order whose status is not
    terminal. A row that cannot give its episode (no status or no start stored) gives no
    digest either, so that order is read in full."""
    digests: dict[str, str] = {}
    episodes: dict[str, Episode] = {}
    for order_id, digest, status, status_raw, status_since, stuck_reported in known:
        if status in TERMINAL_STATUSES:  # a StrEnum: its members equal their text
            digests[order_id] = digest
            continue
        if status not in ORDER_STATUSES or status_raw is None or status_since is None:
            continue
        digests[order_id] = digest
        episodes[order_id] = Episode(
            status=OrderStatus(status),
            status_raw=status_raw,
            since=instant(status_since),
            reported=bool(stuck_reported),
        )
    return PriorPoll(state, digests, episodes)
