"""Zuora order and subscription transitions, read by the adapter from the simulator, as typed
events with their routing keys: order states, subscription states as line provisioning,
quantity and item changes, one-off lines added, changed, fulfilled and removed, and the
scenario's lifecycles reaching the adapter.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.plugins.simulator import SIM_NOW
from tests.plugins.zuora import ZuoraAdmin, ZuoraSimulator
from tests.zuora_cases import ACCOUNT, make_adapter
from watcher.core import sync
from watcher.core.models import Order, OrderStatus, Provisioning
from watcher.core.ports import Provider, Snapshot


async def changes_after(
    adapter: Provider, admin: ZuoraAdmin, order: str, patch: dict[str, Any]
) -> list[tuple[str, str, str | None]]:
    """(type, routing key, line key) of the events a patch of `order` raises."""
    before = {o.order_id: o for o in await adapter.fetch_orders(ACCOUNT, since=None)}
    await admin.patch_order(order, patch)
    after = await adapter.fetch_orders(ACCOUNT, since=None)
    stored = {key: Snapshot(order=value, sequence=1) for key, value in before.items()}
    result = sync.reconcile(after, stored, baseline=False, now=SIM_NOW)
    return [
        (e.type, r.routing_key, e.affected_line())
        for e, r in zip(result.events, result.records, strict=True)
    ]


def subscription(number: str, state: str | None = None, **items: dict[str, Any]) -> dict[str, Any]:
    """A patch of one subscription; `items` by subscription item number."""
    patch: dict[str, Any] = {"subscription_number": number}
    if state is not None:
        patch["state"] = state
    if items:
        patch["subscription_items"] = [
            {"subscription_item_number": key.replace("_", "-")} | change
            for key, change in items.items()
        ]
    return {"subscriptions": [patch]}


def event(kind: str, value: str | None = None, line: str | None = None) -> Change:
    """(type, routing key, line key) of one expected event."""
    key = f"zuora.order.{kind}" + (f".{value}" if value else "")
    return (f"order.{kind}", key, line)


Change = tuple[str, str, str | None]
TRANSITIONS: list[tuple[str, dict[str, Any], list[Change]]] = [
    ("O-00000001", {"state": "complete"}, [event("status_changed", "completed")]),
    ("O-00000001", {"state": "executing"}, [event("status_changed", "processing")]),
    ("O-00000001", {"state": "failed"}, [event("status_changed", "failed")]),
    (
        "O-00000001",
        {"state": "canceled"} | subscription("A-S00000001", "canceled"),
        [
            event("provisioning_changed", "cancelled", "C-00000001"),
            event("provisioning_changed", "cancelled", "C-00000002"),
            event("status_changed", "cancelled"),
        ],
    ),
    (
        "O-00000004",
        subscription("A-S00000004", "active"),
        [event("provisioning_changed", "provisioned", "C-00000006")],
    ),
    (
        "O-00000002",
        subscription("A-S00000002", "paused"),
        [event("provisioning_changed", "unknown", "C-00000003")],
    ),
    (
        "O-00000002",
        subscription("A-S00000002", "expired"),
        [event("provisioning_changed", "cancelled", "C-00000003")],
    ),
    (
        "O-00000001",
        subscription("A-S00000001", C_00000002={"quantity": 9}),
        [event("line_item.quantity_changed", line="C-00000002")],
    ),
    (
        "O-00000001",
        subscription("A-S00000001", C_00000001={"state": "active"}),
        [event("line_item.status_changed", line="C-00000001")],
    ),
]


@pytest.mark.parametrize("case", TRANSITIONS, ids=[str(n) for n in range(len(TRANSITIONS))])
async def test_transitions_raise_typed_events(
    zuora_sim: ZuoraSimulator,
    zuora_admin: ZuoraAdmin,
    session: aiohttp.ClientSession,
    case: tuple[str, dict[str, Any], list[Change]],
) -> None:
    order, patch, expected = case
    adapter = make_adapter(zuora_sim, session, page_size=10)
    assert await changes_after(adapter, zuora_admin, order, patch) == expected


async def test_one_off_lines_added_changed_fulfilled_and_removed(
    zuora_sim: ZuoraSimulator, zuora_admin: ZuoraAdmin, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(zuora_sim, session, page_size=10)
    [line] = (await zuora_admin.patch_order("O-00000004", {}))["line_items"]
    line_id = line["id"]

    added = await changes_after(adapter, zuora_admin, "O-00000001", {"add_line_items": [{}]})
    fulfilled = await changes_after(
        adapter,
        zuora_admin,
        "O-00000004",
        {
            "line_items": [
                {"id": line_id, "quantity_fulfilled": line["quantity"], "state": "booked"}
            ]
        },
    )
    more = await changes_after(
        adapter, zuora_admin, "O-00000004", {"line_items": [{"id": line_id, "quantity": 99}]}
    )
    removed = await changes_after(
        adapter, zuora_admin, "O-00000004", {"remove_line_items": [line_id]}
    )

    assert [kind for kind, _, _ in added] == ["order.line_item.added"]
    assert [key for _, key, _ in fulfilled] == [
        "zuora.order.provisioning_changed.provisioned",
        "zuora.order.line_item.status_changed",
    ]
    assert sorted(key for _, key, _ in more) == [
        "zuora.order.line_item.quantity_changed",
        "zuora.order.provisioning_changed.pending",
    ]
    assert removed == [("order.line_item.removed", "zuora.order.line_item.removed", line_id)]


async def test_scenario_lifecycles_reach_the_adapter(
    zuora_sim: ZuoraSimulator, zuora_admin: ZuoraAdmin, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(zuora_sim, session, page_size=10)
    seen: dict[str, Order] = {
        o.order_id: o for o in await adapter.fetch_orders(ACCOUNT, since=None)
    }
    kinds: set[str] = set()
    for _ in range(8):
        kinds |= {c["kind"] for c in await zuora_admin.advance() if c["account_id"] == ACCOUNT}
    after = {o.order_id: o for o in await adapter.fetch_orders(ACCOUNT, since=None)}

    assert "completed" in kinds
    completed = [
        order
        for order in after.values()
        if order.status is OrderStatus.COMPLETED
        and seen[order.order_id].status is OrderStatus.PENDING
    ]
    assert completed
    assert all(
        line.provisioning is Provisioning.PROVISIONED for o in completed for line in o.line_items
    )
