"""The Partner Center simulator over real sockets: Entra ID tokens (both grants), the
order collection and order shapes, the listing lag, provisioningstatus and its app+user
requirement, error and throttling bodies, trace headers, the request log, admin calls and
the scripted lifecycles. Time moves only on the injected clock.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import aiohttp
import pytest

from tests.plugins.partner_center import PcAdmin, PcSimulator
from tests.plugins.simulator import SIM_NOW, ManualClock
from watcher.simulator import partner_center
from watcher.simulator.partner_center import routes
from watcher.simulator.partner_center import scenario as partner_center_scenario
from watcher.simulator.partner_center.world import (
    CLIENT_ID,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    RESOURCE,
    PartnerCenterState,
)

pytestmark = pytest.mark.timeout(5)


async def get(
    session: aiohttp.ClientSession,
    sim: PcSimulator,
    path: str,
    *,
    token: str | None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, Any, Mapping[str, str]]:
    sent = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.get(sim.base_url + path, headers=sent | dict(headers or {})) as reply:
        return reply.status, await reply.json(), reply.headers


async def token_reply(
    session: aiohttp.ClientSession, url: str, **form: str
) -> tuple[int, dict[str, Any]]:
    base = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "resource": RESOURCE}
    async with session.post(url, data=base | form) as reply:
        return reply.status, await reply.json()


async def test_both_grants_issue_tokens_shaped_like_entra_id(
    pc_sim: PcSimulator, session: aiohttp.ClientSession
) -> None:
    app_status, app = await token_reply(session, pc_sim.token_url, grant_type="client_credentials")
    user_status, user = await token_reply(
        session, pc_sim.token_url, grant_type="refresh_token", refresh_token=REFRESH_TOKEN
    )

    assert (app_status, user_status) == (200, 200)
    assert (app["token_type"], app["expires_in"], app["resource"]) == ("Bearer", "3600", RESOURCE)
    assert int(app["expires_on"]) == int(SIM_NOW.timestamp()) + 3600
    assert "refresh_token" not in app
    assert (user["expires_in"], user["refresh_token"]) == ("3599", REFRESH_TOKEN)


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"grant_type": "client_credentials", "client_secret": "nope"}, 401, "invalid_client"),
        ({"grant_type": "refresh_token", "refresh_token": "stale"}, 400, "invalid_grant"),
        ({"grant_type": "client_credentials", "resource": "https://x"}, 400, "invalid_resource"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
    ],
)
async def test_the_token_endpoint_refuses_with_oauth_errors(
    pc_sim: PcSimulator,
    session: aiohttp.ClientSession,
    form: dict[str, str],
    status: int,
    error: str,
) -> None:
    got, body = await token_reply(session, pc_sim.token_url, **form)
    assert (got, body["error"]) == (status, error)
    assert body["error_description"].startswith("AADSTS")


async def test_an_unknown_tenant_is_refused(
    pc_sim: PcSimulator, session: aiohttp.ClientSession
) -> None:
    url = pc_sim.base_url + "/00000000-0000-0000-0000-000000000000/oauth2/token"
    status, body = await token_reply(session, url, grant_type="client_credentials")
    assert (status, body["error"]) == (400, "invalid_request")


async def test_the_collection_has_partner_centers_shape(
    pc_sim: PcSimulator, pc_admin: PcAdmin, pc_customer: str, session: aiohttp.ClientSession
) -> None:
    token = await pc_admin.token()
    status, body, headers = await get(
        session, pc_sim, f"/v1/customers/{pc_customer}/orders", token=token
    )

    assert status == 200
    assert set(body) == {"totalCount", "items", "links", "attributes"}
    assert body["totalCount"] == len(body["items"]) == 5
    assert body["attributes"] == {"objectType": "Collection"}
    order = body["items"][0]
    assert order["referenceCustomerId"] == pc_customer
    assert order["status"] in {"pending", "completed"}
    assert order["attributes"] == {"objectType": "Order"}
    assert order["creationDate"].endswith("Z")
    assert len(order["creationDate"].split(".")[1]) == 8  # seven digits and the Z
    line = order["lineItems"][0]
    assert {"lineItemNumber", "offerId", "friendlyName", "quantity", "termDuration"} <= set(line)
    assert order["links"]["provisioningStatus"]["uri"].endswith("/provisioningstatus")
    assert headers["MS-RequestId"]
    assert headers["MS-CorrelationId"]


async def test_the_provisioning_link_appears_only_when_populated(
    pc_admin: PcAdmin, pc_customer: str
) -> None:
    bare = await pc_admin.create_order(pc_customer, {"lineItems": [{"provisioning": None}]})
    assert "provisioningStatus" not in bare["links"]

    populated = await pc_admin.set_provisioning(pc_customer, bare["id"], {"0": "fulfilled"})

    assert populated["items"][0]["status"] == "fulfilled"


async def test_a_new_order_is_found_by_id_at_once_and_listed_after_the_lag(
    pc_sim: PcSimulator,
    pc_admin: PcAdmin,
    pc_customer: str,
    sim_clock: ManualClock,
    session: aiohttp.ClientSession,
) -> None:
    created = await pc_admin.create_order(pc_customer, {"status": "pending"})
    token = await pc_admin.token()
    orders = f"/v1/customers/{pc_customer}/orders"

    by_id_status, by_id, _ = await get(session, pc_sim, f"{orders}/{created['id']}", token=token)
    _, early, _ = await get(session, pc_sim, orders, token=token)
    sim_clock.advance(120)
    _, late, _ = await get(session, pc_sim, orders, token=token)

    assert (by_id_status, by_id["id"]) == (200, created["id"])
    assert created["id"] not in {item["id"] for item in early["items"]}
    assert created["id"] in {item["id"] for item in late["items"]}


async def test_provisioningstatus_needs_an_app_user_token(
    pc_sim: PcSimulator, pc_admin: PcAdmin, pc_customer: str, session: aiohttp.ClientSession
) -> None:
    order_id = pc_sim.state.stored(pc_customer)[0].payload["id"]
    path = f"/v1/customers/{pc_customer}/orders/{order_id}/provisioningstatus"

    app_status, refused, _ = await get(session, pc_sim, path, token=await pc_admin.token())
    user_status, body, _ = await get(session, pc_sim, path, token=await pc_admin.token("user"))

    assert app_status == 403
    assert set(refused) == {"code", "description", "data", "source"}
    assert user_status == 200
    assert body["attributes"] == {"objectType": "Collection"}
    item = body["items"][0]
    assert (item["lineItemNumber"], item["status"]) == (0, "fulfilled")
    assert item["quantityProvisioningInformation"][0]["status"] == "fulfilled"


async def test_missing_expired_and_revoked_tokens_get_401(
    pc_sim: PcSimulator,
    pc_admin: PcAdmin,
    pc_customer: str,
    sim_clock: ManualClock,
    session: aiohttp.ClientSession,
) -> None:
    path = f"/v1/customers/{pc_customer}/orders"
    token = await pc_admin.token()
    assert (await get(session, pc_sim, path, token=None))[0] == 401
    sim_clock.advance(3599)
    assert (await get(session, pc_sim, path, token=token))[0] == 200
    sim_clock.advance(1)
    status, body, _ = await get(session, pc_sim, path, token=token)
    assert (status, body["source"]) == (401, "PartnerFD")
    fresh = await pc_admin.token()
    assert await pc_admin.revoke_tokens() == 2
    assert (await get(session, pc_sim, path, token=fresh))[0] == 401


async def test_unknown_customers_and_orders_are_404(
    pc_sim: PcSimulator, pc_admin: PcAdmin, pc_customer: str, session: aiohttp.ClientSession
) -> None:
    token = await pc_admin.token()
    status, body, _ = await get(session, pc_sim, "/v1/customers/nobody/orders", token=token)
    assert (status, body["code"]) == (404, 404)
    path = f"/v1/customers/{pc_customer}/orders/nothing"
    assert (await get(session, pc_sim, path, token=token))[0] == 404


async def test_injected_throttling_has_the_gateway_body_and_retry_after(
    pc_sim: PcSimulator, pc_admin: PcAdmin, pc_customer: str, session: aiohttp.ClientSession
) -> None:
    await pc_admin.fault(kind="status", status=429, retry_after_s=57)
    path = f"/v1/customers/{pc_customer}/orders"

    status, body, headers = await get(session, pc_sim, path, token=await pc_admin.token())

    assert status == 429
    assert headers["Retry-After"] == "57"
    assert body["statusCode"] == 429
    assert body["message"].startswith("Rate limit is exceeded")


async def test_trace_headers_are_echoed_and_logged(
    pc_sim: PcSimulator, pc_admin: PcAdmin, pc_customer: str, session: aiohttp.ClientSession
) -> None:
    trace = {"MS-RequestId": "req-1", "MS-CorrelationId": "corr-1"}
    path = f"/v1/customers/{pc_customer}/orders"

    _, _, headers = await get(session, pc_sim, path, token=await pc_admin.token(), headers=trace)

    assert (headers["MS-RequestId"], headers["MS-CorrelationId"]) == ("req-1", "corr-1")
    [entry] = [e for e in await pc_admin.requests() if e["path_qs"] == path]
    assert entry["headers"] == trace | {"MS-ContinuationToken": None, "Authorization-present": True}


async def test_an_invalid_patch_changes_nothing(
    pc_sim: PcSimulator, pc_admin: PcAdmin, pc_customer: str, session: aiohttp.ClientSession
) -> None:
    order = pc_sim.state.stored(pc_customer)[0]
    before = dict(order.payload)
    url = f"{pc_sim.base_url}/_admin/customers/{pc_customer}/orders/{before['id']}"
    patch = {"status": "completed", "lineItems": [{"lineItemNumber": 9, "quantity": 2}]}

    async with session.patch(url, json=patch) as reply:
        status, body = reply.status, await reply.json()

    assert (status, body["code"]) == (400, "invalid-request")
    assert order.payload == before


async def test_scripted_lifecycles_are_deterministic_and_cover_every_transition() -> None:
    kinds: set[str] = set()
    stories = []
    for _ in range(2):
        clock = ManualClock(SIM_NOW)
        now = clock()
        state = PartnerCenterState(clock, random.Random(5))
        partner_center_scenario.seed(state, customers=3, orders_per_customer=6, now=now)
        rng = random.Random(11)
        story = [
            c.to_json() for _ in range(40) for c in partner_center_scenario.advance(state, rng, now)
        ]
        stories.append(story)
        kinds |= {change["kind"] for change in story}
    assert stories[0] == stories[1]
    assert kinds == {"created", "completed", "cancelled", "fulfilled", "quantity_changed"}


async def test_advance_over_http_reports_its_changes(pc_admin: PcAdmin) -> None:
    changes = [change for _ in range(10) for change in await pc_admin.advance()]
    assert changes
    assert {"kind", "customerId", "orderId", "lineItemNumber"} <= set(changes[0])


def test_the_vendor_api_is_named_partner_center() -> None:
    api = partner_center.api(PartnerCenterState())
    assert api.name == partner_center.NAME == "partner_center"
    assert api.wire.token_path == routes.TOKEN_PATH
