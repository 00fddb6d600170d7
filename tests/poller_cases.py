"""What the poller tests share: the source's constants, a `Rig` of the simulator, its admin
API, an open SQLite store and the poller's `ManualClock` (with the source, adapter and
poller built on them), and readers of the outbox and of the simulator's request log.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import aiohttp
from pydantic import SecretStr

from tests.plugins.simulator import SIM_CUSTOMERS, SIM_NOW, AdobeSimulator, ManualClock, SimAdmin
from watcher import store
from watcher.core.ports import Provider, Store
from watcher.poller import CustomerSync, Poller
from watcher.providers import connect
from watcher.settings import AuthSettings, RetrySettings, SourceSettings
from watcher.simulator.adobe_vip.world import CLIENT_ID, CLIENT_SECRET

SOURCE = "adobe-test"
CUSTOMER, OTHER = SIM_CUSTOMERS
UNKNOWN_CUSTOMER = "1999999999"
CUSTOMER_ORDERS = [f"51200000{n:02d}" for n in range(1, 6)]
NEW_ORDER = "5120000011"
FULL_RELIST_S = 3600.0
LOOKBACK_DAYS = 30.0
FULL_RELIST_START = "2000-01-01T00:00:00Z"
# The patch that completes the open order 5120000001: it and both lines, subscriptions given.
COMPLETED = {
    "status": "1000",
    "lineItems": [
        {"extLineItemNumber": 1, "status": "1000", "subscriptionId": "sub-0001"},
        {"extLineItemNumber": 2, "status": "1000", "subscriptionId": "sub-0002"},
    ],
}


async def no_sleep(_: float) -> None:
    """The adapter's retry back-off, skipped: retries happen at once."""


@dataclass
class Rig:
    """The simulator, its admin API, an open store and the poller's clock."""

    sim: AdobeSimulator
    admin: SimAdmin
    store: Store
    session: aiohttp.ClientSession
    clock: ManualClock

    def source(
        self,
        *,
        customers: Sequence[str] | Literal["all"] = (CUSTOMER,),
        page_size: int = 100,
        created_on_baseline: bool = False,
        concurrency: int = 4,
        poll_interval_s: float = 120.0,
        poll_jitter_s: float = 5.0,
        stuck: dict[str, float] | None = None,
        **extra: Any,
    ) -> SourceSettings:
        """The simulator's source; `extra` settings as the file would give them."""
        return SourceSettings(
            name=SOURCE,
            provider="adobe_vip",
            base_url=self.sim.base_url,
            customers="all" if customers == "all" else list(customers),
            page_size=page_size,
            created_on_baseline=created_on_baseline,
            concurrency=concurrency,
            poll_interval_s=poll_interval_s,
            poll_jitter_s=poll_jitter_s,
            lookback_days=LOOKBACK_DAYS,
            full_relist_interval_s=FULL_RELIST_S,
            timeout_s=5.0,
            auth=AuthSettings(
                token_url=self.sim.token_url,
                client_id=CLIENT_ID,
                client_secret=SecretStr(CLIENT_SECRET),
            ),
            retry=RetrySettings(attempts=2, base_delay_s=0.01, max_delay_s=0.05),
            stuck=stuck or {},
            **extra,
        )

    def adapter(self, source: SourceSettings) -> Provider:
        return connect.adapter(source, self.session, sleep=no_sleep, rng=random.Random(3))

    def poller(self, provider: Provider | None = None, **settings: Any) -> Poller:
        source = self.source(**settings)
        return Poller(
            source,
            provider or self.adapter(source),
            self.store,
            clock=self.clock,
            rng=random.Random(5),
        )

    async def sequences(self, customer_id: str = CUSTOMER) -> dict[str, int]:
        ids = [*CUSTOMER_ORDERS, NEW_ORDER]
        stored = await self.store.load_snapshots(SOURCE, customer_id, ids)
        return {order_id: snapshot.sequence for order_id, snapshot in stored.items()}


@contextlib.asynccontextmanager
async def opened_rig(
    adobe_sim: AdobeSimulator, sim_admin: SimAdmin, tmp_path: Path
) -> AsyncIterator[Rig]:
    """A `Rig` on a fresh store in `tmp_path`, the poller's clock standing at SIM_NOW."""
    url = f"sqlite:///{tmp_path / 'watcher.db'}"
    async with store.opened(url) as snapshots, aiohttp.ClientSession() as session:
        yield Rig(adobe_sim, sim_admin, snapshots, session, ManualClock(SIM_NOW))


async def completed_after_the_baseline(rig: Rig, poller: Poller) -> CustomerSync:
    """Baseline the customer, complete its order 5120000001 a minute later, sync again."""
    await poller.sync_customer(CUSTOMER)
    await rig.admin.patch_order(CUSTOMER, "5120000001", COMPLETED)
    rig.clock.advance(60)
    return await poller.sync_customer(CUSTOMER)


def kinds(result: CustomerSync) -> list[tuple[str, str, str | None]]:
    """(type, order, line) of every event, sorted."""
    return sorted((e.type, e.order_id, e.affected_line()) for e in result.events)


async def outbox(rig: Rig) -> list[tuple[str, str]]:
    """(event type, routing key) of every pending outbox record, sorted."""
    return sorted((r.event_type, r.routing_key) for r in await rig.store.pending(1000))


async def first_pages(admin: SimAdmin) -> list[dict[str, list[str]]]:
    """The query of each listing's first page in the simulator's request log."""
    queries = []
    for entry in await admin.requests():
        path_qs = entry["path_qs"]
        if path_qs.startswith(f"/v3/customers/{CUSTOMER}/orders?"):
            query = parse_qs(urlsplit(path_qs).query)
            if query["offset"] == ["0"]:
                queries.append(query)
    return queries


def adobe_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
