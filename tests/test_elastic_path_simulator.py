"""The Elastic Path simulator over real sockets: its replies against the vendor's OpenAPI
documents, filtering, sorting and paging, the offset cap, tokens, errors, admin edits and
scripted lifecycles.

Every kind of reply the simulator gives (token, token error, order list, single order,
items, /v2 error) is validated against elasticpath/cartsorders.openapi.yaml or
authentication.openapi.yaml, so the simulator cannot drift from the published shapes. Where
a document is loose or self-contradictory, a stricter check of the documented shape is
layered on top (see each test).
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest
from jsonschema import Draft202012Validator

from tests.openapi import Spec
from tests.plugins.elastic_path import (
    EP_ACCOUNT,
    EP_CUSTOMERS,
    EP_OPEN_ORDERS,
    EP_ORDERS_PER_OWNER,
    EpAdmin,
    EpSimulator,
)
from tests.plugins.simulator import SIM_NOW, ManualClock
from watcher.simulator.elastic_path import listing
from watcher.simulator.elastic_path import scenario as elastic_path_scenario
from watcher.simulator.elastic_path.orders import ApiError
from watcher.simulator.elastic_path.world import CLIENT_ID, CLIENT_SECRET, ElasticPathState

ORDERS = Spec.load("elasticpath/cartsorders.openapi.yaml")
AUTH = Spec.load("elasticpath/authentication.openapi.yaml")
V2_ERROR = {
    "type": "object",
    "required": ["errors"],
    "properties": {
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["status", "title"],
                "properties": {
                    "status": {"type": "integer"},
                    "title": {"type": "string"},
                    "detail": {"type": "string"},
                },
            },
        }
    },
}


async def get(
    session: aiohttp.ClientSession, sim: EpSimulator, path: str, token: str | None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.get(sim.base_url + path, headers=headers) as reply:
        return reply.status, await reply.json()


def check_v2_error(body: Any, status: int) -> None:
    """The cartsorders document types Response.Error as the `errors` array itself (its
    item fields are not reachable from there); the errors guide gives the object shape."""
    ORDERS.validate_component(body["errors"], "Response.Error")
    Draft202012Validator(V2_ERROR).validate(body)
    assert body["errors"][0]["status"] == status


def without_null_links(body: dict[str, Any]) -> dict[str, Any]:
    """The document types every link as a string yet says next/prev/last are null when
    there is no such page; the simulator follows the description."""
    links = body["links"]
    assert {key for key, value in links.items() if value is None} <= {"next", "prev", "last"}
    return body | {"links": {key: value for key, value in links.items() if value is not None}}


def customer_filter(customer_id: str, *extra: str) -> str:
    return "filter=" + ":".join((f"eq(customer_id,{customer_id})", *extra))


# --- the published shapes --------------------------------------------------------------


async def test_token_reply_matches_the_documents(
    ep_sim: EpSimulator, session: aiohttp.ClientSession
) -> None:
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID}
    async with session.post(ep_sim.token_url, data=form | {"client_secret": CLIENT_SECRET}) as r:
        assert r.status == 200
        body = await r.json()

    AUTH.validate(body, path="/oauth/access_token", method="post", status=200)
    AUTH.validate_component(body, "Bearer")
    assert body["token_type"] == "Bearer"
    assert body["identifier"] == "client_credentials"
    assert body["expires_in"] == 3600
    assert body["expires"] == int((SIM_NOW + timedelta(hours=1)).timestamp())


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "x"}, 401),
        ({"grant_type": "implicit", "client_id": CLIENT_ID}, 400),
    ],
)
async def test_token_errors_match_the_authentication_document(
    ep_sim: EpSimulator, session: aiohttp.ClientSession, form: dict[str, str], status: int
) -> None:
    async with session.post(ep_sim.token_url, data=form) as reply:
        assert reply.status == status
        body = await reply.json()

    AUTH.validate_component(body, "ErrorResponse")
    assert body["errors"][0]["status"] == str(status)


async def test_order_list_matches_the_document(
    ep_sim: EpSimulator, ep_admin: EpAdmin, session: aiohttp.ClientSession
) -> None:
    token = await ep_admin.token()
    path = f"/v2/orders?{customer_filter(EP_CUSTOMERS[0])}&page[limit]=2&include=items"

    status, body = await get(session, ep_sim, path, token)

    assert status == 200
    ORDERS.validate(without_null_links(body), path="/v2/orders")
    for item in body["included"]["items"]:
        ORDERS.validate_component(item, "OrderItemResponse")
    assert len(body["data"]) == 2
    assert body["meta"] == {
        "page": {"current": 1, "limit": 2, "offset": 0, "total": 3},
        "results": {"total": EP_ORDERS_PER_OWNER},
    }


async def test_single_order_and_items_match_the_document(
    ep_sim: EpSimulator, ep_admin: EpAdmin, session: aiohttp.ClientSession
) -> None:
    token = await ep_admin.token()
    order_id = EP_OPEN_ORDERS[0]

    status, order = await get(session, ep_sim, f"/v2/orders/{order_id}?include=items", token)
    items_status, items = await get(session, ep_sim, f"/v2/orders/{order_id}/items", token)

    assert (status, items_status) == (200, 200)
    ORDERS.validate(order, path="/v2/orders/{orderID}")
    ORDERS.validate(items, path="/v2/orders/{orderID}/items")
    ORDERS.validate_component(order["data"], "OrderResponse")
    assert order["included"]["items"] == items["data"]
    assert [ref["id"] for ref in order["data"]["relationships"]["items"]["data"]] == [
        item["id"] for item in items["data"]
    ]
    assert order["data"]["relationships"]["customer"]["data"]["id"] == EP_CUSTOMERS[0]
    assert (order["data"]["status"], order["data"]["payment"], order["data"]["shipping"]) == (
        "incomplete",
        "unpaid",
        "unfulfilled",
    )


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v2/orders/no-such-order", 404),
        ("/v2/orders?filter=eq(colour,red)", 400),
        ("/v2/orders?page[offset]=10001", 400),
        ("/v2/orders?sort=colour", 400),
    ],
)
async def test_v2_errors_use_the_vendor_envelope(
    ep_sim: EpSimulator,
    ep_admin: EpAdmin,
    session: aiohttp.ClientSession,
    path: str,
    status: int,
) -> None:
    got, body = await get(session, ep_sim, path, await ep_admin.token())

    assert got == status
    check_v2_error(body, status)


async def test_bad_or_missing_tokens_get_401(
    ep_sim: EpSimulator, ep_admin: EpAdmin, session: aiohttp.ClientSession
) -> None:
    token = await ep_admin.token()
    assert (await get(session, ep_sim, "/v2/orders", None))[0] == 401
    status, body = await get(session, ep_sim, "/v2/orders", "not-a-token")
    await ep_admin.revoke_tokens()
    revoked, _ = await get(session, ep_sim, "/v2/orders", token)

    assert (status, revoked) == (401, 401)
    check_v2_error(body, 401)
    assert body["errors"][0]["title"] == "Unable to validate access token"


async def test_tokens_expire_after_an_hour(
    ep_sim: EpSimulator,
    ep_admin: EpAdmin,
    sim_clock: ManualClock,
    session: aiohttp.ClientSession,
) -> None:
    token = await ep_admin.token()
    sim_clock.advance(3599)
    assert (await get(session, ep_sim, "/v2/orders", token))[0] == 200
    sim_clock.advance(1)
    assert (await get(session, ep_sim, "/v2/orders", token))[0] == 401


@pytest.mark.parametrize(("status", "title"), [(429, "Too Many Requests"), (503, None)])
async def test_injected_faults_use_the_vendor_envelope(
    ep_sim: EpSimulator,
    ep_admin: EpAdmin,
    session: aiohttp.ClientSession,
    status: int,
    title: str | None,
) -> None:
    await ep_admin.fault(kind="status", status=status)

    got, body = await get(session, ep_sim, "/v2/orders", await ep_admin.token())

    assert got == status
    check_v2_error(body, status)
    if title is not None:
        assert body["errors"][0]["title"] == title
    else:
        assert body["errors"][0]["request_id"]


async def test_a_truncated_reply_loses_its_data(
    ep_sim: EpSimulator, ep_admin: EpAdmin, session: aiohttp.ClientSession
) -> None:
    await ep_admin.fault(kind="truncated")

    status, body = await get(session, ep_sim, "/v2/orders", await ep_admin.token())

    assert status == 200
    assert "data" not in body
    assert body["meta"]["results"]["total"] == 3 * EP_ORDERS_PER_OWNER


# --- filtering, sorting, paging ----------------------------------------------------------


async def list_ids(
    session: aiohttp.ClientSession, sim: EpSimulator, token: str, query: str
) -> list[str]:
    status, body = await get(session, sim, f"/v2/orders?{query}", token)
    assert status == 200, body
    return [order["id"] for order in body["data"]]


async def test_filters_by_customer_and_by_account(
    ep_sim: EpSimulator, ep_admin: EpAdmin, session: aiohttp.ClientSession
) -> None:
    token = await ep_admin.token()
    state = ep_sim.state

    for attribute, owner in [("customer_id", EP_CUSTOMERS[1]), ("account_id", EP_ACCOUNT)]:
        ids = await list_ids(session, ep_sim, token, f"filter=eq({attribute},{owner})")
        expected = {o.id for o in state.all_orders() if getattr(o, attribute) == owner}
        assert set(ids) == expected
        assert len(ids) == EP_ORDERS_PER_OWNER


async def test_filters_combine_with_time_clauses(
    ep_sim: EpSimulator, ep_admin: EpAdmin, session: aiohttp.ClientSession
) -> None:
    token = await ep_admin.token()
    orders = [o for o in ep_sim.state.all_orders() if o.customer_id == EP_CUSTOMERS[0]]
    cut = orders[2].created_at

    for value in (cut.strftime("%Y-%m-%dT%H:%M:%S.000Z"), str(int(cut.timestamp() * 1000))):
        query = customer_filter(EP_CUSTOMERS[0], f"ge(created_at,{value})") + "&sort=created_at"
        assert await list_ids(session, ep_sim, token, query) == [o.id for o in orders[2:]]
    by_status = customer_filter(EP_CUSTOMERS[0], "eq(status,incomplete)")
    assert set(await list_ids(session, ep_sim, token, by_status)) == set(EP_OPEN_ORDERS[:2])


async def test_updated_at_moves_on_every_change(
    ep_sim: EpSimulator, ep_admin: EpAdmin, session: aiohttp.ClientSession
) -> None:
    token = await ep_admin.token()
    since = customer_filter(EP_CUSTOMERS[0], "ge(updated_at,2026-11-20T10:00:00.000Z)")
    assert await list_ids(session, ep_sim, token, since) == []

    first = await ep_admin.patch_order(EP_OPEN_ORDERS[0], {"payment": "paid"})
    second = await ep_admin.patch_order(EP_OPEN_ORDERS[0], {"status": "processing"})

    assert await list_ids(session, ep_sim, token, since) == [EP_OPEN_ORDERS[0]]
    # The clock stood still, yet each change has its own updated_at.
    assert first["meta"]["timestamps"]["updated_at"] == "2026-11-20T10:00:00.000Z"
    assert second["meta"]["timestamps"]["updated_at"] == "2026-11-20T10:00:00.001Z"


async def test_pages_are_linked_and_sorted(
    ep_sim: EpSimulator, ep_admin: EpAdmin, session: aiohttp.ClientSession
) -> None:
    token = await ep_admin.token()
    query = f"{customer_filter(EP_ACCOUNT).replace('customer_id', 'account_id')}&sort=created_at"

    _, first = await get(session, ep_sim, f"/v2/orders?{query}&page[limit]=2", token)
    _, last = await get(session, ep_sim, f"/v2/orders?{query}&page[limit]=2&page[offset]=4", token)
    _, newest = await get(session, ep_sim, "/v2/orders?page[limit]=100", token)

    links = {key: unquote(value) if value else value for key, value in first["links"].items()}
    assert links["prev"] is None
    assert links["next"].startswith(ep_sim.base_url + "/v2/orders?page[offset]=2&page[limit]=2")
    assert "sort=created_at" in links["next"]
    assert f"eq(account_id,{EP_ACCOUNT})" in links["next"]
    assert "page[offset]=4" in unquote(first["links"]["last"])
    assert (last["links"]["next"], last["meta"]["page"]["current"]) == (None, 3)
    created = [o["meta"]["timestamps"]["created_at"] for o in first["data"] + last["data"]]
    assert created == sorted(created)
    updated = [o["meta"]["timestamps"]["updated_at"] for o in newest["data"]]
    assert updated == sorted(updated, reverse=True)


async def test_page_limit_is_clamped_to_100(
    ep_sim: EpSimulator, ep_admin: EpAdmin, session: aiohttp.ClientSession
) -> None:
    _, body = await get(session, ep_sim, "/v2/orders?page[limit]=500", await ep_admin.token())
    assert body["meta"]["page"]["limit"] == 100


def test_an_unfiltered_listing_of_a_big_store_is_refused(sim_clock: ManualClock) -> None:
    state = ElasticPathState(sim_clock, random.Random(1))
    for _ in range(listing.OFFSET_CAP + 1):
        state.create_order({"customer_id": "c1"})

    with pytest.raises(ApiError, match="use a filter"):
        state.list_orders(listing.parse({}), url="http://sim/v2/orders")
    page = state.list_orders(listing.parse({"filter": "eq(customer_id,c1)"}), url="http://x")
    assert page["meta"]["results"]["total"] == listing.OFFSET_CAP + 1


async def test_a_store_with_a_lower_offset_cap_refuses_offsets_past_it(
    ep_sim: EpSimulator, ep_admin: EpAdmin, session: aiohttp.ClientSession
) -> None:
    ep_sim.state.offset_cap = 4
    token = await ep_admin.token()

    listing = "/v2/orders?filter=ge(created_at,2000-01-01)&page[offset]="
    status, _ = await get(session, ep_sim, listing + "4", token)
    refused, body = await get(session, ep_sim, listing + "5", token)
    unfiltered, refusal = await get(session, ep_sim, "/v2/orders", token)

    assert (status, refused, unfiltered) == (200, 400, 400)
    assert "cannot be greater than 4" in str(body)
    assert "more than 4 orders" in str(refusal)


# --- admin edits and lifecycles ------------------------------------------------------------


async def test_admin_edits_items_and_rejects_bad_patches(
    ep_sim: EpSimulator, ep_admin: EpAdmin, session: aiohttp.ClientSession
) -> None:
    created = await ep_admin.create_order(
        {"customer_id": EP_CUSTOMERS[1], "items": [{"sku": "A", "quantity": 2}]}
    )
    [ref] = created["relationships"]["items"]["data"]
    await ep_admin.patch_order(
        created["id"],
        {"items": [{"id": ref["id"], "quantity": 7}], "add_items": [{"sku": "B", "quantity": 1}]},
    )
    url = f"{ep_sim.base_url}/_admin/orders/{created['id']}"
    async with session.patch(url, json={"items": [{"id": "nope", "quantity": 1}]}) as reply:
        assert reply.status == 400
        check_v2_error(await reply.json(), 400)

    _, items = await get(
        session, ep_sim, f"/v2/orders/{created['id']}/items", await ep_admin.token()
    )
    assert [(item["sku"], item["quantity"]) for item in items["data"]] == [("A", 7), ("B", 1)]


def test_seeding_is_deterministic(sim_clock: ManualClock) -> None:
    def world() -> list[tuple[Any, ...]]:
        state = ElasticPathState(sim_clock, random.Random(5))
        elastic_path_scenario.seed(state, customers=2, orders_per_customer=4, now=SIM_NOW)
        return [(o.id, o.customer_id, o.status, len(o.items)) for o in state.all_orders()]

    assert world() == world()


async def test_advance_walks_the_scripted_lifecycles(
    ep_sim: EpSimulator, ep_admin: EpAdmin, sim_clock: ManualClock
) -> None:
    kinds: set[tuple[str, Any, Any]] = set()
    for _ in range(30):
        sim_clock.advance(60)
        for change in await ep_admin.advance():
            kinds.add((change["kind"], change["before"], change["after"]))
            if change["kind"] != "created":
                order = ep_sim.state.stored(change["order_id"])
                assert order.updated_at >= sim_clock.now

    assert ("payment", "unpaid", "paid") in kinds
    assert ("status", "incomplete", "processing") in kinds
    assert ("shipping", "unfulfilled", "fulfilled") in kinds
    assert ("status", "processing", "complete") in kinds
    assert ("status", "incomplete", "cancelled") in kinds
    assert "quantity" in {kind for kind, _, _ in kinds}
    assert "created" in {kind for kind, _, _ in kinds}
