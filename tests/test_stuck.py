"""stuck: threshold lookup, when an order's status began, and the verdict per order.

Tables of literal orders for the lookup (raw before normalised, terminal statuses never),
for `status_since` (unchanged, changed, first seen, stored before it was kept) and for
`judge`; and hypothesis properties over `sync.reconcile`: no order.stuck ever comes from an
order in a terminal status, and one episode is reported at most once however often it is
synced.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.orders import CREATED_AT, order
from watcher.core import events, stuck, sync
from watcher.core.models import TERMINAL_STATUSES, Order, OrderStatus
from watcher.core.ports import Snapshot

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
EARLIER = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
HOUR = 3600.0
PENDING, PROCESSING, COMPLETED = OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.COMPLETED
FAILED, CANCELLED, UNKNOWN = OrderStatus.FAILED, OrderStatus.CANCELLED, OrderStatus.UNKNOWN


@pytest.mark.parametrize(
    ("status", "raw", "thresholds", "expected"),
    [
        (PENDING, "1002", {}, None),
        (PENDING, "1002", {"pending": 2 * HOUR}, 2 * HOUR),
        (PENDING, "1002", {"1002": 2 * HOUR}, 2 * HOUR),
        (PENDING, "1002", {"pending": HOUR, "1002": 3 * HOUR}, 3 * HOUR),
        (PENDING, "1002", {"processing": HOUR, "1004": HOUR}, None),
        (PROCESSING, "executing", {"pending": HOUR, "processing": 2 * HOUR}, 2 * HOUR),
        (UNKNOWN, "1030", {"unknown": HOUR}, HOUR),
        (UNKNOWN, "1030", {"1030": 0.5 * HOUR, "unknown": HOUR}, 0.5 * HOUR),
        (COMPLETED, "1000", {"completed": HOUR, "1000": HOUR}, None),
        (FAILED, "1004", {"failed": HOUR, "1004": HOUR}, None),
        (CANCELLED, "1008", {"cancelled": HOUR, "1008": HOUR}, None),
    ],
    ids=[
        "no thresholds",
        "normalised",
        "raw",
        "raw beats normalised",
        "other statuses only",
        "processing",
        "unknown",
        "raw unknown beats normalised",
        "completed never",
        "failed never",
        "cancelled never",
    ],
)
def test_threshold_s(
    status: OrderStatus, raw: str, thresholds: dict[str, float], expected: float | None
) -> None:
    assert stuck.threshold_s(order(status=status, status_raw=raw), thresholds) == expected


def stored(
    status: OrderStatus = PENDING,
    raw: str = "1002",
    *,
    status_since: datetime | None = EARLIER,
    stuck_reported: bool = False,
) -> Snapshot:
    """A snapshot at sequence 3 of an order in `status` since `status_since`."""
    return Snapshot(
        order=order(status=status, status_raw=raw),
        sequence=3,
        status_since=status_since,
        stuck_reported=stuck_reported,
    )


@pytest.mark.parametrize(
    ("fetched", "prior", "expected"),
    [
        (order(), stored(), EARLIER),
        (order(line_items=()), stored(), EARLIER),
        (order(status=PROCESSING, status_raw="1002"), stored(), NOW),
        (order(status_raw="1003"), stored(), NOW),
        (order(status=UNKNOWN, status_raw="1040"), stored(UNKNOWN, "1030"), NOW),
        (order(), None, CREATED_AT),
        (order(created_at=None), None, NOW),
        (order(created_at=NOW + timedelta(seconds=1)), None, NOW),
        (order(created_at=NOW), None, NOW),
        (order(created_at=datetime(2024, 5, 1, 9, 30)), None, CREATED_AT),
        (order(), stored(status_since=None), CREATED_AT),
        (order(created_at=None), stored(status_since=None), NOW),
        (order(status=COMPLETED, status_raw="1000"), stored(status_since=None), NOW),
    ],
    ids=[
        "unchanged: the stored since",
        "other fields changed: the stored since",
        "normalised status changed",
        "raw status changed",
        "raw status changed, normalised the same",
        "first seen: created_at",
        "first seen without created_at",
        "first seen, created in the future",
        "first seen, created now",
        "first seen, naive created_at taken as UTC",
        "stored before since was kept: created_at",
        "stored before since was kept, no created_at",
        "stored before since was kept, status changed",
    ],
)
def test_status_since(fetched: Order, prior: Snapshot | None, expected: datetime) -> None:
    assert stuck.status_since(fetched, prior, now=NOW) == expected


def test_status_since_keeps_the_instant_of_another_timezone() -> None:
    local = CREATED_AT.astimezone(timezone(timedelta(hours=-5)))
    since = stuck.status_since(order(created_at=local), None, now=NOW)
    assert since == CREATED_AT


@pytest.mark.parametrize(
    ("fetched", "prior", "thresholds", "expected"),
    [
        (order(), stored(), {}, (False, False, False)),
        (order(), stored(), {"pending": 2 * HOUR + 1}, (False, False, False)),
        (order(), stored(), {"pending": 2 * HOUR}, (True, True, True)),
        (order(), stored(stuck_reported=True), {"pending": HOUR}, (True, False, True)),
        (order(line_items=()), stored(stuck_reported=True), {"pending": HOUR}, (True, False, True)),
        (
            order(status_raw="1003"),
            stored(stuck_reported=True),
            {"pending": 0.1},
            (False, False, False),
        ),
        (
            order(status=COMPLETED, status_raw="1000"),
            stored(),
            {"completed": 1},
            (False, False, False),
        ),
        (order(), None, {"pending": HOUR}, (True, True, True)),
        (order(), None, {"pending": 3 * HOUR}, (False, False, False)),
    ],
    ids=[
        "no threshold",
        "a second short",
        "exactly at the threshold",
        "already reported in this episode",
        "already reported, other fields changed",
        "a new episode has just begun",
        "terminal",
        "first seen, already stuck",
        "first seen, not yet stuck",
    ],
)
def test_judge(
    fetched: Order,
    prior: Snapshot | None,
    thresholds: dict[str, float],
    expected: tuple[bool, bool, bool],
) -> None:
    verdict = stuck.judge(fetched, prior, thresholds=thresholds, now=NOW)
    assert (verdict.stuck, verdict.report, verdict.reported) == expected


def test_a_verdict_says_since_when_and_for_how_long() -> None:
    verdict = stuck.judge(order(), stored(), thresholds={"1002": HOUR}, now=NOW)
    assert verdict == stuck.Verdict(
        since=EARLIER, stuck_for_s=2 * HOUR, threshold_s=HOUR, reported_before=False
    )


RAWS = ("1000", "1002", "1004", "1008", "executing", "x")
statuses = st.sampled_from(list(OrderStatus))
raws = st.sampled_from(RAWS)
orders = st.builds(
    lambda status, raw, created_h: order(
        status=status,
        status_raw=raw,
        created_at=None if created_h is None else NOW - timedelta(hours=created_h),
    ),
    statuses,
    raws,
    st.none() | st.floats(min_value=-5, max_value=100, allow_nan=False),
)
priors = st.none() | st.builds(
    lambda held, sequence, since_h, reported: Snapshot(
        order=held,
        sequence=sequence,
        status_since=None if since_h is None else NOW - timedelta(hours=since_h),
        stuck_reported=reported,
    ),
    orders,
    st.integers(min_value=1, max_value=50),
    st.none() | st.floats(min_value=-5, max_value=100, allow_nan=False),
    st.booleans(),
)
thresholds_s = st.dictionaries(
    st.sampled_from([*(status.value for status in OrderStatus), *RAWS]),
    st.floats(min_value=1, max_value=100 * HOUR, allow_nan=False),
)


def _stuck_events(result: sync.Result) -> list[events.OrderStuck]:
    return [event for event in result.events if isinstance(event, events.OrderStuck)]


@settings(max_examples=300, deadline=None)
@given(orders, priors, thresholds_s, st.booleans())
def test_no_order_stuck_comes_from_a_terminal_status(
    fetched: Order, prior: Snapshot | None, thresholds: dict[str, float], baseline: bool
) -> None:
    held = {} if prior is None else {fetched.order_id: prior}
    result = sync.reconcile([fetched], held, baseline=baseline, now=NOW, thresholds=thresholds)
    terminal = {status.value for status in TERMINAL_STATUSES}
    for event in _stuck_events(result):
        assert event.status.value not in terminal
        assert event.order["status"] not in terminal
    assert all(item.status not in TERMINAL_STATUSES for item in result.stuck)


@settings(max_examples=200, deadline=None)
@given(
    orders,
    priors,
    thresholds_s,
    st.lists(st.floats(min_value=0, max_value=200, allow_nan=False), min_size=1, max_size=5),
)
def test_an_episode_is_reported_at_most_once(
    fetched: Order, prior: Snapshot | None, thresholds: dict[str, float], later_h: list[float]
) -> None:
    held = {} if prior is None else {fetched.order_id: prior}
    reported: list[events.OrderStuck] = []
    for hours in sorted(later_h):
        result = sync.reconcile(
            [fetched], held, baseline=False, now=NOW + timedelta(hours=hours), thresholds=thresholds
        )
        held.update({snapshot.order.order_id: snapshot for snapshot in result.snapshots})
        reported += _stuck_events(result)
    assert len(reported) <= 1
