"""Pytest fixtures for the bundled vendor simulator, served over real sockets on 127.0.0.1.

- `sim_clock`: a `ManualClock` standing at SIM_NOW; it moves only when a test says so.
- `adobe_sim`: a running Adobe VIP simulator (`AdobeSimulator`) with a fresh, seeded world
  per test; `.base_url`, `.token_url`, `.state`.
- `sim_admin`: `SimAdmin`, the simulator's admin API over HTTP, plus `token()`.
- `session`: a plain aiohttp session, for calling any simulator or building an adapter.

Credentials for the vendor API: `watcher.simulator.adobe_vip.CREDENTIALS` (also
`world.CLIENT_ID` / `CLIENT_SECRET`); the X-Api-Key is the client id.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from tests.plugins.admin import SimulatorAdmin
from watcher.simulator import Simulator, adobe_vip, running
from watcher.simulator.adobe_vip import scenario
from watcher.simulator.adobe_vip.world import CLIENT_ID, CLIENT_SECRET, AdobeVipState

SIM_NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
SIM_CUSTOMERS = ("1000000001", "1000000002")
SIM_ORDERS_PER_CUSTOMER = 5
AdobeSimulator = Simulator[AdobeVipState]


class ManualClock:
    """A clock for `AdobeVipState(clock=...)` that moves only on `advance`."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class SimAdmin(SimulatorAdmin):
    """The Adobe simulator's admin API over HTTP. Every call fails the test on a non-2xx reply."""

    async def create_customer(self, customer_id: str) -> dict[str, Any]:
        """An empty customer (a no-op when it exists)."""
        return await self._object("POST", f"/_admin/customers/{customer_id}")

    async def remove_customer(self, customer_id: str) -> dict[str, Any]:
        """Take a customer and its orders away: the reseller no longer lists it."""
        return await self._object("DELETE", f"/_admin/customers/{customer_id}")

    async def create_order(self, customer_id: str, order: Mapping[str, Any]) -> dict[str, Any]:
        """Store an order from a partial one (orderId, status, lineItems, creationDate...)."""
        path = f"/_admin/customers/{customer_id}/orders"
        return await self._object("POST", path, order)

    async def patch_order(
        self, customer_id: str, order_id: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Apply a patch: status, externalReferenceId, lineItems, removeLines, addLines."""
        path = f"/_admin/customers/{customer_id}/orders/{order_id}"
        return await self._object("PATCH", path, patch)

    async def token(self) -> str:
        """A fresh bearer token from the real token endpoint."""
        form = {"grant_type": "client_credentials", "client_id": CLIENT_ID}
        form |= {"client_secret": CLIENT_SECRET, "scope": "openid,AdobeID,read_organizations"}
        return await self._token(form)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP session for calling a simulator or building an adapter on it."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def sim_clock() -> ManualClock:
    """The simulator's clock, standing at SIM_NOW (2026-11-20T10:00:00Z)."""
    return ManualClock(SIM_NOW)


@pytest.fixture
async def adobe_sim(sim_clock: ManualClock) -> AsyncIterator[AdobeSimulator]:
    """A running Adobe VIP simulator with a fresh world, on a free port of 127.0.0.1.

    Seed: `scenario.seed(customers=2, orders_per_customer=5, rng_seed=7, now=SIM_NOW)`, so
    customers "1000000001" (orders "5120000001".."5120000005") and "1000000002" (orders
    "5120000006".."5120000010"), created within the 20 days before SIM_NOW. Of these,
    5120000001, 5120000002, 5120000008 and 5120000010 are open ("1002", blank subscription
    ids), the rest complete ("1000"). The state's rng is `random.Random(1234)`; tokens live
    86399 s on `sim_clock`. Orders a test creates get ids from "5120000011" on.
    """
    state = AdobeVipState(sim_clock, random.Random(1234))
    scenario.seed(
        state,
        customers=len(SIM_CUSTOMERS),
        orders_per_customer=SIM_ORDERS_PER_CUSTOMER,
        rng_seed=7,
        now=SIM_NOW,
    )
    async with running(adobe_vip.api(state)) as sim:
        yield sim


@pytest.fixture
async def sim_admin(adobe_sim: AdobeSimulator) -> AsyncIterator[SimAdmin]:
    """The admin API of `adobe_sim`, with its own HTTP session."""
    async with aiohttp.ClientSession() as session:
        yield SimAdmin(session, adobe_sim)
