"""Reconcile one customer's fetched orders with their stored snapshots (pure).

For each fetched order: no snapshot yet means a new order (order.created, or silence
during the source's baseline sync); an unchanged essence means nothing to do; otherwise
the snapshot's sequence goes up by one and the changes become events. The result is what
the store writes in one transaction: the new snapshots and the encoded outbox records.

Orders missing from a fetch are left alone: a vendor's window or listing lag is not a
removal, and DESIGN.md has no event for one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from watcher.core import classify, events
from watcher.core.models import Order
from watcher.core.ports import OutboxRecord, Snapshot


@dataclass(frozen=True, slots=True)
class Result:
    snapshots: list[Snapshot] = field(default_factory=list)
    events: list[events.OrderEvent] = field(default_factory=list)
    records: list[OutboxRecord] = field(default_factory=list)


def reconcile(
    orders: Iterable[Order],
    stored: Mapping[str, Snapshot],
    *,
    baseline: bool,
    now: datetime,
) -> Result:
    """New snapshots and outbox records for `orders` against `stored`.

    `baseline` is true during the source's first successful sync of this customer, when
    orders already on the vendor's side are recorded without an order.created each.
    """
    result = Result()
    for order in orders:
        prior = stored.get(order.order_id)
        sequence = 1 if prior is None else prior.sequence + 1
        found = classify.changes(
            prior.order if prior else None, order, sequence=sequence, baseline=baseline
        )
        if prior is not None and not found:
            continue
        result.snapshots.append(Snapshot(order=order, sequence=sequence))
        result.events.extend(found)
        result.records.extend(record(event, now=now) for event in found)
    return result


def record(event: events.OrderEvent, *, now: datetime) -> OutboxRecord:
    return OutboxRecord(
        event_id=events.event_id(event),
        event_type=event.type,
        routing_key=events.routing_key(event),
        body=events.encode(event, detected_at=now),
        created_at=now,
    )
