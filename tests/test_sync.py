"""sync.reconcile: fetched orders against stored snapshots, into snapshots and outbox records.

New orders (with and without the baseline), changed and unchanged orders, several at
once, orders missing from a fetch; and the outbox records: ids, types and routing keys
that match their events, bodies that decode to the envelopes detected at `now`.

Stuck orders, synced again and again on a controllable `now`: not stuck before the
threshold, exactly one order.stuck when it is crossed and none after while the episode
lasts, a new episode (and id) after a status change but not after a quantity change,
terminal orders never, raw thresholds before normalised ones, stuck orders at the baseline,
snapshots stored before episodes were kept, and the event's envelope.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import orjson

from tests.orders import CREATED_AT, ORDER_ID, line, order
from watcher.core import events, sync
from watcher.core.models import Order, OrderStatus
from watcher.core.ports import Snapshot

NOW = datetime(2024, 5, 2, 14, 3, 7, tzinfo=UTC)
SINCE = datetime(2024, 5, 2, 8, 0, tzinfo=UTC)
COMPLETED, PROCESSING = OrderStatus.COMPLETED, OrderStatus.PROCESSING
HOUR = timedelta(hours=1)


def reconcile(
    orders: list[Order], stored: dict[str, Snapshot], *, baseline: bool = False
) -> sync.Result:
    return sync.reconcile(orders, stored, baseline=baseline, now=NOW)


def held(stored: Order, sequence: int, *, since: datetime | None = SINCE) -> dict[str, Snapshot]:
    """`stored` as its snapshot numbered `sequence`, in its status since `since`."""
    return {stored.order_id: Snapshot(order=stored, sequence=sequence, status_since=since)}


def test_a_new_order_is_created_with_sequence_1() -> None:
    new = order()
    result = reconcile([new], {})
    assert result.snapshots == [Snapshot(order=new, sequence=1, status_since=CREATED_AT)]
    assert [(e.type, e.sequence, e.order_id) for e in result.events] == [
        ("order.created", 1, "5123456789")
    ]
    (record,) = result.records
    assert record.routing_key == "adobe_vip.order.created"
    assert record.event_type == "order.created"
    assert record.event_id == events.event_id(result.events[0])
    assert record.created_at == NOW


def test_a_new_order_during_the_baseline_is_stored_silently() -> None:
    new = order()
    result = reconcile([new], {}, baseline=True)
    assert result.snapshots == [Snapshot(order=new, sequence=1, status_since=CREATED_AT)]
    assert result.events == []
    assert result.records == []


def test_a_changed_order_takes_the_next_sequence() -> None:
    before = order()
    after = order(status=COMPLETED, status_raw="1000", line_items=(line("1", quantity=12),))
    result = reconcile([after], held(before, 4))
    assert result.snapshots == [Snapshot(order=after, sequence=5, status_since=NOW)]
    assert [(e.type, e.affected_line(), e.sequence) for e in result.events] == [
        ("order.line_item.quantity_changed", "1", 5),
        ("order.status_changed", None, 5),
    ]
    assert [r.routing_key for r in result.records] == [
        "adobe_vip.order.line_item.quantity_changed",
        "adobe_vip.order.status_changed.completed",
    ]
    assert [r.event_id for r in result.records] == [events.event_id(e) for e in result.events]
    assert [r.event_type for r in result.records] == [e.type for e in result.events]


def test_the_baseline_does_not_silence_changes_of_stored_orders() -> None:
    before = order()
    after = order(status=COMPLETED, status_raw="1000")
    result = reconcile([after], held(before, 1), baseline=True)
    assert [r.routing_key for r in result.records] == ["adobe_vip.order.status_changed.completed"]
    assert result.snapshots == [Snapshot(order=after, sequence=2, status_since=NOW)]


def test_an_unchanged_order_writes_nothing() -> None:
    stored = order()
    result = reconcile([order()], held(stored, 4))
    assert result == sync.Result()


def test_a_change_outside_the_essence_writes_nothing() -> None:
    stored = order()
    fetched = order(reference="PO-9999", line_items=(line("1", offer="65322651CA01A12"),))
    result = reconcile([fetched], held(stored, 4))
    assert result.snapshots == []
    assert result.records == []


def test_an_order_missing_from_the_fetch_is_left_alone() -> None:
    stored = order()
    assert reconcile([], held(stored, 4)) == sync.Result()


def test_several_orders_at_once_in_fetch_order() -> None:
    new = order(order_id="1000000001")
    changed_before = order(order_id="1000000002")
    changed_after = order(order_id="1000000002", payment="paid", payment_raw="PAID")
    unchanged = order(order_id="1000000003")
    stored = held(changed_before, 7) | held(unchanged, 2)
    result = reconcile([new, changed_after, unchanged], stored)
    assert result.snapshots == [
        Snapshot(order=new, sequence=1, status_since=CREATED_AT),
        Snapshot(order=changed_after, sequence=8, status_since=SINCE),
    ]
    assert [(r.routing_key, orjson.loads(r.body)["subject"]) for r in result.records] == [
        ("adobe_vip.order.created", "adobe_vip/9876543210/1000000001"),
        ("adobe_vip.order.payment_changed.paid", "adobe_vip/9876543210/1000000002"),
    ]
    assert len({r.event_id for r in result.records}) == 2


def test_records_decode_to_the_envelopes_detected_now() -> None:
    before = order(line_items=(line("1"), line("2")))
    after = order(status=COMPLETED, status_raw="1000", line_items=(line("1"), line("3")))
    result = reconcile([after], held(before, 1))
    assert len(result.records) == 3
    for record, event in zip(result.records, result.events, strict=True):
        body = orjson.loads(record.body)
        assert body == events.envelope(event, detected_at=NOW)
        assert body["time"] == "2024-05-02T14:03:07Z"
        assert body["id"] == record.event_id
        assert body["type"] == record.event_type
        assert body["data"]["sequence"] == 2
        assert body["data"]["order"] == after.model_dump(mode="json")


def test_a_repeated_reconcile_gives_the_same_records() -> None:
    before = order()
    after = order(status=COMPLETED, status_raw="1000")
    assert reconcile([after], held(before, 1)) == reconcile([after], held(before, 1))


def test_record() -> None:
    event = events.OrderCreated(
        provider="adobe_vip",
        source="adobe-prod",
        customer_id="9876543210",
        order_id="5123456789",
        sequence=1,
        order=order().model_dump(mode="json"),
    )
    record = sync.record(event, now=NOW)
    assert record.event_id == events.event_id(event)
    assert record.event_type == "order.created"
    assert record.routing_key == "adobe_vip.order.created"
    assert record.body == events.encode(event, detected_at=NOW)
    assert record.created_at == NOW


def test_a_snapshot_stored_before_episodes_were_kept_is_written_again_once() -> None:
    stored = order()
    legacy = held(stored, 4, since=None)
    result = reconcile([order()], legacy)
    assert result.snapshots == [Snapshot(order=stored, sequence=4, status_since=CREATED_AT)]
    assert result.events == []
    assert reconcile([order()], {stored.order_id: result.snapshots[0]}) == sync.Result()


class Ledger:
    """A customer's snapshots as a store keeps them, synced at chosen moments."""

    def __init__(self, thresholds: Mapping[str, float], *, start: datetime = CREATED_AT) -> None:
        self.thresholds = thresholds
        self.start = start
        self.stored: dict[str, Snapshot] = {}

    def sync(self, *orders: Order, after: timedelta, baseline: bool = False) -> sync.Result:
        """Reconcile `orders` at `start + after` and keep the snapshots written."""
        result = sync.reconcile(
            orders,
            self.stored,
            baseline=baseline,
            now=self.start + after,
            thresholds=self.thresholds,
        )
        self.stored.update({s.order.order_id: s for s in result.snapshots})
        return result

    def snapshot(self, order_id: str = "5123456789") -> Snapshot:
        return self.stored[order_id]


def stuck_events(result: sync.Result) -> list[events.OrderStuck]:
    return [event for event in result.events if isinstance(event, events.OrderStuck)]


def types(result: sync.Result) -> list[str]:
    return [event.type for event in result.events]


PENDING_2H = {"pending": 2 * 3600.0}


def test_an_order_is_not_stuck_before_its_threshold() -> None:
    ledger = Ledger(PENDING_2H)
    assert types(ledger.sync(order(), after=timedelta(minutes=10))) == ["order.created"]

    result = ledger.sync(order(), after=2 * HOUR - timedelta(seconds=1))

    assert result == sync.Result()
    assert ledger.snapshot() == Snapshot(order=order(), sequence=1, status_since=CREATED_AT)


def test_crossing_the_threshold_reports_once_at_the_same_sequence() -> None:
    ledger = Ledger(PENDING_2H)
    ledger.sync(order(), after=timedelta(minutes=10))

    crossed = ledger.sync(order(), after=2 * HOUR)

    assert types(crossed) == ["order.stuck"]
    assert crossed.stuck == [sync.Stuck(ORDER_ID, "pending")]
    assert crossed.snapshots == [
        Snapshot(order=order(), sequence=1, status_since=CREATED_AT, stuck_reported=True)
    ]
    for hours in (3, 30):
        later = ledger.sync(order(), after=hours * HOUR)
        assert (later.events, later.snapshots, later.stuck) == (
            [],
            [],
            [sync.Stuck(ORDER_ID, "pending")],
        )


def test_the_stuck_event_says_since_when_and_for_how_long() -> None:
    ledger = Ledger(PENDING_2H)
    ledger.sync(order(), after=timedelta(minutes=10))

    result = ledger.sync(order(), after=2 * HOUR + timedelta(seconds=30))

    (event,) = result.events
    (outbox,) = result.records
    assert outbox.routing_key == "adobe_vip.order.stuck"
    assert outbox.event_type == "order.stuck"
    assert outbox.created_at == CREATED_AT + 2 * HOUR + timedelta(seconds=30)
    assert orjson.loads(outbox.body) == {
        "specversion": "1.0",
        "id": events.event_id(event),
        "source": "order-watcher/adobe-prod",
        "type": "order.stuck",
        "subject": "adobe_vip/9876543210/5123456789",
        "time": "2024-05-01T11:30:30Z",
        "datacontenttype": "application/json",
        "dataschema": "urn:order-watcher:schemas/order.stuck/v1.json",
        "data": {
            "provider": "adobe_vip",
            "source": "adobe-prod",
            "customer_id": "9876543210",
            "order_id": "5123456789",
            "sequence": 1,
            "order": order().model_dump(mode="json"),
            "status": {"value": "pending", "raw": "1002"},
            "since": "2024-05-01T09:30:00Z",
            "stuck_for_s": 7230.0,
            "threshold_s": 7200.0,
        },
    }
    assert outbox.event_id == events.event_id(event)


def test_a_status_change_ends_the_episode_and_a_new_one_gets_a_new_id() -> None:
    ledger = Ledger({"pending": 2 * 3600.0, "processing": 3600.0})
    ledger.sync(order(), after=timedelta(minutes=10))
    (first,) = stuck_events(ledger.sync(order(), after=2 * HOUR))
    processing = order(status=PROCESSING, status_raw="1001")

    moved = ledger.sync(processing, after=4 * HOUR)

    assert types(moved) == ["order.status_changed"]
    assert moved.stuck == []
    assert ledger.snapshot() == Snapshot(
        order=processing, sequence=2, status_since=CREATED_AT + 4 * HOUR
    )
    assert ledger.sync(processing, after=5 * HOUR - timedelta(seconds=1)) == sync.Result()
    (second,) = stuck_events(ledger.sync(processing, after=5 * HOUR))
    assert (second.since, second.sequence, second.status.raw) == (CREATED_AT + 4 * HOUR, 2, "1001")
    assert events.event_id(second) != events.event_id(first)

    ledger.sync(order(), after=6 * HOUR)
    (third,) = stuck_events(ledger.sync(order(), after=8 * HOUR))
    assert (third.since, third.sequence) == (CREATED_AT + 6 * HOUR, 3)
    assert len({events.event_id(e) for e in (first, second, third)}) == 3


def test_a_quantity_change_while_stuck_does_not_start_a_new_episode() -> None:
    ledger = Ledger(PENDING_2H)
    ledger.sync(order(), after=timedelta(minutes=10))
    ledger.sync(order(), after=2 * HOUR)
    more_seats = order(line_items=(line("1", quantity=12),))

    result = ledger.sync(more_seats, after=3 * HOUR)

    assert types(result) == ["order.line_item.quantity_changed"]
    assert result.stuck == [sync.Stuck(more_seats.order_id, "pending")]
    assert result.snapshots == [
        Snapshot(order=more_seats, sequence=2, status_since=CREATED_AT, stuck_reported=True)
    ]
    assert ledger.sync(more_seats, after=9 * HOUR).events == []


def test_a_change_and_the_crossing_in_one_sync_share_the_new_sequence() -> None:
    ledger = Ledger(PENDING_2H)
    ledger.sync(order(), after=timedelta(minutes=10))
    more_seats = order(line_items=(line("1", quantity=12),))

    result = ledger.sync(more_seats, after=2 * HOUR)

    assert [(e.type, e.sequence) for e in result.events] == [
        ("order.line_item.quantity_changed", 2),
        ("order.stuck", 2),
    ]
    assert [(s.sequence, s.stuck_reported) for s in result.snapshots] == [(2, True)]


def test_terminal_orders_are_never_stuck() -> None:
    thresholds = {status.value: 1.0 for status in OrderStatus} | {"1000": 1.0, "1004": 1.0}
    ledger = Ledger(thresholds)
    finished = [
        order(order_id="1", status=COMPLETED, status_raw="1000"),
        order(order_id="2", status=OrderStatus.FAILED, status_raw="1004"),
        order(order_id="3", status=OrderStatus.CANCELLED, status_raw="1008"),
    ]
    ledger.sync(*finished, after=timedelta(minutes=10))

    result = ledger.sync(*finished, after=1000 * HOUR)

    assert result == sync.Result()


def test_a_raw_threshold_beats_the_normalised_one() -> None:
    ledger = Ledger({"pending": 3600.0, "1002": 3 * 3600.0})
    ledger.sync(order(), after=timedelta(minutes=10))

    assert ledger.sync(order(), after=2 * HOUR).events == []
    (event,) = stuck_events(ledger.sync(order(), after=3 * HOUR))
    assert event.threshold_s == 3 * 3600.0


def test_an_order_already_stuck_at_the_baseline_is_reported_once() -> None:
    ledger = Ledger(PENDING_2H, start=CREATED_AT + 72 * HOUR)
    others = order(order_id="5123456790", created_at=CREATED_AT + 71.5 * HOUR)

    result = ledger.sync(order(), others, after=timedelta(0), baseline=True)

    (event,) = result.events
    assert isinstance(event, events.OrderStuck)
    assert (event.order_id, event.since, event.stuck_for_s) == (
        "5123456789",
        CREATED_AT,
        72 * 3600.0,
    )
    assert result.stuck == [sync.Stuck(ORDER_ID, "pending")]
    assert [(s.order.order_id, s.sequence, s.stuck_reported) for s in result.snapshots] == [
        ("5123456789", 1, True),
        ("5123456790", 1, False),
    ]
    assert ledger.sync(order(), others, after=HOUR).events == []


def test_a_new_order_already_past_its_threshold_is_created_and_stuck() -> None:
    ledger = Ledger(PENDING_2H, start=CREATED_AT + 3 * HOUR)

    result = ledger.sync(order(), after=timedelta(0))

    assert [(e.type, e.sequence) for e in result.events] == [
        ("order.created", 1),
        ("order.stuck", 1),
    ]


def test_an_order_stored_before_episodes_were_kept_counts_from_its_creation() -> None:
    ledger = Ledger(PENDING_2H, start=CREATED_AT + 3 * HOUR)
    ledger.stored = held(order(), 6, since=None)

    result = ledger.sync(order(), after=timedelta(0))

    assert [(e.type, e.sequence) for e in result.events] == [("order.stuck", 6)]
    assert result.snapshots == [
        Snapshot(order=order(), sequence=6, status_since=CREATED_AT, stuck_reported=True)
    ]


def test_a_repeated_stuck_sync_gives_the_same_record() -> None:
    ledger = Ledger(PENDING_2H)
    ledger.sync(order(), after=timedelta(minutes=10))
    stored = dict(ledger.stored)

    first = ledger.sync(order(), after=2 * HOUR)
    ledger.stored = stored
    retried = ledger.sync(order(), after=2 * HOUR + timedelta(minutes=5))

    assert [r.event_id for r in first.records] == [r.event_id for r in retried.records]
