"""Pytest fixtures for the Partner Center simulator, served over real sockets on 127.0.0.1.

- `pc_sim`: a running Partner Center simulator (`Simulator[PartnerCenterState]`) with a
  fresh, seeded world per test, on `sim_clock`; `.base_url`, `.token_url`, `.state`.
- `pc_admin`: `PcAdmin`, the simulator's admin API over HTTP, plus `token(kind)`.
- `pc_customer`: the first seeded customer's tenant id.

Credentials: `watcher.simulator.partner_center.CREDENTIALS`, its refresh token for
app+user; the resource is `world.RESOURCE`.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import pytest

from tests.plugins.admin import SimulatorAdmin
from tests.plugins.simulator import SIM_NOW, ManualClock
from watcher.simulator import Simulator, partner_center, running
from watcher.simulator.partner_center import scenario as partner_center_scenario
from watcher.simulator.partner_center import world
from watcher.simulator.partner_center.world import PartnerCenterState

PC_CUSTOMERS = 2
PC_ORDERS_PER_CUSTOMER = 5
PC_LISTING_LAG_S = 120.0
PcSimulator = Simulator[PartnerCenterState]


class PcAdmin(SimulatorAdmin):
    """The Partner Center simulator's admin API. Every call fails the test on a non-2xx reply."""

    async def create_order(self, customer_id: str, order: Mapping[str, Any]) -> dict[str, Any]:
        """Store an order from a partial one (id, status, lineItems, creationDate, ...)."""
        return await self._object("POST", f"/_admin/customers/{customer_id}/orders", order)

    async def patch_order(
        self, customer_id: str, order_id: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Apply a patch: order fields, lineItems updates, addLines, listed."""
        path = f"/_admin/customers/{customer_id}/orders/{order_id}"
        return await self._object("PATCH", path, patch)

    async def set_provisioning(
        self, customer_id: str, order_id: str, statuses: Mapping[str, str | None]
    ) -> dict[str, Any]:
        """Set lines' provisioning status: {"<lineItemNumber>": "fulfilled" | ... | None}."""
        path = f"/_admin/customers/{customer_id}/orders/{order_id}/provisioning"
        return await self._object("PUT", path, statuses)

    async def token(self, kind: str = "app") -> str:
        """A fresh access token: "app" (client credentials) or "user" (refresh token)."""
        form = {"client_id": world.CLIENT_ID}
        form |= {"client_secret": world.CLIENT_SECRET, "resource": world.RESOURCE}
        if kind == "user":
            form |= {"grant_type": "refresh_token", "refresh_token": world.REFRESH_TOKEN}
        else:
            form["grant_type"] = "client_credentials"
        return await self._token(form)


@pytest.fixture
async def pc_sim(sim_clock: ManualClock) -> AsyncIterator[PcSimulator]:
    """A running Partner Center simulator with a fresh world, on a free port of 127.0.0.1.

    Seed: `partner_center_scenario.seed(customers=2, orders_per_customer=5, rng_seed=2,
    now=SIM_NOW)`, created within the 20 days before SIM_NOW and listed. Oldest first, the
    first customer's 3rd and 5th orders and the second's 2nd and 3rd are pending (lines
    prefulfillmentPending); the rest are completed and fulfilled. The state's rng is
    `random.Random(1234)` and its listing lag 120 s on `sim_clock`.
    """
    state = PartnerCenterState(sim_clock, random.Random(1234), listing_lag_s=PC_LISTING_LAG_S)
    partner_center_scenario.seed(
        state,
        customers=PC_CUSTOMERS,
        orders_per_customer=PC_ORDERS_PER_CUSTOMER,
        rng_seed=2,
        now=SIM_NOW,
    )
    async with running(partner_center.api(state)) as sim:
        yield sim


@pytest.fixture
def pc_customer(pc_sim: PcSimulator) -> str:
    return pc_sim.state.customer_ids()[0]


@pytest.fixture
async def pc_admin(pc_sim: PcSimulator) -> AsyncIterator[PcAdmin]:
    """The admin API of `pc_sim`, with its own HTTP session."""
    async with aiohttp.ClientSession() as session:
        yield PcAdmin(session, pc_sim)
