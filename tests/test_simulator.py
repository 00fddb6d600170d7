"""The Adobe VIP simulator over real sockets: tokens, header checks, the idempotency cache,
paging and filters, errors, fault injection, admin calls, scenarios and the server loop.

Every call goes through aiohttp to 127.0.0.1; time moves only on the injected clock.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import uuid4

import aiohttp
import orjson
import pytest

from tests.plugins.simulator import SIM_CUSTOMERS, SIM_NOW, ManualClock, SimAdmin
from watcher.simulator import (
    CLIENT_ID,
    AdobeSimulator,
    AdobeVipState,
    Simulator,
    adobe,
    scenario,
    serve_forever,
)

pytestmark = pytest.mark.timeout(5)

CUSTOMER = SIM_CUSTOMERS[0]
PAGED = "2000000001"
Params = list[tuple[str, str]]


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        return orjson.loads(self.body)

    def code(self) -> str:
        return str(self.json()["code"])


class Api:
    """The vendor API with valid headers, unless a call overrides some (None drops one)."""

    def __init__(self, session: aiohttp.ClientSession, sim: AdobeSimulator, token: str) -> None:
        self.session = session
        self.sim = sim
        self.token = token

    def headers(self, overrides: Mapping[str, str | None] | None = None) -> dict[str, str]:
        headers: dict[str, str | None] = {
            "Authorization": f"Bearer {self.token}",
            "X-Api-Key": CLIENT_ID,
            "X-Correlation-Id": str(uuid4()),
            "X-Request-Id": str(uuid4()),
            "Accept": "application/json",
        }
        headers.update(overrides or {})
        return {name: value for name, value in headers.items() if value is not None}

    async def get(
        self,
        path: str,
        *,
        params: Params | None = None,
        headers: Mapping[str, str | None] | None = None,
    ) -> Reply:
        url = self.sim.base_url + path
        async with self.session.get(url, params=params, headers=self.headers(headers)) as reply:
            return Reply(reply.status, await reply.read(), dict(reply.headers))

    async def orders(self, customer_id: str = CUSTOMER, *, params: Params | None = None) -> Reply:
        return await self.get(f"/v3/customers/{customer_id}/orders", params=params)


@pytest.fixture
async def api(
    session: aiohttp.ClientSession, adobe_sim: AdobeSimulator, sim_admin: SimAdmin
) -> Api:
    return Api(session, adobe_sim, await sim_admin.token())


async def token_reply(session: aiohttp.ClientSession, sim: AdobeSimulator, **form: str) -> Reply:
    async with session.post(sim.token_url, data=form) as reply:
        return Reply(reply.status, await reply.read(), dict(reply.headers))


async def five_orders(admin: SimAdmin) -> list[str]:
    """Customer PAGED with five orders, one a day from 2026-11-01; their ids, newest first."""
    for day in range(1, 6):
        order = {"orderId": f"770000000{day}", "creationDate": f"2026-11-0{day}T08:00:00Z"}
        await admin.create_order(PAGED, order)
    return [f"770000000{day}" for day in range(5, 0, -1)]


# Tokens


async def test_token_is_issued_to_the_simulator_client(
    session: aiohttp.ClientSession, adobe_sim: AdobeSimulator
) -> None:
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID}
    reply = await token_reply(session, adobe_sim, client_secret="sim-secret", **form)
    body = reply.json()
    assert reply.status == 200
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 86399
    api = Api(session, adobe_sim, body["access_token"])
    assert (await api.orders()).status == 200


@pytest.mark.parametrize(
    ("client_id", "client_secret"),
    [("sim-client", "wrong"), ("someone-else", "sim-secret"), ("", "")],
)
async def test_token_is_refused_to_other_clients(
    session: aiohttp.ClientSession, adobe_sim: AdobeSimulator, client_id: str, client_secret: str
) -> None:
    reply = await token_reply(
        session,
        adobe_sim,
        grant_type="client_credentials",
        client_id=client_id,
        client_secret=client_secret,
    )
    assert reply.status == 400
    assert reply.json()["error"] == "invalid_client"


async def test_token_expires_on_the_injected_clock(api: Api, sim_clock: ManualClock) -> None:
    sim_clock.advance(86398)
    assert (await api.orders()).status == 200
    sim_clock.advance(1)
    expired = await api.orders()
    assert (expired.status, expired.code()) == (401, "4116")


async def test_token_lifetime_is_configurable(
    session: aiohttp.ClientSession,
    adobe_sim: AdobeSimulator,
    sim_admin: SimAdmin,
    sim_clock: ManualClock,
) -> None:
    adobe_sim.state.token_ttl_s = 60
    api = Api(session, adobe_sim, await sim_admin.token())
    sim_clock.advance(59)
    assert (await api.orders()).status == 200
    sim_clock.advance(1)
    assert (await api.orders()).status == 401


async def test_revoked_tokens_stop_working_and_new_ones_do(api: Api, sim_admin: SimAdmin) -> None:
    assert (await api.orders()).status == 200
    assert await sim_admin.revoke_tokens() >= 1
    revoked = await api.orders()
    assert (revoked.status, revoked.code()) == (401, "4116")
    api.token = await sim_admin.token()
    assert (await api.orders()).status == 200


# Header checks


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"Authorization": None}, 403, "4117"),
        ({"Authorization": "Bearer not-a-token"}, 401, "4116"),
        ({"Authorization": "Basic c2ltOnNlY3JldA=="}, 401, "4116"),
        ({"X-Api-Key": None}, 403, "4115"),
        ({"X-Api-Key": "another-client"}, 403, "4115"),
        ({"X-Correlation-Id": None}, 400, "4119"),
    ],
)
async def test_header_checks(
    api: Api, overrides: dict[str, str | None], status: int, code: str
) -> None:
    path = f"/v3/customers/{CUSTOMER}/orders"
    listed = await api.get(path, headers=overrides)
    single = await api.get(path + "/5120000001", headers=overrides)
    for reply in (listed, single):
        assert (reply.status, reply.code()) == (status, code)
        assert reply.json()["additionalDetails"] == []


async def test_a_reused_request_id_needs_its_own_correlation_id(api: Api) -> None:
    path = f"/v3/customers/{CUSTOMER}/orders"
    first = await api.get(path, headers={"X-Request-Id": "r-1", "X-Correlation-Id": "c-1"})
    again = await api.get(path, headers={"X-Request-Id": "r-1", "X-Correlation-Id": "c-1"})
    reused = await api.get(path, headers={"X-Request-Id": "r-1", "X-Correlation-Id": "c-2"})
    assert first.status == again.status == 200
    assert (reused.status, reused.code()) == (400, "4120")


# Idempotency cache


async def test_a_correlation_id_gets_the_earlier_reply_again(api: Api, sim_admin: SimAdmin) -> None:
    path = f"/v3/customers/{CUSTOMER}/orders/5120000001"
    first = await api.get(path, headers={"X-Correlation-Id": "poll-1"})
    await sim_admin.patch_order(CUSTOMER, "5120000001", {"status": "1000"})
    replayed = await api.get(path, headers={"X-Correlation-Id": "poll-1"})
    fresh = await api.get(path, headers={"X-Correlation-Id": "poll-2"})
    assert first.json()["status"] == "1002"
    assert (replayed.status, replayed.body) == (200, first.body)
    assert fresh.json()["status"] == "1000"


async def test_a_cached_error_is_replayed_with_its_status(api: Api, sim_admin: SimAdmin) -> None:
    path = f"/v3/customers/{CUSTOMER}/orders/5199999999"
    missing = await api.get(path, headers={"X-Correlation-Id": "c-404"})
    await sim_admin.create_order(CUSTOMER, {"orderId": "5199999999"})
    replayed = await api.get(path, headers={"X-Correlation-Id": "c-404"})
    assert (missing.status, missing.code()) == (404, "2115")
    assert (replayed.status, replayed.body) == (404, missing.body)
    assert (await api.get(path)).status == 200


async def test_failed_header_checks_are_not_cached(api: Api) -> None:
    path = f"/v3/customers/{CUSTOMER}/orders"
    bad = await api.get(path, headers={"Authorization": "Bearer x", "X-Correlation-Id": "c-9"})
    good = await api.get(path, headers={"X-Correlation-Id": "c-9"})
    assert (bad.status, good.status) == (401, 200)


async def test_cached_replies_expire_after_ten_days(
    api: Api, sim_admin: SimAdmin, sim_clock: ManualClock
) -> None:
    path = f"/v3/customers/{CUSTOMER}/orders/5120000001"
    await api.get(path, headers={"X-Correlation-Id": "old"})
    await sim_admin.patch_order(CUSTOMER, "5120000001", {"status": "1004"})
    sim_clock.advance(timedelta(days=10).total_seconds())
    api.token = await sim_admin.token()
    assert (await api.get(path, headers={"X-Correlation-Id": "old"})).json()["status"] == "1004"


# Listing and paging


async def test_pages_follow_links_newest_first_keeping_the_query(
    api: Api, sim_admin: SimAdmin
) -> None:
    newest_first = await five_orders(sim_admin)
    first = await api.orders(PAGED, params=[("limit", "2"), ("start-date", "2026-01-01")])
    body = first.json()
    assert (body["totalCount"], body["count"], body["offset"], body["limit"]) == (5, 2, 0, 2)
    assert body["links"]["self"]["uri"] == (
        f"/v3/customers/{PAGED}/orders?offset=0&limit=2&start-date=2026-01-01"
    )
    assert "prev" not in body["links"]
    seen, pages = [item["orderId"] for item in body["items"]], [body]
    while "next" in pages[-1]["links"]:
        uri = pages[-1]["links"]["next"]["uri"]
        assert "start-date=2026-01-01" in uri
        pages.append((await api.get(uri)).json())
        seen += [item["orderId"] for item in pages[-1]["items"]]
    assert seen == newest_first
    assert [page["offset"] for page in pages] == [0, 2, 4]
    assert pages[1]["links"]["prev"]["uri"].startswith(f"/v3/customers/{PAGED}/orders?offset=0&")
    assert pages[2]["count"] == 1


async def test_limit_defaults_to_25_and_is_clamped_to_100(api: Api) -> None:
    assert (await api.orders()).json()["limit"] == 25
    assert (await api.orders(params=[("limit", "500")])).json()["limit"] == 100


async def test_offset_past_the_total_is_1133(api: Api, sim_admin: SimAdmin) -> None:
    await five_orders(sim_admin)
    past = await api.orders(PAGED, params=[("offset", "6")])
    at_end = (await api.orders(PAGED, params=[("offset", "5"), ("limit", "2")])).json()
    assert (past.status, past.code()) == (400, "1133")
    assert (at_end["count"], at_end["items"]) == (0, [])
    assert "next" not in at_end["links"]
    assert "offset=3&limit=2" in at_end["links"]["prev"]["uri"]


@pytest.mark.parametrize(
    "params",
    [
        [("limit", "0")],
        [("limit", "ten")],
        [("offset", "-1")],
        [("start-date", "yesterday")],
        [("end-date", "2026-11-20T10:00:00+01:00")],
    ],
)
async def test_unreadable_search_parameters_are_1132(api: Api, params: Params) -> None:
    reply = await api.orders(params=params)
    assert (reply.status, reply.code()) == (400, "1132")


async def test_the_date_window_defaults_to_the_last_365_days(api: Api, sim_admin: SimAdmin) -> None:
    await sim_admin.create_order(PAGED, {"orderId": "1", "creationDate": "2025-11-01T00:00:00Z"})
    await sim_admin.create_order(PAGED, {"orderId": "2", "creationDate": "2026-06-01T00:00:00Z"})
    await sim_admin.create_order(PAGED, {"orderId": "3"})

    async def ids(*params: tuple[str, str]) -> list[str]:
        reply = await api.orders(PAGED, params=list(params))
        return [item["orderId"] for item in reply.json()["items"]]

    assert await ids() == ["3", "2"]
    assert await ids(("start-date", "2025-01-01")) == ["3", "2", "1"]
    assert await ids(("start-date", "2025-01-01"), ("end-date", "2026-06-01T00:00:00Z")) == [
        "2",
        "1",
    ]
    assert await ids(("end-date", "2026-11-20")) == ["2"]


async def test_filters_are_ored_within_a_parameter_and_anded_across(
    api: Api, sim_admin: SimAdmin
) -> None:
    for order_id, status, order_type in [
        ("1", "1000", "NEW"),
        ("2", "1002", "NEW"),
        ("3", "1004", "RENEWAL"),
        ("4", "1000", "RENEWAL"),
    ]:
        await sim_admin.create_order(
            PAGED, {"orderId": order_id, "status": status, "orderType": order_type}
        )

    async def ids(*params: tuple[str, str]) -> set[str]:
        reply = await api.orders(PAGED, params=list(params))
        return {item["orderId"] for item in reply.json()["items"]}

    assert await ids(("status", "1000"), ("status", "1002")) == {"1", "2", "4"}
    assert await ids(("status", "1000"), ("order-type", "RENEWAL")) == {"4"}
    assert await ids(("status", "1026")) == set()


async def test_an_unknown_customer_is_1116(api: Api) -> None:
    listed = await api.orders("9999999999")
    single = await api.get("/v3/customers/9999999999/orders/5120000001")
    assert (listed.status, listed.json()) == (
        404,
        {"code": "1116", "message": "Invalid Customer", "additionalDetails": []},
    )
    assert (single.status, single.code()) == (404, "1116")


async def test_a_single_order_and_an_unknown_one(api: Api, sim_admin: SimAdmin) -> None:
    stored = await sim_admin.create_order(
        CUSTOMER, {"orderId": "5190000001", "lineItems": [{"quantity": 5}]}
    )
    found = await api.get(f"/v3/customers/{CUSTOMER}/orders/5190000001")
    missing = await api.get(f"/v3/customers/{CUSTOMER}/orders/5190000002")
    assert (found.status, found.json()) == (200, stored)
    assert stored["links"]["self"]["uri"] == f"/v3/customers/{CUSTOMER}/orders/5190000001"
    assert (missing.status, missing.code()) == (404, "2115")


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
    ],
)
async def test_a_fault_that_makes_no_sense_is_refused(
    session: aiohttp.ClientSession, adobe_sim: AdobeSimulator, spec: dict[str, Any]
) -> None:
    async with session.post(adobe_sim.base_url + "/_admin/faults", json=spec) as reply:
        assert reply.status == 400
    assert adobe_sim.state.faults.active() == []


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
            [adobe.api(state)],
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
