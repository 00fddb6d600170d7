"""sync.reconcile: fetched orders against stored snapshots, into snapshots and outbox records.

New orders (with and without the baseline), changed and unchanged orders, several at
once, orders missing from a fetch; and the outbox records: ids, types and routing keys
that match their events, bodies that decode to the envelopes detected at `now`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from tests.orders import line, order
from watcher.core import events, sync
from watcher.core.models import Order, OrderStatus
from watcher.core.ports import Snapshot

NOW = datetime(2024, 5, 2, 14, 3, 7, tzinfo=UTC)
COMPLETED = OrderStatus.COMPLETED


def reconcile(
    orders: list[Order], stored: dict[str, Snapshot], *, baseline: bool = False
) -> sync.Result:
    return sync.reconcile(orders, stored, baseline=baseline, now=NOW)


def test_a_new_order_is_created_with_sequence_1() -> None:
    new = order()
    result = reconcile([new], {})
    assert result.snapshots == [Snapshot(order=new, sequence=1)]
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
    assert result.snapshots == [Snapshot(order=new, sequence=1)]
    assert result.events == []
    assert result.records == []


def test_a_changed_order_takes_the_next_sequence() -> None:
    before = order()
    after = order(status=COMPLETED, status_raw="1000", line_items=(line("1", quantity=12),))
    result = reconcile([after], {before.order_id: Snapshot(order=before, sequence=4)})
    assert result.snapshots == [Snapshot(order=after, sequence=5)]
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
    result = reconcile(
        [after], {before.order_id: Snapshot(order=before, sequence=1)}, baseline=True
    )
    assert [r.routing_key for r in result.records] == ["adobe_vip.order.status_changed.completed"]
    assert result.snapshots == [Snapshot(order=after, sequence=2)]


def test_an_unchanged_order_writes_nothing() -> None:
    stored = order()
    result = reconcile([order()], {stored.order_id: Snapshot(order=stored, sequence=4)})
    assert result == sync.Result()


def test_a_change_outside_the_essence_writes_nothing() -> None:
    stored = order()
    fetched = order(reference="PO-9999", line_items=(line("1", offer="65322651CA01A12"),))
    result = reconcile([fetched], {stored.order_id: Snapshot(order=stored, sequence=4)})
    assert result.snapshots == []
    assert result.records == []


def test_an_order_missing_from_the_fetch_is_left_alone() -> None:
    stored = order()
    assert reconcile([], {stored.order_id: Snapshot(order=stored, sequence=4)}) == sync.Result()


def test_several_orders_at_once_in_fetch_order() -> None:
    new = order(order_id="1000000001")
    changed_before = order(order_id="1000000002")
    changed_after = order(order_id="1000000002", payment="paid", payment_raw="PAID")
    unchanged = order(order_id="1000000003")
    stored = {
        "1000000002": Snapshot(order=changed_before, sequence=7),
        "1000000003": Snapshot(order=unchanged, sequence=2),
    }
    result = reconcile([new, changed_after, unchanged], stored)
    assert result.snapshots == [
        Snapshot(order=new, sequence=1),
        Snapshot(order=changed_after, sequence=8),
    ]
    assert [(r.routing_key, orjson.loads(r.body)["subject"]) for r in result.records] == [
        ("adobe_vip.order.created", "adobe_vip/9876543210/1000000001"),
        ("adobe_vip.order.payment_changed.paid", "adobe_vip/9876543210/1000000002"),
    ]
    assert len({r.event_id for r in result.records}) == 2


def test_records_decode_to_the_envelopes_detected_now() -> None:
    before = order(line_items=(line("1"), line("2")))
    after = order(status=COMPLETED, status_raw="1000", line_items=(line("1"), line("3")))
    result = reconcile([after], {before.order_id: Snapshot(order=before, sequence=1)})
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
    stored = {before.order_id: Snapshot(order=before, sequence=1)}
    assert reconcile([after], stored) == reconcile([after], stored)


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
