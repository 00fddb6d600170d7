"""What the Zuora adapter tests share: the seeded account, an adapter built on the simulator
with injected time, and readers of the simulator's request log.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import aiohttp
from pydantic import SecretStr

from tests import doubles
from tests.plugins.simulator import SIM_NOW, ManualClock
from tests.plugins.zuora import ZUORA_ACCOUNTS, ZuoraAdmin, ZuoraSimulator
from watcher.core.ports import Provider
from watcher.providers import connect
from watcher.settings import AuthSettings
from watcher.simulator.zuora.world import CLIENT_ID, CLIENT_SECRET

ACCOUNT = ZUORA_ACCOUNTS[0]
NEW_ACCOUNT = "2c92c0f8ffffffffffffffffffffffff"


class FakeTime:
    """Injected monotonic clock and sleep: sleeping moves this clock and the simulator's."""

    def __init__(self, sim_clock: ManualClock | None = None) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._sim_clock = sim_clock

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        if self._sim_clock is not None:
            self._sim_clock.advance(seconds)


def make_adapter(
    sim: ZuoraSimulator,
    session: aiohttp.ClientSession,
    *,
    time: FakeTime | None = None,
    secret: str = CLIENT_SECRET,
    page_size: int = 3,
    attempts: int = 3,
) -> Provider:
    source = doubles.sim_source(
        "zuora-test",
        "zuora",
        base_url=sim.base_url + "/v2",
        customer=ACCOUNT,
        auth=AuthSettings(client_id=CLIENT_ID, client_secret=SecretStr(secret)),
        attempts=attempts,
        page_size=page_size,
    )
    time = time or FakeTime()
    return connect.adapter(
        source, session, sleep=time.sleep, rng=random.Random(3), clock=time.clock
    )


async def api_calls(admin: ZuoraAdmin) -> list[dict[str, Any]]:
    return [entry for entry in await admin.requests() if entry["path_qs"].startswith("/v2/")]


async def token_calls(admin: ZuoraAdmin) -> int:
    return sum(entry["path_qs"] == "/oauth/token" for entry in await admin.requests())


async def seed_orders(admin: ZuoraAdmin, count: int) -> list[str]:
    await admin.create_account(NEW_ACCOUNT)
    numbers = []
    for hours in range(count):
        created = (SIM_NOW - timedelta(hours=hours)).isoformat()
        order = await admin.create_order(NEW_ACCOUNT, {"created_time": created})
        numbers.append(order["order_number"])
    return numbers
