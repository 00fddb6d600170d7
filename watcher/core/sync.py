"""Reconcile one customer's fetched orders with their stored snapshots (pure).

For each fetched order: no snapshot yet means a new order (order.created, or silence
during the source's baseline sync); an unchanged essence means nothing to do; otherwise
the snapshot's sequence goes up by one and the changes become events. The result is what
the store writes in one transaction: the new snapshots and the encoded outbox records.

Every fetched order is also judged for being stuck (`watcher.core.stuck`), changed or not,
since being stuck is about time passing. An order that crosses its status's threshold
raises one order.stuck per episode: its snapshot is written again with `stuck_reported`
set, at the same sequence when nothing in its essence changed. The baseline does not
silence it: an order already stuck at the baseline sync is reported once. A change of
status (normalised or raw) starts a new episode; other changes do not.

Orders missing from a fetch are left alone: a vendor's window or listing lag is not a
removal, and DESIGN.md has no event for one.

Every order is stored with the digest of the vendor's JSON it was read from, when the fetch
gave one (`ports.Listing`): the next listing of the same JSON names it without mapping it,
and it is not reconciled, since the same JSON maps to the same order. Only being stuck
changes with time alone, so an order in flight listed as before is still judged, from the
episode its store row keeps (`stuck.judge_unchanged`, the verdict `judge` would give it).
`offered` leaves out the digest of an order whose order.stuck falls due now: that order is
read in full and reconciled, since its event carries the whole order. An unchanged order
whose digest is new gets it recorded (`Result.digests`) without its snapshot being written
again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import NamedTuple

from watcher.core import classify, events, stuck
from watcher.core.models import Order
from watcher.core.ports import OutboxRecord, PriorPoll, Snapshot

NO_THRESHOLDS: Mapping[str, float] = MappingProxyType({})
NO_DIGESTS: Mapping[str, str] = MappingProxyType({})


class Stuck(NamedTuple):
    """An order past its stuck threshold, and the (normalised) status it is stuck in."""

    order_id: str
    status: str


@dataclass(frozen=True, slots=True)
class Result:
    """What one sync writes, and what it found.

    `stuck` holds every fetched order past its threshold now, reported in this sync or an
    earlier one: the input of the stuck-orders gauge. `digests` are the new digests of
    settled orders whose snapshots are not written again.
    """

    snapshots: list[Snapshot] = field(default_factory=list)
    events: list[events.OrderEvent] = field(default_factory=list)
    records: list[OutboxRecord] = field(default_factory=list)
    stuck: list[Stuck] = field(default_factory=list)
    digests: dict[str, str] = field(default_factory=dict)


def reconcile(
    orders: Iterable[Order],
    stored: Mapping[str, Snapshot],
    *,
    baseline: bool,
    now: datetime,
    thresholds: Mapping[str, float] = NO_THRESHOLDS,
    digests: Mapping[str, str] = NO_DIGESTS,
) -> Result:
    """New snapshots and outbox records for `orders` against `stored`.

    `baseline` is true during the source's first successful sync of this customer, when
    orders already on the vendor's side are recorded without an order.created each; orders
    already stuck then are still reported, once. `thresholds` are the source's stuck
    thresholds in seconds, by raw or normalised status. `digests` are the digests of the
    fetched orders' vendor JSON, by order id (see the module docstring).
    """
    result = Result()
    for order in orders:
        prior = stored.get(order.order_id)
        verdict = stuck.judge(order, prior, thresholds=thresholds, now=now)
        digest = digests.get(order.order_id)
        snapshot, found = _step(order, prior, verdict, baseline=baseline, digest=digest)
        if verdict.stuck:
            result.stuck.append(Stuck(order.order_id, order.status.value))
        if snapshot is None:
            if digest is not None:
                result.digests[order.order_id] = digest
            continue
        result.snapshots.append(snapshot)
        result.events.extend(found)
        result.records.extend(record(event, now=now) for event in found)
    return result


def offered(
    prior: PriorPoll, *, thresholds: Mapping[str, float], now: datetime
) -> Mapping[str, str]:
    """The digests to give the fetch: all of `prior`'s, but those of the orders whose
    order.stuck falls due by `now` (those are read in full, to be reported)."""
    due = {
        order_id
        for order_id, episode in prior.episodes.items()
        if stuck.judge_unchanged(episode, thresholds=thresholds, now=now).report
    }
    if not due:
        return prior.digests
    return {order_id: d for order_id, d in prior.digests.items() if order_id not in due}


def stuck_as_before(
    prior: PriorPoll,
    same: Iterable[str],
    *,
    thresholds: Mapping[str, float],
    now: datetime,
) -> list[Stuck]:
    """The orders listed as before (`same`) that are stuck at `now`, judged from their
    stored episodes (a settled order has none, and is never stuck)."""
    found = []
    for order_id in same:
        episode = prior.episodes.get(order_id)
        if episode is not None and (
            stuck.judge_unchanged(episode, thresholds=thresholds, now=now).stuck
        ):
            found.append(Stuck(order_id, episode.status.value))
    return found


def _step(
    order: Order,
    prior: Snapshot | None,
    verdict: stuck.Verdict,
    *,
    baseline: bool,
    digest: str | None,
) -> tuple[Snapshot | None, list[events.OrderEvent]]:
    """The snapshot to write (None: nothing to write) and the events it raises."""
    sequence = 1 if prior is None else prior.sequence + 1
    found = classify.changes(
        prior.order if prior else None, order, sequence=sequence, baseline=baseline
    )
    if prior is not None and not found:
        sequence = prior.sequence  # nothing in the essence changed
    if verdict.report:
        found = [*found, stuck_event(order, verdict, sequence=sequence)]
    snapshot = Snapshot(
        order=order,
        sequence=sequence,
        status_since=verdict.since,
        stuck_reported=verdict.reported,
        digest=digest,
    )
    if prior is not None and not found and _same_episode_state(prior, snapshot):
        return None, []
    return snapshot, found


def _same_episode_state(prior: Snapshot, snapshot: Snapshot) -> bool:
    """True when the snapshot would store what `prior` says about the episode already."""
    return prior.status_since == snapshot.status_since and (
        prior.stuck_reported == snapshot.stuck_reported
    )


def stuck_event(order: Order, verdict: stuck.Verdict, *, sequence: int) -> events.OrderStuck:
    """The order.stuck event of `order`'s episode, on the snapshot numbered `sequence`."""
    assert verdict.threshold_s is not None
    return events.OrderStuck(
        provider=order.provider,
        source=order.source,
        customer_id=order.customer_id,
        order_id=order.order_id,
        sequence=sequence,
        order=order.model_dump(mode="json"),
        status=events.Value(value=order.status.value, raw=order.status_raw),
        since=verdict.since,
        stuck_for_s=verdict.stuck_for_s,
        threshold_s=verdict.threshold_s,
    )


def record(event: events.OrderEvent, *, now: datetime) -> OutboxRecord:
    return OutboxRecord(
        event_id=events.event_id(event),
        event_type=event.type,
        routing_key=events.routing_key(event),
        body=events.encode(event, detected_at=now),
        created_at=now,
    )
