"""A whole store watched in one listing (`customers = "all"` on Elastic Path and Zuora).

The simulators, the SQLite store and the adapters are real, over sockets. A poll lists the
orders changed since the last one across every customer, so its vendor calls follow the
changed orders, not the customers; the baseline is the store's, a customer first seen later
has its orders created; a poll cut short is read again and raises nothing twice; an order
in flight that did not change is still judged stuck; and the store is polled at the hot
cadence while any order is in flight.
"""

from __future__ import annotations

import asyncio
import io
import math
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiohttp
import orjson
import pytest
from pydantic import SecretStr

from tests.harness import eventually
from tests.plugins.elastic_path import EP_CUSTOMERS, EP_OPEN_ORDERS, EpAdmin, EpSimulator
from tests.plugins.simulator import SIM_NOW, ManualClock
from tests.plugins.zuora import ZUORA_ACCOUNTS, ZuoraAdmin, ZuoraSimulator
from tests.poller_cases import no_sleep
from watcher import app, store
from watcher.core.ports import Provider, Store
from watcher.feed import FEED
from watcher.poller import CustomerSync, Poller
from watcher.providers import connect
from watcher.providers.elastic_path.adapter import ElasticPath
from watcher.settings import (
    AmqpSettings,
    AuthSettings,
    RetrySettings,
    Settings,
    SourceSettings,
    StoreSettings,
)
from watcher.simulator.elastic_path import world as ep_world
from watcher.simulator.zuora import world as zuora_world

HOT_S, COLD_S = 60.0, 600.0
QUIET_S = 900.0  # longer than the update overlap, so a poll sees only what changed since


@dataclass
class Rig:
    """A simulator's base URL and request log, an open store and the clock both share."""

    base_url: str
    admin: EpAdmin | ZuoraAdmin
    store: Store
    session: aiohttp.ClientSession
    clock: ManualClock

    def source(self, provider: str, **settings: Any) -> SourceSettings:
        client_id, secret = {
            "elastic_path": (ep_world.CLIENT_ID, ep_world.CLIENT_SECRET),
            "zuora": (zuora_world.CLIENT_ID, zuora_world.CLIENT_SECRET),
        }[provider]
        values: dict[str, Any] = {
            "name": f"{provider}-all",
            "provider": provider,
            "base_url": self.base_url,
            "customers": "all",
            "page_size": 100,
            "poll_interval_s": COLD_S,
            "hot_interval_s": HOT_S,
            "poll_jitter_s": 5.0,
            "lookback_days": 30.0,
            "timeout_s": 5.0,
            "auth": AuthSettings(client_id=client_id, client_secret=SecretStr(secret)),
            "retry": RetrySettings(attempts=2, base_delay_s=0.01, max_delay_s=0.05),
        }
        return SourceSettings(**values | settings)

    def poller(self, source: SourceSettings, provider: Provider | None = None) -> Poller:
        adapter = provider or connect.adapter(
            source, self.session, sleep=no_sleep, rng=random.Random(3)
        )
        return Poller(source, adapter, self.store, clock=self.clock, rng=random.Random(5))

    async def listings(self) -> list[dict[str, list[str]]]:
        """The query of every order listing the simulator served, in order."""
        return [
            parse_qs(urlsplit(unquote(entry["path_qs"])).query)
            for entry in await self.admin.requests()
            if urlsplit(entry["path_qs"]).path.rstrip("/").endswith("/orders")
        ]

    async def vendor_calls(self) -> int:
        """Calls to the vendor's order API answered (token requests, and the 401 that
        sends for a new token once the simulator's hour-long token expires, aside)."""
        entries = await self.admin.requests()
        return sum("/orders" in e["path_qs"] and e["status"] == 200 for e in entries)

    async def outbox(self) -> Counter[tuple[str, str]]:
        """(event type, order id) of every pending outbox record, counted."""
        records = await self.store.pending(10_000)
        return Counter((r.event_type, _order_id(r.body)) for r in records)


def _order_id(body: bytes) -> str:
    data: dict[str, Any] = orjson.loads(body)["data"]
    return str(data["order_id"])


@pytest.fixture
async def opened(tmp_path: Path, sim_clock: ManualClock) -> AsyncIterator[tuple[Store, Any]]:
    url = f"sqlite:///{tmp_path / 'watcher.db'}"
    async with store.opened(url) as snapshots, aiohttp.ClientSession() as session:
        yield snapshots, session


@pytest.fixture
def ep(
    ep_sim: EpSimulator, ep_admin: EpAdmin, opened: tuple[Store, Any], sim_clock: ManualClock
) -> Rig:
    snapshots, session = opened
    return Rig(ep_sim.base_url, ep_admin, snapshots, session, sim_clock)


@pytest.fixture
def zuora(
    zuora_sim: ZuoraSimulator,
    zuora_admin: ZuoraAdmin,
    opened: tuple[Store, Any],
    sim_clock: ManualClock,
) -> Rig:
    snapshots, session = opened
    return Rig(zuora_sim.base_url + "/v2", zuora_admin, snapshots, session, sim_clock)


async def poll(poller: Poller) -> CustomerSync:
    [result] = await poller.cycle()
    assert result.customer_id == FEED
    return result


def ep_customer_orders(ep_sim: EpSimulator) -> list[str]:
    return [order.id for order in ep_sim.state.all_orders() if order.customer_id is not None]


# --- Elastic Path ----------------------------------------------------------------------


async def test_the_first_poll_is_a_silent_baseline_of_every_customer_in_one_listing(
    ep: Rig, ep_sim: EpSimulator
) -> None:
    poller = ep.poller(ep.source("elastic_path"))

    result = await poll(poller)

    assert result.error is None
    assert (result.full, result.baseline, result.records) == (True, True, [])
    assert result.orders == len(ep_customer_orders(ep_sim)) == 10
    assert (poller.customers_known, poller.customers_hot) == (len(EP_CUSTOMERS), 1)
    [listing] = await ep.listings()
    assert listing["filter"] == ["ge(created_at,1970-01-01T00:00:00.000Z)"]  # no owner clause
    stored = await ep.store.load_snapshots(poller.name, EP_CUSTOMERS[0], list(EP_OPEN_ORDERS))
    assert set(stored) == set(EP_OPEN_ORDERS[:2])


async def test_a_poll_costs_calls_by_the_orders_changed_not_by_the_customers(
    ep: Rig, ep_sim: EpSimulator, ep_admin: EpAdmin, sim_clock: ManualClock
) -> None:
    customers = [f"customer-{n:03d}" for n in range(150)]
    for customer_id in customers:
        for _ in range(2):
            sim_clock.advance(0.01)
            ep_sim.state.create_order(
                {"customer_id": customer_id, "status": "complete", "payment": "paid"}
            )
    source = ep.source("elastic_path")
    adapter = connect.adapter(source, ep.session, sleep=no_sleep, rng=random.Random(3))
    assert isinstance(adapter, ElasticPath)
    adapter.offset_cap = ep_sim.state.offset_cap = 120  # the baseline must go past the cap
    poller = ep.poller(source, adapter)
    sim_clock.advance(QUIET_S)

    baseline = await poll(poller)
    assert baseline.orders == len(ep_customer_orders(ep_sim)) == 310
    assert poller.customers_known == 152

    unchanged = [o for o in ep_sim.state.all_orders() if o.customer_id in customers]
    for changed in (3, 150):
        sim_clock.advance(QUIET_S)
        await poll(poller)  # reads the last poll's changes again (the overlap), then no more
        sim_clock.advance(QUIET_S)
        before = await ep.vendor_calls()
        orders, unchanged = unchanged[:changed], unchanged[changed:]
        for order in orders:
            await ep_admin.patch_order(order.id, {"payment": "refunded"})
        result = await poll(poller)
        assert result.error is None
        assert result.orders == changed
        assert await ep.vendor_calls() - before == math.ceil(changed / 100)
        assert Counter(r.event_type for r in result.records) == {"order.payment_changed": changed}


async def test_a_customer_first_seen_later_has_its_orders_created(
    ep: Rig, ep_admin: EpAdmin, sim_clock: ManualClock
) -> None:
    poller = ep.poller(ep.source("elastic_path"))
    await poll(poller)

    sim_clock.advance(QUIET_S)
    created = await ep_admin.create_order({"customer_id": "newcomer"})
    result = await poll(poller)

    assert [(e.type, e.customer_id, e.order_id) for e in result.events] == [
        ("order.created", "newcomer", created["id"])
    ]
    assert poller.customers_known == len(EP_CUSTOMERS) + 1
    assert "ge(updated_at," in (await ep.listings())[-1]["filter"][0]


async def test_a_poll_cut_short_is_read_again_and_publishes_each_change_once(
    ep: Rig, ep_sim: EpSimulator, ep_admin: EpAdmin, sim_clock: ManualClock
) -> None:
    poller = ep.poller(ep.source("elastic_path", page_size=2))
    await poll(poller)
    cursor = await ep.store.poll_state(poller.name, FEED)
    sim_clock.advance(QUIET_S)
    changed = ep_customer_orders(ep_sim)[:5]
    for order_id in changed:
        await ep_admin.patch_order(order_id, {"payment": "refunded"})
    await ep_admin.fault(kind="status", status=503, count=2, path_contains="offset%5D=2")

    cut = await poll(poller)

    assert cut.error is not None
    assert await ep.store.poll_state(poller.name, FEED) == cursor  # the cursor stays
    assert sum((await ep.outbox()).values()) == 2  # the first page's, committed

    sim_clock.advance(60)
    again = await poll(poller)

    assert again.error is None
    assert await ep.outbox() == {("order.payment_changed", order_id): 1 for order_id in changed}


async def test_an_unchanged_order_in_flight_is_judged_stuck_without_asking_the_vendor(
    ep: Rig, ep_admin: EpAdmin, sim_clock: ManualClock
) -> None:
    poller = ep.poller(ep.source("elastic_path", stuck={"incomplete": 1200}))
    await poll(poller)
    sim_clock.advance(QUIET_S)
    created = await ep_admin.create_order({"customer_id": "newcomer"})
    assert [e.type for e in (await poll(poller)).events] == ["order.created"]
    sim_clock.advance(QUIET_S)
    assert (await poll(poller)).events == []  # not stuck yet

    sim_clock.advance(1200)
    before = await ep.vendor_calls()
    stuck = await poll(poller)

    assert stuck.orders == 0  # the listing showed nothing changed...
    assert await ep.vendor_calls() - before == 1
    assert [(e.type, e.order_id) for e in stuck.events] == [("order.stuck", created["id"])]
    assert created["id"] in {order.order_id for order in stuck.stuck}
    sim_clock.advance(HOT_S)
    assert (await poll(poller)).events == []  # ...and it is said once


async def test_the_store_is_polled_hot_while_an_order_is_in_flight_and_cold_after(
    ep: Rig, ep_admin: EpAdmin, sim_clock: ManualClock
) -> None:
    poller = ep.poller(ep.source("elastic_path"))
    hot = await poll(poller)
    assert hot.hot
    assert hot.next_delay_s is not None
    assert abs(hot.next_delay_s - HOT_S) <= 5
    state = await ep.store.poll_state(poller.name, FEED)
    assert state is not None
    assert state.next_due_at == SIM_NOW + timedelta(seconds=hot.next_delay_s)

    sim_clock.advance(QUIET_S)
    for order_id in EP_OPEN_ORDERS[:2]:
        await ep_admin.patch_order(order_id, {"status": "complete"})
    cold = await poll(poller)

    assert [e.type for e in cold.events] == ["order.status_changed"] * 2
    assert not cold.hot
    assert cold.next_delay_s is not None
    assert abs(cold.next_delay_s - COLD_S) <= 5
    assert poller.customers_hot == 0
    customer = await ep.store.poll_state(poller.name, EP_CUSTOMERS[0])
    assert customer is not None
    assert customer.in_flight == frozenset()


async def test_a_restarted_poller_goes_on_from_the_stored_cursor(
    ep: Rig, ep_admin: EpAdmin, sim_clock: ManualClock
) -> None:
    await poll(ep.poller(ep.source("elastic_path")))
    sim_clock.advance(QUIET_S)
    await ep_admin.patch_order(EP_OPEN_ORDERS[0], {"payment": "paid"})

    restarted = ep.poller(ep.source("elastic_path"))
    result = await poll(restarted)

    assert not result.full
    assert not result.baseline
    assert [(e.type, e.order_id) for e in result.events] == [
        ("order.payment_changed", EP_OPEN_ORDERS[0])
    ]
    assert (restarted.customers_known, restarted.customers_hot) == (len(EP_CUSTOMERS), 1)


# --- Zuora -----------------------------------------------------------------------------


async def test_zuora_lists_every_account_in_one_listing_and_then_only_changes(
    zuora: Rig, zuora_admin: ZuoraAdmin, sim_clock: ManualClock
) -> None:
    source = zuora.source("zuora")
    poller = zuora.poller(source, connect.guarded(source, zuora.session))

    baseline = await poll(poller)
    assert baseline.error is None
    assert baseline.records == []
    assert poller.customers_known == len(ZUORA_ACCOUNTS)
    [first] = await zuora.listings()
    assert not any(f.startswith("account_id") for f in first.get("filter[]", []))

    sim_clock.advance(QUIET_S)
    await zuora_admin.patch_order("O-00000001", {"state": "complete"})
    created = await zuora_admin.create_order("2c92c0f8aaaaaaaaaaaaaaaaaaaaaaaa", {})
    before = await zuora.vendor_calls()
    result = await poll(poller)

    assert result.error is None
    assert sorted((e.type, e.customer_id) for e in result.events) == sorted(
        [
            ("order.status_changed", ZUORA_ACCOUNTS[0]),
            ("order.created", "2c92c0f8aaaaaaaaaaaaaaaaaaaaaaaa"),
        ]
    )
    assert created["order_number"] in {e.order_id for e in result.events}
    assert await zuora.vendor_calls() - before == 1
    last = (await zuora.listings())[-1]
    assert any(f.startswith("updated_time.GT:") for f in last["filter[]"])
    assert poller.customers_known == len(ZUORA_ACCOUNTS) + 1


# --- once and check ----------------------------------------------------------------------


def settings_of(rig: Rig, source: SourceSettings, tmp_path: Path) -> Settings:
    """Settings for `app`, whose clock is the wall clock: the simulator's is set to it."""
    rig.clock.now = datetime.now(UTC)
    return Settings(
        store=StoreSettings(url=f"sqlite:///{tmp_path / 'once.db'}"),
        amqp=AmqpSettings(url=SecretStr("amqp://guest:guest@127.0.0.1:1/")),
        sources=[source],
    )


async def test_once_polls_the_whole_store_once_and_prints_its_changes(
    zuora: Rig, zuora_admin: ZuoraAdmin, sim_clock: ManualClock, tmp_path: Path
) -> None:
    settings = settings_of(zuora, zuora.source("zuora"), tmp_path)
    sim_clock.advance(QUIET_S)  # every order seeded is older than the overlap
    baseline = await app.once(settings, out=io.StringIO())
    assert [(r.customer_id, r.baseline, r.records) for r in baseline] == [(FEED, True, [])]

    sim_clock.advance(QUIET_S)
    await zuora_admin.patch_order("O-00000001", {"state": "complete"})
    out = io.StringIO()
    [result] = await app.once(settings, out=out)

    assert result.error is None
    printed = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [(p["type"], p["data"]["customer_id"]) for p in printed] == [
        ("order.status_changed", ZUORA_ACCOUNTS[0])
    ]


async def test_check_reads_the_first_page_of_the_days_changes_across_the_store(
    ep: Rig, ep_admin: EpAdmin, tmp_path: Path
) -> None:
    settings = settings_of(ep, ep.source("elastic_path"), tmp_path)
    await ep_admin.patch_order(EP_OPEN_ORDERS[0], {"payment": "paid"})

    checks = await app.check(settings)

    [source] = [c for c in checks if c.name.startswith("source ")]
    assert source.ok, source.detail
    assert source.detail == "store-wide: 1 order(s) of 1 customer(s) changed in the last day"
    [listing] = await ep.listings()
    assert listing["filter"][0].startswith("ge(updated_at,")


# --- the running loop ----------------------------------------------------------------------


async def test_the_running_loop_polls_the_store_again_at_the_hot_cadence(
    ep: Rig, ep_admin: EpAdmin
) -> None:
    source = ep.source("elastic_path", hot_interval_s=0.2, poll_interval_s=30, poll_jitter_s=0)
    syncs: list[CustomerSync] = []
    adapter = connect.adapter(source, ep.session, sleep=no_sleep, rng=random.Random(3))
    poller = Poller(source, adapter, ep.store, on_sync=syncs.append, clock=ep.clock)
    running = asyncio.create_task(poller.run())

    async def seen(found: Callable[[CustomerSync], bool]) -> bool:
        return any(found(sync) for sync in syncs)

    try:
        await eventually(lambda: seen(lambda sync: sync.baseline), what="the baseline")
        await ep_admin.patch_order(EP_OPEN_ORDERS[0], {"payment": "paid"})
        await eventually(lambda: seen(lambda sync: bool(sync.events)), what="the change")
    finally:
        poller.stop()
        await running

    assert all(sync.customer_id == FEED and sync.error is None for sync in syncs)
    [changed] = [sync for sync in syncs if sync.events]
    assert [(e.type, e.order_id) for e in changed.events] == [
        ("order.payment_changed", EP_OPEN_ORDERS[0])
    ]
    assert 1 < len(syncs) < 10 / 0.2  # again and again, each a hot interval after the last
    assert (poller.customers_known, poller.customers_hot) == (len(EP_CUSTOMERS), 1)


async def test_a_restarted_loop_keeps_the_stored_schedule_of_the_store(
    ep: Rig, sim_clock: ManualClock
) -> None:
    source = ep.source("elastic_path", hot_interval_s=600, poll_jitter_s=0)
    await poll(ep.poller(source))  # the store is due again in ten minutes
    syncs: list[CustomerSync] = []
    adapter = connect.adapter(source, ep.session, sleep=no_sleep, rng=random.Random(3))
    poller = Poller(source, adapter, ep.store, on_sync=syncs.append, clock=ep.clock)
    running = asyncio.create_task(poller.run())
    await asyncio.sleep(0.5)
    poller.stop()
    await running

    assert syncs == []
    assert (poller.customers_known, poller.customers_hot) == (len(EP_CUSTOMERS), 1)
