"""Stuck orders: how long an order has been in its status, and whether that is too long.

An episode is the stretch of time an order spends in one status, normalised and raw
together, starting at `status_since`. An order is stuck once its episode has lasted at
least the threshold for its status, and order.stuck is published once per episode.

Thresholds are seconds keyed by status, as in `[sources.stuck]`: the raw value is looked
up first (Adobe's "1002"), then the normalised one ("pending"). Terminal statuses
(completed, failed, cancelled) are never stuck, whatever the thresholds say.

When an episode started:

    order first seen                          its created_at, when known and not after `now`;
                                              else `now`
    status and raw status unchanged           the stored snapshot's `status_since`
      ... but stored before it was kept       as for an order first seen
    status or raw status changed              `now` (a new episode, not yet reported)

Counting from created_at means an order already stuck when it is first seen, at the
source's baseline sync included, is reported at once. A created_at without a timezone is
taken as UTC. Everything is pure: the caller passes `now`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from watcher.core.models import TERMINAL_STATUSES, Order, OrderStatus
from watcher.core.ports import Episode, Snapshot


@dataclass(frozen=True, slots=True)
class Verdict:
    """One order's episode at `now`.

    `threshold_s` is None when the order's status has no threshold (or is terminal).
    `reported_before` is whether order.stuck was already published for this episode.
    """

    since: datetime
    stuck_for_s: float
    threshold_s: float | None
    reported_before: bool

    @property
    def stuck(self) -> bool:
        return self.threshold_s is not None and self.stuck_for_s >= self.threshold_s

    @property
    def report(self) -> bool:
        """True when order.stuck is due now: stuck, and not reported in this episode."""
        return self.stuck and not self.reported_before

    @property
    def reported(self) -> bool:
        """What the new snapshot stores as `stuck_reported`."""
        return self.reported_before or self.report


def threshold_s(order: Order, thresholds: Mapping[str, float]) -> float | None:
    """The order's threshold: by raw status first, then normalised; None when terminal."""
    return _threshold_of(order.status, order.status_raw, thresholds)


def _threshold_of(
    status: OrderStatus, status_raw: str, thresholds: Mapping[str, float]
) -> float | None:
    if status in TERMINAL_STATUSES:
        return None
    found = thresholds.get(status_raw)
    return thresholds.get(status.value) if found is None else found


def status_since(order: Order, prior: Snapshot | None, *, now: datetime) -> datetime:
    """When `order` entered its current status (see the module docstring's table)."""
    if prior is not None and not _same_status(prior.order, order):
        return now
    if prior is not None and prior.status_since is not None:
        return prior.status_since
    return _first_seen(order, now=now)


def judge(
    order: Order, prior: Snapshot | None, *, thresholds: Mapping[str, float], now: datetime
) -> Verdict:
    """The verdict on `order`, fetched at `now`, whose stored snapshot is `prior`."""
    since = status_since(order, prior, now=now)
    return Verdict(
        since=since,
        stuck_for_s=(now - since).total_seconds(),
        threshold_s=threshold_s(order, thresholds),
        reported_before=prior is not None
        and prior.stuck_reported
        and _same_status(prior.order, order),
    )


def judge_unchanged(episode: Episode, *, thresholds: Mapping[str, float], now: datetime) -> Verdict:
    """The verdict on an order listed exactly as when `episode` was stored: the one `judge`
    gives that order against its stored snapshot (the same status, so the same episode)."""
    return Verdict(
        since=episode.since,
        stuck_for_s=(now - episode.since).total_seconds(),
        threshold_s=_threshold_of(episode.status, episode.status_raw, thresholds),
        reported_before=episode.reported,
    )


def _same_status(before: Order, after: Order) -> bool:
    return (before.status, before.status_raw) == (after.status, after.status_raw)


def _first_seen(order: Order, *, now: datetime) -> datetime:
    created_at = order.created_at
    if created_at is None:
        return now
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    return created_at if created_at <= now else now
