"""Fault injection on the simulator, shown on the Adobe VIP API over real sockets: statuses
in the vendor's error shape or a body of the fault's own, counts and order, targeting, slow,
malformed and truncated replies, what faults spare (the token endpoint, the admin API, the
idempotency cache), and a page limit lower than the API's.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
import pytest

from tests.adobe_api import CUSTOMER, PAGED, Api, five_orders
from tests.plugins.simulator import (
    AdobeSimulator,
    SimAdmin,
)

pytestmark = pytest.mark.timeout(5)


# Faults


async def test_a_throttle_fault_says_when_to_retry(api: Api, sim_admin: SimAdmin) -> None:
    await sim_admin.fault(kind="status", status=429)
    throttled, after = await api.orders(), await api.orders()
    assert (throttled.status, throttled.headers["Retry-After"]) == (429, "1")
    assert throttled.json() == {
        "code": "4118",
        "message": "Too many requests",
        "additionalDetails": [],
    }
    assert after.status == 200


@pytest.mark.parametrize(
    ("status", "code"), [(401, "4116"), (403, "4115"), (500, "1124"), (503, "1124"), (418, "418")]
)
async def test_an_injected_status_speaks_adobe_error_codes(
    api: Api, sim_admin: SimAdmin, status: int, code: str
) -> None:
    await sim_admin.fault(kind="status", status=status)
    reply = await api.orders()
    assert (reply.status, reply.code()) == (status, code)
    assert "Retry-After" not in reply.headers
    assert (await sim_admin.requests())[-1]["status"] == status


async def test_a_status_fault_can_answer_a_body_of_its_own(api: Api, sim_admin: SimAdmin) -> None:
    echoed = {"code": "5117", "message": "key echoed-back-value is not entitled"}
    await sim_admin.fault(kind="status", status=403, body=echoed)
    refused = await api.orders()
    assert (refused.status, refused.json()) == (403, echoed)


async def test_a_fault_hits_count_requests(api: Api, sim_admin: SimAdmin) -> None:
    await sim_admin.fault(kind="status", status=503, retry_after_s=2, count=2)
    replies = [await api.orders() for _ in range(3)]
    assert [reply.status for reply in replies] == [503, 503, 200]
    assert replies[0].headers["Retry-After"] == "2"
    assert replies[0].code() == "1124"


async def test_an_endless_fault_lasts_until_cleared(api: Api, sim_admin: SimAdmin) -> None:
    await sim_admin.fault(kind="status", status=500, count=-1)
    statuses = [(await api.orders()).status for _ in range(3)]
    assert await sim_admin.clear_faults() == 1
    assert statuses == [500, 500, 500]
    assert (await api.orders()).status == 200


async def test_faults_apply_in_order_of_creation(api: Api, sim_admin: SimAdmin) -> None:
    await sim_admin.fault(kind="status", status=500)
    await sim_admin.fault(kind="status", status=429)
    assert [(await api.orders()).status for _ in range(3)] == [500, 429, 200]


async def test_a_fault_can_target_one_page(api: Api, sim_admin: SimAdmin) -> None:
    await five_orders(sim_admin)
    await sim_admin.fault(kind="status", status=500, path_contains="offset=2")
    first = await api.orders(PAGED, params=[("limit", "2")])
    second = await api.get(first.json()["links"]["next"]["uri"])
    retried = await api.get(first.json()["links"]["next"]["uri"])
    assert (first.status, second.status, retried.status) == (200, 500, 200)


async def test_a_faulted_reply_is_not_cached(api: Api, sim_admin: SimAdmin) -> None:
    await sim_admin.fault(kind="status", status=503)
    path = f"/v3/customers/{CUSTOMER}/orders"
    failed = await api.get(path, headers={"X-Correlation-Id": "retry-me"})
    retried = await api.get(path, headers={"X-Correlation-Id": "retry-me"})
    assert (failed.status, retried.status) == (503, 200)


async def test_a_slow_fault_stalls_the_reply(api: Api, sim_admin: SimAdmin) -> None:
    await sim_admin.fault(kind="slow", delay_s=30)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await api.orders()
    await sim_admin.fault(kind="slow", delay_s=0.01)
    delayed = await api.orders()
    assert (delayed.status, delayed.json()["totalCount"]) == (200, 5)


async def test_a_malformed_fault_breaks_the_json(api: Api, sim_admin: SimAdmin) -> None:
    await sim_admin.fault(kind="malformed")
    reply = await api.orders()
    assert reply.status == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(reply.body)


async def test_a_truncated_fault_drops_required_fields(api: Api, sim_admin: SimAdmin) -> None:
    await sim_admin.fault(kind="truncated", count=2)
    page = await api.orders()
    order = await api.get(f"/v3/customers/{CUSTOMER}/orders/5120000001")
    assert page.status == order.status == 200
    assert "items" not in page.json()
    assert page.json()["totalCount"] == 5
    assert "lineItems" not in order.json()
    assert order.json()["orderId"] == "5120000001"


async def test_faults_spare_the_token_endpoint_and_admin(api: Api, sim_admin: SimAdmin) -> None:
    await sim_admin.fault(kind="status", status=500, count=-1)
    assert await sim_admin.token()
    assert (await sim_admin.create_customer("3000000001"))["customerId"] == "3000000001"
    assert (await api.orders()).status == 500


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "boom"},
        {"kind": "status", "count": 0},
        {"kind": "slow", "delay_s": -1},
        {"kind": "status", "status": 99},
        {"kind": "status", "when": "later"},
        {"kind": "status", "body": ["not", "an", "object"]},
    ],
)
async def test_a_fault_that_makes_no_sense_is_refused(
    session: aiohttp.ClientSession, adobe_sim: AdobeSimulator, spec: dict[str, Any]
) -> None:
    async with session.post(adobe_sim.base_url + "/_admin/faults", json=spec) as reply:
        assert reply.status == 400
    assert adobe_sim.state.faults.active() == []


# Paging


async def test_a_page_limit_cuts_every_page_to_it(api: Api, sim_admin: SimAdmin) -> None:
    await five_orders(sim_admin)
    await sim_admin.page_limit(2)
    page = (await api.orders(PAGED, params=[("limit", "100")])).json()
    await sim_admin.page_limit(None)
    whole = (await api.orders(PAGED, params=[("limit", "100")])).json()
    assert (page["count"], page["limit"], len(page["items"])) == (2, 2, 2)
    assert "limit=2" in page["links"]["next"]["uri"]
    assert len(whole["items"]) == 5


@pytest.mark.parametrize("limit", [0, -1, "2", True])
async def test_a_page_limit_that_makes_no_sense_is_refused(
    session: aiohttp.ClientSession, adobe_sim: AdobeSimulator, limit: object
) -> None:
    async with session.post(
        adobe_sim.base_url + "/_admin/paging", json={"page_limit": limit}
    ) as reply:
        assert reply.status == 400
    assert adobe_sim.state.page_limit is None
