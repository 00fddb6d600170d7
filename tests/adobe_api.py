"""The Adobe VIP vendor API as the simulator tests call it: valid headers unless a call says
otherwise, replies kept whole (status, body, headers), and a customer with dated orders.

A fixture plugin too: `api` is the API of the test's `adobe_sim`, with a fresh token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import aiohttp
import orjson
import pytest

from tests.plugins.simulator import SIM_CUSTOMERS, AdobeSimulator, SimAdmin
from watcher.simulator.adobe_vip.world import CLIENT_ID

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


async def token_reply(session: aiohttp.ClientSession, sim: AdobeSimulator, **form: str) -> Reply:
    async with session.post(sim.token_url, data=form) as reply:
        return Reply(reply.status, await reply.read(), dict(reply.headers))


async def five_orders(admin: SimAdmin) -> list[str]:
    """Customer PAGED with five orders, one a day from 2026-11-01; their ids, newest first."""
    for day in range(1, 6):
        order = {"orderId": f"770000000{day}", "creationDate": f"2026-11-0{day}T08:00:00Z"}
        await admin.create_order(PAGED, order)
    return [f"770000000{day}" for day in range(5, 0, -1)]


@pytest.fixture
async def api(
    session: aiohttp.ClientSession, adobe_sim: AdobeSimulator, sim_admin: SimAdmin
) -> Api:
    return Api(session, adobe_sim, await sim_admin.token())
