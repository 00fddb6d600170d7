"""The simulator's admin API and its life, shown on the Adobe VIP world: partial orders and
patches, the request log, seeded worlds and scenario steps, and the `serve_forever` loop.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson
import pytest

from tests.adobe_api import CUSTOMER, Api
from tests.plugins.simulator import (
    SIM_CUSTOMERS,
    SIM_NOW,
    AdobeSimulator,
    ManualClock,
    SimAdmin,
)
from watcher.simulator import Simulator, adobe_vip, serve_forever
from watcher.simulator.adobe_vip import scenario
from watcher.simulator.adobe_vip.world import AdobeVipState

pytestmark = pytest.mark.timeout(5)


# Admin and the request log


async def test_a_partial_order_is_filled_with_defaults(
    sim_admin: SimAdmin, sim_clock: ManualClock
) -> None:
    sim_clock.advance(0.5)
    order = await sim_admin.create_order("3000000001", {"lineItems": [{}, {"quantity": 3}]})
    assert order["orderId"] == "5120000011"
    assert (order["orderType"], order["status"], order["source"]) == ("NEW", "1002", "API")
    assert order["creationDate"] == "2026-11-20T10:00:00Z"
    assert [(line["extLineItemNumber"], line["quantity"]) for line in order["lineItems"]] == [
        (1, 1),
        (2, 3),
    ]
    assert {line["status"] for line in order["lineItems"]} == {"1002"}
    assert {line["subscriptionId"] for line in order["lineItems"]} == {""}


async def test_an_order_patch_edits_lines(sim_admin: SimAdmin) -> None:
    await sim_admin.create_order(CUSTOMER, {"orderId": "1", "lineItems": [{}, {}, {}]})
    patch = {
        "status": "1000",
        "externalReferenceId": "PO-1",
        "removeLines": [2],
        "lineItems": [{"extLineItemNumber": 1, "quantity": 7, "subscriptionId": "s-1"}],
        "addLines": [{"offerId": "80004567EA01A12"}],
    }
    order = await sim_admin.patch_order(CUSTOMER, "1", patch)
    lines = {line["extLineItemNumber"]: line for line in order["lineItems"]}
    assert (order["status"], order["externalReferenceId"]) == ("1000", "PO-1")
    assert sorted(lines) == [1, 3, 4]
    assert (lines[1]["quantity"], lines[1]["subscriptionId"]) == (7, "s-1")
    assert (lines[4]["offerId"], lines[4]["status"]) == ("80004567EA01A12", "1000")


@pytest.mark.parametrize(
    "patch",
    [
        {"status": "1000", "removeLines": [9]},
        {"status": "1000", "lineItems": [{"extLineItemNumber": 1, "quantity": -1}]},
        {"status": "1000", "orderId": "2"},
        {"status": 1000},
    ],
)
async def test_a_rejected_patch_changes_nothing(
    session: aiohttp.ClientSession, adobe_sim: AdobeSimulator, patch: dict[str, Any]
) -> None:
    before = dict(adobe_sim.state.order(CUSTOMER, "5120000001"))
    url = f"{adobe_sim.base_url}/_admin/customers/{CUSTOMER}/orders/5120000001"
    async with session.patch(url, json=patch) as reply:
        assert reply.status == 400
        assert (await reply.json())["code"] == "invalid-request"
    assert adobe_sim.state.order(CUSTOMER, "5120000001") == before


async def test_the_request_log_keeps_ids_but_no_secrets(api: Api, sim_admin: SimAdmin) -> None:
    await sim_admin.clear_requests()
    await api.get(
        f"/v3/customers/{CUSTOMER}/orders?limit=1",
        headers={"X-Correlation-Id": "c-1", "X-Request-Id": "r-1"},
    )
    await api.get(f"/v3/customers/{CUSTOMER}/orders", headers={"X-Api-Key": None})
    await sim_admin.token()
    entries = await sim_admin.requests()
    assert [(e["method"], e["path_qs"], e["status"]) for e in entries] == [
        ("GET", f"/v3/customers/{CUSTOMER}/orders?limit=1", 200),
        ("GET", f"/v3/customers/{CUSTOMER}/orders", 403),
        ("POST", "/ims/token/v3", 200),
    ]
    assert entries[0]["headers"] == {
        "X-Request-Id": "r-1",
        "X-Correlation-Id": "c-1",
        "X-Api-Key-present": True,
        "Authorization-present": True,
    }
    assert entries[1]["headers"]["X-Api-Key-present"] is False
    assert api.token not in orjson.dumps(entries).decode()
    assert await sim_admin.clear_requests() == 3
    assert await sim_admin.requests() == []


# Scenarios


async def test_the_fixture_world_is_the_documented_seed(adobe_sim: AdobeSimulator) -> None:
    world = adobe_sim.state.world()
    assert list(world) == list(SIM_CUSTOMERS)
    assert sorted(o["orderId"] for o in world[SIM_CUSTOMERS[1]]) == [
        f"51200000{n:02d}" for n in range(6, 11)
    ]
    open_orders = {
        o["orderId"] for orders in world.values() for o in orders if o["status"] == "1002"
    }
    assert open_orders == {"5120000001", "5120000002", "5120000008", "5120000010"}


def test_seeding_is_deterministic() -> None:
    def world(rng_seed: int) -> bytes:
        state = AdobeVipState(lambda: SIM_NOW, random.Random(0))
        scenario.seed(state, customers=3, orders_per_customer=4, rng_seed=rng_seed, now=SIM_NOW)
        return orjson.dumps(state.world())

    assert world(7) == world(7)
    assert world(7) != world(8)


def test_a_seeded_world_has_the_promised_shape() -> None:
    state = AdobeVipState(lambda: SIM_NOW, random.Random(0))
    ids = scenario.seed(state, customers=3, orders_per_customer=20, now=SIM_NOW)
    assert ids == ["1000000001", "1000000002", "1000000003"]
    orders = [order for customer_id in ids for order in state.orders(customer_id)]
    assert len(orders) == 60
    assert {order["status"] for order in orders} == {"1000", "1002"}
    for order in orders:
        lines = order["lineItems"]
        assert 1 <= len(lines) <= 3
        assert {line["status"] for line in lines} == {order["status"]}
        assert all(bool(line["subscriptionId"]) == (order["status"] == "1000") for line in lines)
        assert "2026-10-31T10:00:00Z" < order["creationDate"] <= "2026-11-20T10:00:00Z"
    for customer_id in ids:
        dates = [order["creationDate"] for order in state.orders(customer_id)]
        assert dates == sorted(dates, reverse=True)


def test_advance_replays_the_same_story_from_the_same_seeds() -> None:
    def story() -> tuple[list[dict[str, Any]], bytes]:
        state = AdobeVipState(lambda: SIM_NOW, random.Random(0))
        scenario.seed(state, customers=5, orders_per_customer=5, now=SIM_NOW)
        rng = random.Random(3)
        steps = [c.to_json() for _ in range(5) for c in scenario.advance(state, rng, SIM_NOW)]
        return steps, orjson.dumps(state.world())

    first = story()
    assert first[0]
    assert first == story()


async def test_advance_changes_what_the_api_serves(api: Api, sim_admin: SimAdmin) -> None:
    changes: list[dict[str, Any]] = []
    while not {"completed", "created"} <= {change["kind"] for change in changes}:
        assert len(changes) < 200, "the scenario should complete and create orders"
        changes += await sim_admin.advance()
    for change in changes:
        path = f"/v3/customers/{change['customerId']}/orders/{change['orderId']}"
        order = (await api.get(path)).json()
        if change["kind"] == "completed":
            assert order["status"] == "1000"
            assert all(line["subscriptionId"] for line in order["lineItems"])
        if change["kind"] == "created":
            assert order["creationDate"] == "2026-11-20T10:00:00Z"


# Server loop


async def test_serve_forever_serves_and_advances_until_cancelled(
    session: aiohttp.ClientSession, sim_clock: ManualClock
) -> None:
    state = AdobeVipState(sim_clock, random.Random(0))
    scenario.seed(state, customers=20, orders_per_customer=3, now=SIM_NOW)
    ready: asyncio.Future[list[Simulator[Any]]] = asyncio.get_running_loop().create_future()
    advanced: asyncio.Queue[tuple[str, Sequence[Any]]] = asyncio.Queue()
    serving = asyncio.create_task(
        serve_forever(
            [adobe_vip.api(state)],
            tick_s=0.01,
            on_ready=ready.set_result,
            on_advance=lambda name, changes: advanced.put_nowait((name, changes)),
        )
    )
    [sim] = await ready
    assert (await advanced.get())[0] == "adobe_vip"
    async with session.get(sim.base_url + "/_admin/requests") as reply:
        assert reply.status == 200
    serving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await serving
    with pytest.raises(aiohttp.ClientConnectionError):
        async with session.get(sim.base_url + "/_admin/requests"):
            pass
