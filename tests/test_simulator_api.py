"""The Adobe VIP simulator's vendor API over real sockets: tokens, header checks, the
idempotency cache, paging and filters, and its errors.

Every call goes through aiohttp to 127.0.0.1; time moves only on the injected clock.
"""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import pytest

from tests.adobe_api import CUSTOMER, PAGED, Api, Params, five_orders, token_reply
from tests.plugins.simulator import (
    AdobeSimulator,
    ManualClock,
    SimAdmin,
)
from watcher.simulator.adobe_vip.world import CLIENT_ID

pytestmark = pytest.mark.timeout(5)


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
