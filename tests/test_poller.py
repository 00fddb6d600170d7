"""The poller's sync of one customer, and one cycle over every customer.

Everything real except time: the SQLite store in tmp_path, the Adobe VIP adapter talking to
the bundled simulator over sockets on 127.0.0.1, and a `ManualClock` for the poller's
`clock`, so full re-lists and look-back windows are driven by the test. Covered: the
baseline sync, every kind of change reaching the outbox with its routing key, per-order
sequences, the full re-list cadence seen in the simulator's request log, a fetch failing
part-way (nothing changes, the next sync catches up), permanent errors, a cycle's outcomes,
`summary()`, and stuck orders. The loop around the syncs is in test_poller_loop.py.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from tests.plugins.simulator import SIM_NOW, AdobeSimulator, SimAdmin
from tests.poller_cases import (
    CUSTOMER,
    CUSTOMER_ORDERS,
    FULL_RELIST_S,
    FULL_RELIST_START,
    LOOKBACK_DAYS,
    NEW_ORDER,
    OTHER,
    SOURCE,
    UNKNOWN_CUSTOMER,
    Rig,
    adobe_time,
    completed_after_the_baseline,
    first_pages,
    kinds,
    opened_rig,
    outbox,
)
from watcher.core.errors import PermanentProviderError, TransientProviderError
from watcher.core.events import OrderStatusChanged, Value
from watcher.core.models import Order, OrderStatus
from watcher.core.ports import OutboxRecord, PollState
from watcher.poller import CustomerSync, summary


def unscheduled(state: PollState | None) -> PollState | None:
    """`state` without its schedule (next due time, orders in flight)."""
    return (
        None
        if state is None
        else dataclasses.replace(state, next_due_at=None, in_flight=frozenset())
    )


@pytest.fixture
async def rig(adobe_sim: AdobeSimulator, sim_admin: SimAdmin, tmp_path: Path) -> AsyncIterator[Rig]:
    async with opened_rig(adobe_sim, sim_admin, tmp_path) as opened:
        yield opened


# --- one customer's sync ----------------------------------------------------------------


async def test_the_first_sync_is_a_silent_baseline(rig: Rig) -> None:
    result = await rig.poller().sync_customer(CUSTOMER)

    assert (result.outcome, result.error, result.orders, result.full) == ("ok", None, 5, True)
    assert (result.events, result.records) == ([], [])
    assert await outbox(rig) == []
    assert await rig.sequences() == dict.fromkeys(CUSTOMER_ORDERS, 1)
    assert unscheduled(await rig.store.poll_state(SOURCE, CUSTOMER)) == PollState(
        baseline_done=True, last_success_at=SIM_NOW, last_full_sync_at=SIM_NOW
    )


async def test_created_on_baseline_announces_every_existing_order(rig: Rig) -> None:
    result = await rig.poller(created_on_baseline=True).sync_customer(CUSTOMER)

    assert kinds(result) == [("order.created", order_id, None) for order_id in CUSTOMER_ORDERS]
    assert len(result.records) == 5
    assert await outbox(rig) == [("order.created", "adobe_vip.order.created")] * 5


async def test_an_order_created_after_the_baseline_is_order_created(rig: Rig) -> None:
    poller = rig.poller()
    await poller.sync_customer(CUSTOMER)
    created = await rig.admin.create_order(CUSTOMER, {"status": "1002"})
    rig.clock.advance(60)

    result = await poller.sync_customer(CUSTOMER)

    assert created["orderId"] == NEW_ORDER
    assert kinds(result) == [("order.created", NEW_ORDER, None)]
    assert result.events[0].sequence == 1
    [record] = await rig.store.pending(10)
    assert (record.event_type, record.routing_key) == ("order.created", "adobe_vip.order.created")
    cloud_event = orjson.loads(record.body)
    assert cloud_event["id"] == record.event_id
    assert cloud_event["subject"] == f"adobe_vip/{CUSTOMER}/{NEW_ORDER}"
    assert cloud_event["source"] == f"order-watcher/{SOURCE}"
    assert cloud_event["data"]["order_id"] == NEW_ORDER
    assert record.created_at == SIM_NOW + timedelta(seconds=60)


async def test_completion_with_subscription_ids_raises_status_and_provisioning_events(
    rig: Rig,
) -> None:
    result = await completed_after_the_baseline(rig, rig.poller())

    assert kinds(result) == [
        ("order.line_item.status_changed", "5120000001", "1"),
        ("order.line_item.status_changed", "5120000001", "2"),
        ("order.provisioning_changed", "5120000001", "1"),
        ("order.provisioning_changed", "5120000001", "2"),
        ("order.status_changed", "5120000001", None),
    ]
    [status] = [e for e in result.events if isinstance(e, OrderStatusChanged)]
    assert (status.before, status.after) == (
        Value(value="pending", raw="1002"),
        Value(value="completed", raw="1000"),
    )
    assert {event.sequence for event in result.events} == {2}
    assert await outbox(rig) == [
        ("order.line_item.status_changed", "adobe_vip.order.line_item.status_changed"),
        ("order.line_item.status_changed", "adobe_vip.order.line_item.status_changed"),
        ("order.provisioning_changed", "adobe_vip.order.provisioning_changed.provisioned"),
        ("order.provisioning_changed", "adobe_vip.order.provisioning_changed.provisioned"),
        ("order.status_changed", "adobe_vip.order.status_changed.completed"),
    ]
    stored = await rig.store.load_snapshots(SOURCE, CUSTOMER, ["5120000001"])
    order: Order = stored["5120000001"].order
    assert order.status is OrderStatus.COMPLETED
    assert [line.subscription_id for line in order.line_items] == ["sub-0001", "sub-0002"]


async def test_quantity_change_and_lines_added_and_removed(rig: Rig) -> None:
    poller = rig.poller()
    await poller.sync_customer(CUSTOMER)
    await rig.admin.patch_order(
        CUSTOMER,
        "5120000003",
        {
            "lineItems": [{"extLineItemNumber": 1, "quantity": 9}],
            "addLines": [{"extLineItemNumber": 2, "offerId": "65304921CA01A12", "quantity": 2}],
        },
    )
    await rig.admin.patch_order(CUSTOMER, "5120000001", {"removeLines": [2]})
    rig.clock.advance(60)

    result = await poller.sync_customer(CUSTOMER)

    assert kinds(result) == [
        ("order.line_item.added", "5120000003", "2"),
        ("order.line_item.quantity_changed", "5120000003", "1"),
        ("order.line_item.removed", "5120000001", "2"),
    ]
    changed = {e.type: e.model_dump() for e in result.events}
    quantity = changed["order.line_item.quantity_changed"]
    assert (quantity["before"], quantity["after"]) == (4, 9)
    assert changed["order.line_item.added"]["line"]["quantity"] == 2
    assert changed["order.line_item.removed"]["line"]["quantity"] == 24
    assert await outbox(rig) == [
        ("order.line_item.added", "adobe_vip.order.line_item.added"),
        ("order.line_item.quantity_changed", "adobe_vip.order.line_item.quantity_changed"),
        ("order.line_item.removed", "adobe_vip.order.line_item.removed"),
    ]


async def test_sequence_goes_up_by_one_per_changed_sync_and_a_quiet_sync_writes_nothing(
    rig: Rig,
) -> None:
    poller = rig.poller()
    await poller.sync_customer(CUSTOMER)
    for quantity in (7, 8):
        await rig.admin.patch_order(
            CUSTOMER, "5120000002", {"lineItems": [{"extLineItemNumber": 1, "quantity": quantity}]}
        )
        rig.clock.advance(60)
        changed = await poller.sync_customer(CUSTOMER)
        assert [(e.order_id, e.sequence) for e in changed.events] == [("5120000002", quantity - 5)]
    pending_before = await rig.store.pending(1000)
    rig.clock.advance(60)

    quiet = await poller.sync_customer(CUSTOMER)

    assert (quiet.outcome, quiet.orders, quiet.events, quiet.records) == ("ok", 5, [], [])
    assert await rig.store.pending(1000) == pending_before
    assert len({record.event_id for record in pending_before}) == 2
    assert await rig.sequences() == dict.fromkeys(CUSTOMER_ORDERS, 1) | {"5120000002": 3}
    state = await rig.store.poll_state(SOURCE, CUSTOMER)
    assert state is not None
    assert state.last_success_at == SIM_NOW + timedelta(seconds=180)


# --- windows: full re-list and look-back -------------------------------------------------


async def test_full_relist_first_and_then_every_full_relist_interval(rig: Rig) -> None:
    poller = rig.poller()
    await rig.admin.clear_requests()
    fulls = []
    moments = []
    for step_s in (0, 60, FULL_RELIST_S - 60 + 1, 60):
        rig.clock.advance(step_s)
        moments.append(rig.clock())
        result = await poller.sync_customer(CUSTOMER)
        assert (result.outcome, result.orders) == ("ok", 5)
        fulls.append(result.full)

    lookback = timedelta(days=LOOKBACK_DAYS)
    assert fulls == [True, False, True, False]
    assert [query["start-date"] for query in await first_pages(rig.admin)] == [
        [FULL_RELIST_START],
        [adobe_time(moments[1] - lookback)],
        [FULL_RELIST_START],
        [adobe_time(moments[3] - lookback)],
    ]
    assert unscheduled(await rig.store.poll_state(SOURCE, CUSTOMER)) == PollState(
        baseline_done=True, last_success_at=moments[3], last_full_sync_at=moments[2]
    )


async def test_the_lookback_window_hides_old_orders_until_the_next_full_relist(
    rig: Rig,
) -> None:
    poller = rig.poller(created_on_baseline=True)
    await poller.sync_customer(CUSTOMER)
    old = await rig.admin.create_order(CUSTOMER, {"creationDate": "2024-01-15T00:00:00Z"})
    rig.clock.advance(60)

    incremental = await poller.sync_customer(CUSTOMER)
    rig.clock.advance(FULL_RELIST_S)
    full = await poller.sync_customer(CUSTOMER)

    assert (incremental.full, incremental.orders, incremental.events) == (False, 5, [])
    assert (full.full, full.orders) == (True, 6)
    assert kinds(full) == [("order.created", old["orderId"], None)]


# --- failures --------------------------------------------------------------------------


async def test_a_fetch_failing_part_way_changes_nothing_and_the_next_sync_catches_up(
    rig: Rig,
) -> None:
    poller = rig.poller(page_size=2)
    await poller.sync_customer(CUSTOMER)
    state_before = await rig.store.poll_state(SOURCE, CUSTOMER)
    await rig.admin.patch_order(CUSTOMER, "5120000001", {"status": "1000"})
    await rig.admin.create_order(CUSTOMER, {"status": "1002"})
    await rig.admin.fault(kind="status", status=503, count=-1, path_contains="offset=4")
    await rig.admin.clear_requests()
    rig.clock.advance(60)

    failed = await poller.sync_customer(CUSTOMER)

    assert failed.outcome == "error"
    assert isinstance(failed.error, TransientProviderError)
    assert CUSTOMER in str(failed.error)
    assert (failed.orders, failed.events, failed.records) == (0, [], [])
    statuses = [
        (parse_qs(urlsplit(entry["path_qs"]).query)["offset"][0], entry["status"])
        for entry in await rig.admin.requests()
        if entry["path_qs"].startswith("/v3/")
    ]
    assert statuses == [("0", 200), ("2", 200), ("4", 503), ("4", 503)]
    assert await outbox(rig) == []
    assert await rig.sequences() == dict.fromkeys(CUSTOMER_ORDERS, 1)
    assert await rig.store.poll_state(SOURCE, CUSTOMER) == state_before

    await rig.admin.clear_faults()
    rig.clock.advance(60)
    caught_up = await poller.sync_customer(CUSTOMER)

    assert caught_up.outcome == "ok"
    assert kinds(caught_up) == [
        ("order.created", NEW_ORDER, None),
        ("order.status_changed", "5120000001", None),
    ]
    assert await outbox(rig) == [
        ("order.created", "adobe_vip.order.created"),
        ("order.status_changed", "adobe_vip.order.status_changed.completed"),
    ]
    assert await rig.sequences() == dict.fromkeys(CUSTOMER_ORDERS, 1) | {
        "5120000001": 2,
        NEW_ORDER: 1,
    }


async def test_an_unknown_customer_is_a_permanent_error(rig: Rig) -> None:
    result = await rig.poller().sync_customer(UNKNOWN_CUSTOMER)

    assert result.outcome == "permanent_error"
    assert isinstance(result.error, PermanentProviderError)
    assert UNKNOWN_CUSTOMER in str(result.error)
    assert (result.orders, result.events) == (0, [])
    assert await rig.store.poll_state(SOURCE, UNKNOWN_CUSTOMER) is None


async def test_a_cycle_syncs_every_customer_and_reports_each_outcome(rig: Rig) -> None:
    poller = rig.poller(customers=[CUSTOMER, UNKNOWN_CUSTOMER, OTHER], created_on_baseline=True)

    results = await poller.cycle()

    assert [(r.customer_id, r.outcome, r.orders, len(r.records)) for r in results] == [
        (CUSTOMER, "ok", 5, 5),
        (UNKNOWN_CUSTOMER, "permanent_error", 0, 0),
        (OTHER, "ok", 5, 5),
    ]
    assert summary(results) == "2 ok, 1 failed, 10 orders, 10 events"


def _record(event_id: str) -> OutboxRecord:
    return OutboxRecord(event_id, "order.created", "adobe_vip.order.created", b"{}", SIM_NOW)


def test_summary_counts_customers_orders_and_events() -> None:
    results = [
        CustomerSync(SOURCE, "1", orders=3, records=[_record("a"), _record("b")]),
        CustomerSync(SOURCE, "2", error=TransientProviderError("busy")),
        CustomerSync(SOURCE, "3", orders=1),
        CustomerSync(SOURCE, "4", error=PermanentProviderError("gone")),
    ]
    assert summary(results) == "2 ok, 2 failed, 4 orders, 2 events"
    assert summary([]) == "0 ok, 0 failed, 0 orders, 0 events"


# --- stuck orders -----------------------------------------------------------------------


async def test_stuck_orders_are_reported_once_and_counted_until_they_move(rig: Rig) -> None:
    poller = rig.poller(stuck={"1002": 3600.0})  # the seeded open orders are days old

    baseline = await poller.sync_customer(CUSTOMER)

    assert sorted((e.type, e.order_id) for e in baseline.events) == [
        ("order.stuck", "5120000001"),
        ("order.stuck", "5120000002"),
    ]
    assert poller.stuck_by_status == Counter({"pending": 2})
    assert ("order.stuck", "adobe_vip.order.stuck") in await outbox(rig)

    again = await poller.sync_customer(CUSTOMER)
    assert again.events == [], "one order.stuck per episode"

    await rig.admin.patch_order(CUSTOMER, "5120000001", {"status": "1000"})
    moved = await poller.sync_customer(CUSTOMER)

    assert [e.type for e in moved.events] == ["order.status_changed"]
    assert poller.stuck_by_status == Counter({"pending": 1})
