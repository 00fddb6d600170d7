"""Pytest fixtures for the Elastic Path simulator, served over real sockets on 127.0.0.1.

- `ep_sim`: a running Elastic Path simulator (`EpSimulator`) with a fresh, seeded store per
  test on the shared `sim_clock`; `.base_url`, `.token_url` (/oauth/access_token), `.state`.
- `ep_admin`: `EpAdmin`, the simulator's admin API over HTTP, plus `token()`.

Credentials: `watcher.simulator.elastic_path.CREDENTIALS`.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import pytest

from tests.plugins.admin import SimulatorAdmin
from tests.plugins.simulator import SIM_NOW, ManualClock
from watcher.simulator import Simulator, elastic_path, running
from watcher.simulator.elastic_path import scenario as elastic_path_scenario
from watcher.simulator.elastic_path.world import CLIENT_ID, CLIENT_SECRET, ElasticPathState

EpSimulator = Simulator[ElasticPathState]
EP_CUSTOMERS = ("6513270e-269e-4d37-b2a7-4de452e6b438", "d23f0824-128b-4f33-8c5c-7fd0a6a3a450")
EP_ACCOUNT = "9531985d-5d9d-49f8-9818-e811892f902b"
EP_ORDERS_PER_OWNER = 5
EP_OPEN_ORDERS = (
    "aad14268-1087-4756-bff4-bb8cf703c9ff",
    "1de9ea66-70d3-4a1f-8735-df5ef7697fb9",
    "5a3c8204-d017-4778-8f70-87574d4142f8",
)


class EpAdmin(SimulatorAdmin):
    """The Elastic Path simulator's admin API. Every call fails the test on a non-2xx reply."""

    async def create_order(self, order: Mapping[str, Any]) -> dict[str, Any]:
        """Store an order from an admin body (customer_id, status, items...); its API view."""
        return await self._object("POST", "/_admin/orders", order)

    async def patch_order(self, order_id: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """status, payment, shipping, external_ref, items [{id, quantity}], add/remove_items."""
        return await self._object("PATCH", f"/_admin/orders/{order_id}", patch)

    async def token(self) -> str:
        """A fresh bearer token from the real token endpoint."""
        form = {"grant_type": "client_credentials", "client_id": CLIENT_ID}
        form |= {"client_secret": CLIENT_SECRET}
        return await self._token(form)


@pytest.fixture
async def ep_sim(sim_clock: ManualClock) -> AsyncIterator[EpSimulator]:
    """A running Elastic Path simulator with a fresh store, on a free port of 127.0.0.1.

    Seed: `elastic_path_scenario.seed(customers=2, accounts=1, orders_per_customer=5,
    rng_seed=7, now=SIM_NOW)`: customers EP_CUSTOMERS and account EP_ACCOUNT, five orders
    each, created within the 20 days before SIM_NOW. Open orders (incomplete, unpaid,
    unfulfilled): EP_OPEN_ORDERS, the first two of EP_CUSTOMERS[0], the last of EP_ACCOUNT;
    the rest are complete, paid and fulfilled. The state's rng is `random.Random(1234)`;
    tokens live 3600 s on `sim_clock`.
    """
    state = ElasticPathState(sim_clock, random.Random(1234))
    owners = elastic_path_scenario.seed(
        state, customers=2, accounts=1, orders_per_customer=EP_ORDERS_PER_OWNER, now=SIM_NOW
    )
    assert owners == [*EP_CUSTOMERS, EP_ACCOUNT]
    async with running(elastic_path.api(state)) as sim:
        yield sim


@pytest.fixture
async def ep_admin(ep_sim: EpSimulator) -> AsyncIterator[EpAdmin]:
    """The admin API of `ep_sim`, with its own HTTP session."""
    async with aiohttp.ClientSession() as session:
        yield EpAdmin(session, ep_sim)
