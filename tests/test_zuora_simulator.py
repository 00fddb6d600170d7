"""The Zuora Quickstart simulator over real sockets, checked against Zuora's OpenAPI document.

Every kind of reply the simulator gives (order list, single order, line-item continuation,
the errors of every documented status, injected faults and queued vendor errors) is
validated against tests/specs/zuora/quickstart-v2.openapi.yaml, whose paths are relative
to /v2, so the simulator cannot drift from the vendor's shapes. Also: filters, expansion,
cursors, RateLimit-* and trace headers on every reply, the rate budget, admin validation,
and deterministic seeding and scenarios.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.openapi import Spec
from tests.plugins.simulator import SIM_NOW
from tests.plugins.zuora import ZUORA_ACCOUNTS, ZuoraAdmin, ZuoraSimulator
from watcher.simulator.zuora import scenario as zuora_scenario
from watcher.simulator.zuora.world import ZuoraState

ACCOUNT = ZUORA_ACCOUNTS[0]
EXPAND_ALL = [
    ("expand[]", "line_items"),
    ("expand[]", "subscriptions.subscription_plans.subscription_items"),
]
Query = list[tuple[str, str]]


@pytest.fixture(scope="module")
def spec() -> Spec:
    return Spec.load("zuora/quickstart-v2.openapi.yaml")


@pytest.fixture
async def client(zuora_admin: ZuoraAdmin) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as session:
        yield Client(session, zuora_admin)


class Client:
    """A bare HTTP client of the simulated API, with a real token."""

    def __init__(self, session: aiohttp.ClientSession, admin: ZuoraAdmin) -> None:
        self.session = session
        self.admin = admin
        self.token: str | None = None

    async def get(
        self,
        sim: ZuoraSimulator,
        path: str,
        query: Query | None = None,
        *,
        auth: bool = True,
    ) -> tuple[int, Any, Any]:
        headers = {"zuora-track-id": "track-1"}
        if auth:
            self.token = self.token or await self.admin.token()
            headers["Authorization"] = f"Bearer {self.token}"
        url = sim.base_url + path
        async with self.session.get(url, params=query or [], headers=headers) as reply:
            return reply.status, reply.headers, await reply.json()


def listing(*extra: tuple[str, str]) -> Query:
    return [("filter[]", f"account_id.EQ:{ACCOUNT}"), *EXPAND_ALL, *extra]


async def test_order_list_pages_match_the_document(
    zuora_sim: ZuoraSimulator, client: Client, spec: Spec
) -> None:
    status, _, first = await client.get(zuora_sim, "/v2/orders", listing(("page_size", "3")))
    _, _, second = await client.get(
        zuora_sim, "/v2/orders", listing(("page_size", "3"), ("cursor", first["next_page"]))
    )

    assert status == 200
    spec.validate(first, path="/orders")
    spec.validate(second, path="/orders")
    numbers = [order["order_number"] for order in first["data"] + second["data"]]
    assert sorted(numbers) == [f"O-0000000{n}" for n in range(1, 6)]
    assert second["next_page"] is None
    order = first["data"][0]
    assert set(order["line_items"]) == {"data", "next_page"}
    plans = order["subscriptions"][0]["subscription_plans"]
    assert plans["data"][0]["subscription_items"]["data"][0]["subscription_item_number"]


async def test_single_order_and_line_continuation_match_the_document(
    zuora_sim: ZuoraSimulator, zuora_admin: ZuoraAdmin, client: Client, spec: Spec
) -> None:
    created = await zuora_admin.create_order(ACCOUNT, {"line_items": [{}, {}, {}]})
    await zuora_admin.shape(nested_page_size=2)
    path = f"/v2/orders/{created['order_number']}"

    _, _, first = await client.get(zuora_sim, path, EXPAND_ALL)
    _, _, rest = await client.get(
        zuora_sim,
        f"/v2/orders/{created['id']}",
        [*EXPAND_ALL, ("cursor", first["line_items"]["next_page"])],
    )

    spec.validate(first, path="/orders/{order_id}")
    spec.validate(rest, path="/orders/{order_id}")
    ids = [line["id"] for line in first["line_items"]["data"] + rest["line_items"]["data"]]
    assert ids == [line["id"] for line in created["line_items"]]
    assert rest["line_items"]["next_page"] is None


async def test_array_shape_is_the_one_of_zuoras_samples(
    zuora_sim: ZuoraSimulator, zuora_admin: ZuoraAdmin, client: Client
) -> None:
    await zuora_admin.shape(list_shape="array", nested_page_size=1)
    _, _, order = await client.get(zuora_sim, "/v2/orders/O-00000002", EXPAND_ALL)

    assert isinstance(order["line_items"], list)
    assert isinstance(
        order["subscriptions"][0]["subscription_plans"][0]["subscription_items"], list
    )


async def test_expansion_decides_what_an_order_shows(
    zuora_sim: ZuoraSimulator, client: Client, spec: Spec
) -> None:
    _, _, bare = await client.get(zuora_sim, "/v2/orders/O-00000001")
    _, _, subscriptions = await client.get(
        zuora_sim, "/v2/orders/O-00000001", [("expand[]", "subscriptions")]
    )

    spec.validate(bare, path="/orders/{order_id}")
    assert "line_items" not in bare
    assert "subscriptions" not in bare
    assert "subscription_plans" not in subscriptions["subscriptions"][0]


@pytest.mark.parametrize(
    "case",
    [
        ("/v2/orders", [("filter[]", "account_id.XX:1")], 400, "bad_request"),
        ("/v2/orders", [("filter[]", "colour.EQ:red")], 400, "bad_request"),
        ("/v2/orders", [("page_size", "100")], 400, "bad_request"),
        ("/v2/orders", [("cursor", "not-a-cursor")], 400, "bad_request"),
        ("/v2/orders/O-99999999", [], 404, "not_found"),
    ],
)
async def test_vendor_errors_match_the_document(
    zuora_sim: ZuoraSimulator, client: Client, spec: Spec, case: tuple[str, Query, int, str]
) -> None:
    path, query, status, kind = case
    got, _, body = await client.get(zuora_sim, path, query)

    assert (got, body["type"], body["retryable"]) == (status, kind, False)
    spec.validate(
        body, path=path.replace("/v2", "").replace("O-99999999", "{order_id}"), status=status
    )


async def test_unauthorized_and_throttled_replies_match_the_document(
    zuora_sim: ZuoraSimulator, zuora_admin: ZuoraAdmin, client: Client, spec: Spec
) -> None:
    status, _, unauthorized = await client.get(zuora_sim, "/v2/orders", auth=False)
    await zuora_admin.rate_limit(limit=10, window_s=30, remaining=0)
    throttled_status, headers, throttled = await client.get(zuora_sim, "/v2/orders")

    assert (status, unauthorized["type"]) == (401, "unauthorized")
    spec.validate(unauthorized, path="/orders", status=401)
    assert (throttled_status, throttled["type"]) == (429, "too_many_requests")
    spec.validate(throttled, path="/orders", status=429)
    assert (headers["RateLimit-Limit"], headers["RateLimit-Remaining"]) == ("10", "0")
    assert headers["RateLimit-Reset"] == "30"


@pytest.mark.parametrize("status", [400, 401, 404, 405, 429, 500, 502, 503, 504])
async def test_injected_faults_use_the_documented_error_shape(
    zuora_sim: ZuoraSimulator, zuora_admin: ZuoraAdmin, client: Client, spec: Spec, status: int
) -> None:
    await zuora_admin.fault(kind="status", status=status)
    got, headers, body = await client.get(zuora_sim, "/v2/orders")

    assert got == status
    spec.validate(body, path="/orders", status=status)
    assert {"RateLimit-Limit", "RateLimit-Remaining", "zuora-request-id"} <= set(headers)


async def test_queued_vendor_errors_follow_the_error_schema(
    zuora_sim: ZuoraSimulator, zuora_admin: ZuoraAdmin, client: Client, spec: Spec
) -> None:
    await zuora_admin.queue_error(
        status=409, type="conflict", code="lock_competition", message="busy", retryable=True
    )
    status, _, body = await client.get(zuora_sim, "/v2/orders")
    again, _, _ = await client.get(zuora_sim, "/v2/orders")

    assert (status, again) == (409, 200)
    spec.validate_component(body, "errorResponse")
    assert body == {
        "type": "conflict",
        "errors": [{"code": "lock_competition", "message": "busy"}],
        "retryable": True,
    }


async def test_token_reply_has_the_oauth_fields(zuora_sim: ZuoraSimulator) -> None:
    # The document has no /oauth/token operation; its fields follow Zuora's token reference.
    form = {"grant_type": "client_credentials", "client_id": "sim-zuora-client"}
    async with aiohttp.ClientSession() as session:
        form["client_secret"] = "sim-zuora-secret"
        async with session.post(zuora_sim.token_url, data=form) as reply:
            body = await reply.json()
        form["client_secret"] = "wrong"
        async with session.post(zuora_sim.token_url, data=form) as refused:
            assert refused.status == 401
    assert reply.status == 200
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3599
    assert {"access_token", "scope", "jti"} <= set(body)


async def test_every_reply_carries_budget_and_trace_headers(
    zuora_sim: ZuoraSimulator, client: Client
) -> None:
    _, first, _ = await client.get(zuora_sim, "/v2/orders")
    _, second, _ = await client.get(zuora_sim, "/v2/orders")

    assert first["zuora-track-id"] == "track-1"
    assert first["zuora-request-id"] != second["zuora-request-id"]
    assert int(first["RateLimit-Remaining"]) - int(second["RateLimit-Remaining"]) == 1
    assert first["RateLimit-Limit"] == "50000"


async def test_update_time_filter_and_newest_first_order(
    zuora_sim: ZuoraSimulator, zuora_admin: ZuoraAdmin, client: Client
) -> None:
    await zuora_admin.patch_order("O-00000004", {"description": "edited"})
    since = SIM_NOW.isoformat()
    _, _, changed = await client.get(
        zuora_sim, "/v2/orders", listing(("filter[]", f"updated_time.GE:{since}"))
    )
    _, _, everything = await client.get(zuora_sim, "/v2/orders", listing())

    assert [order["order_number"] for order in changed["data"]] == ["O-00000004"]
    assert everything["data"][0]["order_number"] == "O-00000004"


async def test_a_rejected_patch_changes_nothing(
    zuora_sim: ZuoraSimulator, zuora_admin: ZuoraAdmin
) -> None:
    before = zuora_sim.state.order("O-00000001")
    url = f"{zuora_sim.base_url}/_admin/orders/O-00000001"
    patch = {"state": "complete", "subscriptions": [{"subscription_number": "A-S99999999"}]}
    async with aiohttp.ClientSession() as session, session.patch(url, json=patch) as reply:
        body = await reply.json()

    assert (reply.status, body["type"]) == (404, "not_found")
    assert zuora_sim.state.order("O-00000001") == before


def test_seed_and_scenario_are_deterministic() -> None:
    def world() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        state = ZuoraState(lambda: SIM_NOW, random.Random(5))
        zuora_scenario.seed(state, accounts=2, orders_per_account=4, now=SIM_NOW)
        rng = random.Random(9)
        changes = [
            c.to_json() for _ in range(10) for c in zuora_scenario.advance(state, rng, SIM_NOW)
        ]
        return state.orders(), changes

    orders, changes = world()
    assert world() == (orders, changes)
    kinds = {change["kind"] for change in changes}
    assert {"completed", "quantity_changed"} <= kinds
