"""What the Partner Center adapter tests share: an adapter built on the simulator, readers of
its request log and state, and the typed changes between two fetches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp
from pydantic import SecretStr

from tests import doubles
from tests.doubles import FakeMonotonic, RecordingSleep
from tests.plugins.partner_center import PcAdmin, PcSimulator
from tests.plugins.simulator import SIM_NOW
from watcher.core import events, sync
from watcher.core.models import Order
from watcher.core.ports import Provider, Snapshot
from watcher.settings import (
    AuthSettings,
)
from watcher.simulator.partner_center.routes import TOKEN_PATH
from watcher.simulator.partner_center.world import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN
from watcher.vendors import PartnerCenterOptions


def make_adapter(
    sim: PcSimulator,
    session: aiohttp.ClientSession,
    *,
    sleep: RecordingSleep | None = None,
    clock: FakeMonotonic | None = None,
    secret: str = CLIENT_SECRET,
    refresh_token: str | None = REFRESH_TOKEN,
    attempts: int = 3,
) -> Provider:
    auth = AuthSettings(
        token_url=sim.token_url,
        client_id=CLIENT_ID,
        client_secret=SecretStr(secret),
        refresh_token=SecretStr(refresh_token) if refresh_token is not None else None,
    )
    source = doubles.sim_source(
        "pc-test",
        "partner_center",
        base_url=sim.base_url,
        customer="c",
        auth=auth,
        attempts=attempts,
        options=PartnerCenterOptions(provisioning=True),
    )
    return doubles.sim_adapter(source, session, sleep=sleep, clock=clock)


def by_id(orders: Sequence[Order]) -> dict[str, Order]:
    return {order.order_id: order for order in orders}


async def calls(admin: PcAdmin, suffix: str = "") -> list[dict[str, Any]]:
    entries = await admin.requests()
    return [e for e in entries if e["path_qs"].startswith("/v1/") and e["path_qs"].endswith(suffix)]


async def token_calls(admin: PcAdmin) -> int:
    return sum(entry["path_qs"] == TOKEN_PATH for entry in await admin.requests())


def pending_ids(sim: PcSimulator, customer: str) -> list[str]:
    return [s.payload["id"] for s in sim.state.stored(customer) if s.payload["status"] == "pending"]


def changes(before: Sequence[Order], after: Sequence[Order]) -> list[tuple[str, str | None, str]]:
    """(type, line key, routing key) of the events reconcile makes of two fetches."""
    stored = {order.order_id: Snapshot(order=order, sequence=1) for order in before}
    result = sync.reconcile(after, stored, baseline=False, now=SIM_NOW)
    return [(e.type, e.affected_line(), events.routing_key(e)) for e in result.events]
