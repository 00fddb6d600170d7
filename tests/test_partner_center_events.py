"""Partner Center transitions, read by the adapter from the simulator, as typed events with
their routing keys: completion, subscription ids and fulfilment, a cancellation, unknown
statuses and unlisted provisioning values kept raw, and a scenario step with repeated
fetches raising nothing spurious.
"""

from __future__ import annotations

import aiohttp
import pytest

from tests.partner_center_cases import by_id, changes, make_adapter
from tests.plugins.partner_center import PcAdmin, PcSimulator

pytestmark = pytest.mark.timeout(10)


PC = "partner_center.order"


async def test_completion_subscription_ids_and_fulfilment_raise_their_events(
    pc_sim: PcSimulator, pc_admin: PcAdmin, pc_customer: str, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(pc_sim, session)
    lines = [{"quantity": 3}, {"quantity": 5}]
    order = await pc_admin.create_order(
        pc_customer, {"status": "pending", "lineItems": lines, "listingLagS": 0}
    )
    oid = order["id"]
    start = await adapter.fetch_orders(pc_customer, since=None)

    patch = {"status": "completed", "lineItems": [{"lineItemNumber": 0, "subscriptionId": "s-0"}]}
    await pc_admin.patch_order(pc_customer, oid, patch)
    completed = await adapter.fetch_orders(pc_customer, since=None)
    await pc_admin.set_provisioning(pc_customer, oid, {"0": "fulfilled", "1": "unfulfilled"})
    fulfilled = await adapter.fetch_orders(pc_customer, since=None)
    await pc_admin.patch_order(
        pc_customer, oid, {"lineItems": [{"lineItemNumber": 0, "quantity": 4}]}
    )
    resized = await adapter.fetch_orders(pc_customer, since=None)

    assert changes(start, completed) == [
        ("order.provisioning_changed", "0", f"{PC}.provisioning_changed.pending"),
        ("order.status_changed", None, f"{PC}.status_changed.completed"),
    ]
    assert changes(completed, fulfilled) == [
        ("order.provisioning_changed", "0", f"{PC}.provisioning_changed.provisioned"),
        ("order.provisioning_changed", "1", f"{PC}.provisioning_changed.cancelled"),
    ]
    assert changes(fulfilled, resized) == [
        ("order.line_item.quantity_changed", "0", f"{PC}.line_item.quantity_changed")
    ]
    resized_line, fulfilled_line = by_id(resized)[oid].line("0"), by_id(fulfilled)[oid].line("0")
    assert fulfilled_line is not None
    assert resized_line == fulfilled_line.model_copy(update={"quantity": 4})


async def test_a_cancellation_raises_status_and_line_provisioning_events(
    pc_sim: PcSimulator, pc_admin: PcAdmin, pc_customer: str, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(pc_sim, session)
    order = await pc_admin.create_order(pc_customer, {"status": "pending", "listingLagS": 0})
    start = await adapter.fetch_orders(pc_customer, since=None)

    await pc_admin.patch_order(pc_customer, order["id"], {"status": "cancelled"})
    await pc_admin.set_provisioning(pc_customer, order["id"], {"0": "unfulfilled"})
    after = await adapter.fetch_orders(pc_customer, since=None)

    assert changes(start, after) == [
        ("order.provisioning_changed", "0", f"{PC}.provisioning_changed.cancelled"),
        ("order.status_changed", None, f"{PC}.status_changed.cancelled"),
    ]


@pytest.mark.parametrize(
    ("status", "routing"),
    [("unknown", "status_changed.unknown"), ("onHold", "status_changed.unknown")],
)
async def test_unknown_statuses_keep_their_raw_value(
    pc_sim: PcSimulator,
    pc_admin: PcAdmin,
    pc_customer: str,
    session: aiohttp.ClientSession,
    *,
    status: str,
    routing: str,
) -> None:
    adapter = make_adapter(pc_sim, session)
    order = await pc_admin.create_order(pc_customer, {"status": "pending", "listingLagS": 0})
    start = await adapter.fetch_orders(pc_customer, since=None)

    await pc_admin.patch_order(pc_customer, order["id"], {"status": status})
    after = await adapter.fetch_orders(pc_customer, since=None)

    assert changes(start, after) == [("order.status_changed", None, f"{PC}.{routing}")]
    assert by_id(after)[order["id"]].status_raw == status


async def test_unlisted_provisioning_values_are_unknown_with_raw_kept(
    pc_sim: PcSimulator, pc_admin: PcAdmin, pc_customer: str, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(pc_sim, session)
    order = await pc_admin.create_order(pc_customer, {"status": "pending", "listingLagS": 0})
    start = await adapter.fetch_orders(pc_customer, since=None)

    await pc_admin.set_provisioning(pc_customer, order["id"], {"0": "partiallyFulfilled"})
    after = await adapter.fetch_orders(pc_customer, since=None)

    assert changes(start, after) == [
        ("order.provisioning_changed", "0", f"{PC}.provisioning_changed.unknown")
    ]
    assert by_id(after)[order["id"]].line_items[0].provisioning_raw == "partiallyFulfilled"


async def test_a_scenario_step_and_repeated_fetches_raise_nothing_spurious(
    pc_sim: PcSimulator, pc_customer: str, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(pc_sim, session)
    first = await adapter.fetch_orders(pc_customer, since=None)
    again = await adapter.fetch_orders(pc_customer, since=None)
    assert changes(first, again) == []
