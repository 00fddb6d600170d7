"""Pytest fixtures for the Zuora Quickstart simulator, served over real sockets on 127.0.0.1.

- `zuora_sim`: a running simulator (`Simulator[ZuoraState]`) with a fresh, seeded world per
  test; `.base_url` is the REST host (the API lives under /v2), `.token_url` its
  /oauth/token, `.state` the world. It runs on the shared `sim_clock`.
- `zuora_admin`: `ZuoraAdmin`, the simulator's admin API over HTTP, plus `token()`.

Credentials: `watcher.simulator.zuora.CREDENTIALS`.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import pytest

from tests.plugins.admin import SimulatorAdmin
from tests.plugins.simulator import SIM_NOW, ManualClock
from watcher.simulator import Simulator, running, zuora
from watcher.simulator.zuora import scenario as zuora_scenario
from watcher.simulator.zuora.world import CLIENT_ID, CLIENT_SECRET, ZuoraState

ZuoraSimulator = Simulator[ZuoraState]
ZUORA_ACCOUNTS = (zuora_scenario.account_id(1), zuora_scenario.account_id(2))
ZUORA_ORDERS_PER_ACCOUNT = 5


class ZuoraAdmin(SimulatorAdmin):
    """The Zuora simulator's admin API over HTTP. Every call fails the test on a non-2xx reply."""

    async def create_account(self, account_id: str) -> dict[str, Any]:
        return await self._object("POST", f"/_admin/accounts/{account_id}")

    async def create_order(self, account_id: str, order: Mapping[str, Any]) -> dict[str, Any]:
        """Store an order from a partial one (state, line_items, subscriptions, ...)."""
        return await self._object("POST", f"/_admin/accounts/{account_id}/orders", order)

    async def patch_order(self, order: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a patch (see watcher.simulator.zuora.edits) to an order number or id."""
        return await self._object("PATCH", f"/_admin/orders/{order}", patch)

    async def queue_error(self, **spec: Any) -> dict[str, Any]:
        """A Zuora error reply: status, type, code, message, parameter, retryable, count."""
        return await self._object("POST", "/_admin/errors", spec)

    async def rate_limit(self, **spec: int) -> dict[str, Any]:
        """A new rate window: limit, window_s, remaining."""
        return await self._object("POST", "/_admin/rate-limit", spec)

    async def shape(self, **spec: Any) -> dict[str, Any]:
        """list_shape ("object" | "array") and nested_page_size of expanded lists."""
        return await self._object("POST", "/_admin/shape", spec)

    async def track_ids(self) -> list[str | None]:
        ids = await self._call("GET", "/_admin/track-ids")
        assert isinstance(ids, list)
        return ids

    async def token(self) -> str:
        """A fresh bearer token from the real token endpoint."""
        form = {"grant_type": "client_credentials", "client_id": CLIENT_ID}
        form["client_secret"] = CLIENT_SECRET
        return await self._token(form)


@pytest.fixture
async def zuora_sim(sim_clock: ManualClock) -> AsyncIterator[ZuoraSimulator]:
    """A running Zuora simulator with a fresh world, on a free port of 127.0.0.1.

    Seed: `zuora_scenario.seed(accounts=2, orders_per_account=5, rng_seed=7, now=SIM_NOW)`:
    accounts ZUORA_ACCOUNTS, orders O-00000001..O-00000005 and O-00000006..O-00000010.
    The state's rng is `random.Random(1234)`; tokens live 3599 s on `sim_clock`; the rate
    budget is Zuora's 50,000 a minute.
    """
    state = ZuoraState(sim_clock, random.Random(1234))
    zuora_scenario.seed(
        state,
        accounts=len(ZUORA_ACCOUNTS),
        orders_per_account=ZUORA_ORDERS_PER_ACCOUNT,
        rng_seed=7,
        now=SIM_NOW,
    )
    async with running(zuora.api(state)) as sim:
        yield sim


@pytest.fixture
async def zuora_admin(zuora_sim: ZuoraSimulator) -> AsyncIterator[ZuoraAdmin]:
    """The admin API of `zuora_sim`, with its own HTTP session."""
    async with aiohttp.ClientSession() as session:
        yield ZuoraAdmin(session, zuora_sim)
