"""Watching a whole account: customers listed by the vendor (`customers = "all"`), found and
dropped at run time, and a cadence that spends polls where orders are in flight.

The simulators, the SQLite store and the adapters are real, over sockets: the Adobe VIP
reseller's customer pages (offset/limit, `accounts` or `customers`), Partner Center's
continuation tokens, and the poller's schedule around them.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from tests.plugins.partner_center import PcAdmin, PcSimulator
from tests.plugins.simulator import AdobeSimulator, SimAdmin
from tests.poller_cases import CUSTOMER, OTHER, SOURCE, Rig, opened_rig
from watcher.core.errors import ConfigError, PermanentProviderError, TransientProviderError
from watcher.core.ports import CustomerDirectory
from watcher.poller import CustomerSync, Discovery, Poller
from watcher.providers import connect
from watcher.settings import SourceSettings
from watcher.simulator.adobe_vip.world import RESELLER_ID
from watcher.simulator.partner_center import world as pc_world

NEW_CUSTOMER = "1000000003"
COMPLETE = {"status": "1000"}


@pytest.fixture
async def rig(adobe_sim: AdobeSimulator, sim_admin: SimAdmin, tmp_path: Path) -> AsyncIterator[Rig]:
    async with opened_rig(adobe_sim, sim_admin, tmp_path) as opened:
        yield opened


def discovering(rig: Rig, **settings: Any) -> SourceSettings:
    """The simulator's reseller as a source that lists its customers."""
    return rig.source(customers="all", adobe_vip={"reseller_id": RESELLER_ID}, **settings)


def directory(rig: Rig, source: SourceSettings) -> CustomerDirectory:
    adapter = rig.adapter(source)
    assert isinstance(adapter, CustomerDirectory)
    return adapter


async def customer_calls(rig: Rig) -> list[dict[str, list[str]]]:
    """The query of every customer listing the simulator served, in order."""
    return [
        parse_qs(urlsplit(entry["path_qs"]).query)
        for entry in await rig.admin.requests()
        if "/customers?" in entry["path_qs"] and "/orders" not in entry["path_qs"]
    ]


async def until(check: Callable[[], Awaitable[bool] | bool], *, what: str) -> None:
    async with asyncio.timeout(10):
        while True:
            outcome = check()
            if outcome if isinstance(outcome, bool) else await outcome:
                return
            await asyncio.sleep(0.02)
    raise AssertionError(what)


# --- listing the customers ----------------------------------------------------------------


@pytest.mark.parametrize("key", ["accounts", "customers"])
async def test_adobe_lists_every_customer_of_the_reseller_page_by_page(rig: Rig, key: str) -> None:
    for number in range(3, 111):
        await rig.admin.create_customer(f"10000{number:05d}")
    rig.sim.state.customers_key = key

    listed = await directory(rig, discovering(rig)).list_customers()

    assert listed == rig.sim.state.customer_ids()
    assert len(listed) == 110
    assert [(q["offset"], q["limit"]) for q in await customer_calls(rig)] == [
        (["0"], ["50"]),
        (["50"], ["50"]),
        (["100"], ["50"]),
    ]


async def test_a_reseller_the_vendor_does_not_know_is_a_permanent_error(rig: Rig) -> None:
    source = rig.source(customers="all", adobe_vip={"reseller_id": "1999999999"})

    with pytest.raises(PermanentProviderError, match="1115"):
        await directory(rig, source).list_customers()


def test_adobe_needs_the_reseller_to_list_customers_of(rig: Rig) -> None:
    with pytest.raises(ConfigError, match=r"adobe_vip\.reseller_id"):
        rig.adapter(rig.source(customers="all"))


async def test_a_customer_page_with_neither_key_is_malformed(rig: Rig) -> None:
    rig.sim.state.customers_key = "clients"

    with pytest.raises(TransientProviderError, match="neither accounts nor customers"):
        await directory(rig, discovering(rig)).list_customers()


def pc_source(sim: PcSimulator) -> SourceSettings:
    return SourceSettings.model_validate(
        {
            "name": "pc-test",
            "provider": "partner_center",
            "base_url": sim.base_url,
            "customers": "all",
            "auth": {
                "token_url": sim.token_url,
                "client_id": pc_world.CLIENT_ID,
                "client_secret": pc_world.CLIENT_SECRET,
            },
            "retry": {"attempts": 1},
            "partner_center": {"provisioning": False},
        }
    )


async def test_partner_center_follows_each_page_with_its_continuation_token(
    pc_sim: PcSimulator, pc_admin: PcAdmin
) -> None:
    for number in range(248):
        pc_sim.state.add_customer(f"c0ffee00-0000-4000-8000-{number:012d}")
    async with aiohttp.ClientSession() as session:
        adapter = connect.adapter(pc_source(pc_sim), session)
        assert isinstance(adapter, CustomerDirectory)
        listed = await adapter.list_customers()

    assert listed == pc_sim.state.customer_ids()
    assert len(listed) == 250
    calls = [e for e in await pc_admin.requests() if e["path_qs"].startswith("/v1/customers?")]
    assert [call["path_qs"] for call in calls] == [
        "/v1/customers?size=100",
        "/v1/customers?seekOperation=Next",
        "/v1/customers?seekOperation=Next",
    ]
    tokens = [call["headers"]["MS-ContinuationToken"] for call in calls]
    assert tokens[0] is None
    assert all(tokens[1:])
    assert tokens[1] != tokens[2]


# --- the poller with customers = "all" ------------------------------------------------------


class Watching:
    """A discovering poller running in the background, with what it reported."""

    def __init__(self, rig: Rig, source: SourceSettings) -> None:
        self.syncs: list[CustomerSync] = []
        self.discoveries: list[Discovery] = []
        adapter = rig.adapter(source)
        assert isinstance(adapter, CustomerDirectory)
        self.poller = Poller(
            source,
            adapter,
            rig.store,
            directory=adapter if source.discovers else None,
            on_sync=self.syncs.append,
            on_discovery=self.discoveries.append,
            clock=rig.clock,
            rng=random.Random(5),
        )
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Watching:
        self._task = asyncio.create_task(self.poller.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self.poller.stop()
        async with asyncio.timeout(10):
            await self._task

    def polled(self, customer_id: str) -> int:
        return sum(1 for sync in self.syncs if sync.customer_id == customer_id)


async def test_a_customer_found_later_is_baselined_silently_then_its_changes_publish(
    rig: Rig,
) -> None:
    source = discovering(rig, poll_interval_s=0.05, poll_jitter_s=0.0, discovery_interval_s=0.1)
    async with Watching(rig, source) as watching:
        await until(lambda: watching.polled(OTHER) > 0, what="the seeded customers polled")
        order = await rig.admin.create_order(NEW_CUSTOMER, {"status": "1002"})
        await until(lambda: watching.polled(NEW_CUSTOMER) > 0, what="the new customer's baseline")
        await rig.admin.patch_order(NEW_CUSTOMER, order["orderId"], COMPLETE)
        await until(
            lambda: any(s.customer_id == NEW_CUSTOMER and s.records for s in watching.syncs),
            what="the new customer's change",
        )

    first = next(s for s in watching.syncs if s.customer_id == NEW_CUSTOMER)
    assert (first.baseline, first.records) == (True, [])
    changed = [
        r.event_type for s in watching.syncs if s.customer_id == NEW_CUSTOMER for r in s.records
    ]
    assert "order.created" not in changed
    assert "order.status_changed" in changed
    assert any(d.added == 1 and d.customers == 3 for d in watching.discoveries)
    assert await rig.store.known_customers(SOURCE) == [CUSTOMER, OTHER, NEW_CUSTOMER]


async def test_a_customer_no_longer_listed_stops_being_polled_and_keeps_its_snapshots(
    rig: Rig,
) -> None:
    source = discovering(rig, poll_interval_s=0.05, poll_jitter_s=0.0, discovery_interval_s=0.1)
    async with Watching(rig, source) as watching:
        await until(lambda: watching.polled(OTHER) > 0, what="both customers polled")
        await rig.admin.remove_customer(OTHER)
        await until(
            lambda: any(d.removed == 1 for d in watching.discoveries), what="the removal seen"
        )
        polls_then = watching.polled(OTHER)
        polled_before = watching.polled(CUSTOMER)
        await until(lambda: watching.polled(CUSTOMER) > polled_before + 3, what="more polls")

    assert watching.polled(OTHER) - polls_then <= 1  # at most the sync already in hand
    assert watching.poller.customers_known == 1
    assert await rig.store.known_customers(SOURCE) == [CUSTOMER]
    assert await rig.store.load_snapshots(SOURCE, OTHER, ["5120000006"])


async def test_a_failed_listing_keeps_polling_the_customers_known(rig: Rig) -> None:
    await rig.store.record_customers(SOURCE, [CUSTOMER, OTHER])
    await rig.admin.fault(kind="status", status=500, count=1_000, path_contains="/resellers/")
    source = discovering(rig, poll_interval_s=0.05, poll_jitter_s=0.0, discovery_interval_s=0.1)

    async with Watching(rig, source) as watching:
        await until(
            lambda: watching.polled(CUSTOMER) > 2 and watching.polled(OTHER) > 2,
            what="the known customers polled",
        )
        await until(lambda: len(watching.discoveries) >= 2, what="two failed listings")

    assert all(d.error is not None for d in watching.discoveries)
    assert await rig.store.known_customers(SOURCE) == [CUSTOMER, OTHER]


async def test_once_lists_the_customers_and_syncs_each_once(rig: Rig) -> None:
    await rig.admin.create_customer(NEW_CUSTOMER)
    results = await Watching(rig, discovering(rig)).poller.cycle()

    assert sorted(r.customer_id for r in results) == [CUSTOMER, OTHER, NEW_CUSTOMER]
    assert all(r.outcome == "ok" and r.baseline for r in results)


# --- cadence ------------------------------------------------------------------------------


async def complete_every_order(rig: Rig, customer_id: str) -> None:
    for order in rig.sim.state.orders(customer_id):
        lines = [
            {"extLineItemNumber": line["extLineItemNumber"], "status": "1000"}
            for line in order["lineItems"]
        ]
        await rig.admin.patch_order(customer_id, order["orderId"], COMPLETE | {"lineItems": lines})


async def test_a_customer_in_flight_is_polled_hot_and_drops_to_cold_once_complete(
    rig: Rig,
) -> None:
    await complete_every_order(rig, OTHER)
    source = rig.source(
        customers=[CUSTOMER, OTHER], poll_interval_s=60, hot_interval_s=0.05, poll_jitter_s=0.0
    )
    async with Watching(rig, source) as watching:
        await until(lambda: watching.polled(CUSTOMER) >= 5, what="hot polls")
        assert watching.polled(OTHER) == 1, "the customer with nothing in flight waits 60s"
        assert watching.poller.customers_hot == 1
        await complete_every_order(rig, CUSTOMER)
        await until(lambda: watching.poller.customers_hot == 0, what="the customer cooling")
        cooled = watching.polled(CUSTOMER)
        await asyncio.sleep(0.3)

    assert watching.polled(CUSTOMER) == cooled
    hot = [s for s in watching.syncs if s.customer_id == CUSTOMER]
    assert [s.hot for s in hot] == [True] * (len(hot) - 1) + [False]
    assert [s.next_delay_s for s in hot[-2:]] == [0.05, 60.0]


async def test_a_restart_resumes_the_stored_schedule(rig: Rig) -> None:
    source = rig.source(customers=[CUSTOMER, OTHER], poll_interval_s=120, poll_jitter_s=0.0)
    first = Poller(source, rig.adapter(source), rig.store, clock=rig.clock)
    await first.sync_customer(CUSTOMER)  # a first sync: due again in one to two intervals
    state = await rig.store.poll_state(SOURCE, CUSTOMER)
    assert state is not None
    assert state.next_due_at is not None
    assert 120 <= (state.next_due_at - rig.clock()).total_seconds() <= 240

    syncs: list[CustomerSync] = []
    again = Poller(source, rig.adapter(source), rig.store, on_sync=syncs.append, clock=rig.clock)
    running = asyncio.create_task(again.run())
    await until(lambda: bool(syncs), what="the customer without a schedule polled")
    await asyncio.sleep(0.3)
    again.stop()
    await running

    assert [s.customer_id for s in syncs] == [OTHER]


async def test_a_schedule_that_passed_while_stopped_is_polled_at_once_and_counted_late(
    rig: Rig,
) -> None:
    source = rig.source(poll_interval_s=120, poll_jitter_s=0.0)
    await Poller(source, rig.adapter(source), rig.store, clock=rig.clock).sync_customer(CUSTOMER)
    state = await rig.store.poll_state(SOURCE, CUSTOMER)
    assert state is not None
    assert state.next_due_at is not None
    rig.clock.now = state.next_due_at + timedelta(seconds=180)  # down until 3 minutes past due

    syncs: list[CustomerSync] = []
    again = Poller(source, rig.adapter(source), rig.store, on_sync=syncs.append, clock=rig.clock)
    running = asyncio.create_task(again.run())
    await until(lambda: bool(syncs), what="the overdue customer polled")
    again.stop()
    await running

    assert syncs[0].lag_s >= 180


async def test_a_budget_below_the_cadence_spreads_polls_evenly_and_says_so(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    customers = [CUSTOMER, OTHER, *(f"100000000{n}" for n in range(3, 9))]
    for customer_id in customers[2:]:
        await rig.admin.create_order(customer_id, {"status": "1002"})
    # 8 hot customers every 0.5 s need 16 polls/s; the budget allows 4 requests a second.
    source = rig.source(
        customers=customers,
        poll_interval_s=60,
        hot_interval_s=0.5,
        poll_jitter_s=0.0,
        concurrency=8,
        limits={"rate_per_s": 4, "burst": 1},
    )
    syncs: list[CustomerSync] = []
    paced = connect.adapter(source, rig.session)  # the rate limiter sleeping for real
    poller = Poller(source, paced, rig.store, on_sync=syncs.append, clock=rig.clock)
    await rig.admin.clear_requests()
    caplog.set_level(logging.WARNING, logger="watcher.schedule")
    running = asyncio.create_task(poller.run())
    await until(lambda: len(syncs) >= 16, what="16 polls")
    poller.stop()
    await running

    requests = [e for e in await rig.admin.requests() if "/orders" in e["path_qs"]]
    elapsed = requests[-1]["at"] - requests[0]["at"]
    assert len(requests) <= 4 * elapsed + 2, "the vendor saw no more than the budget"
    assert not [e for e in requests if e["status"] == 429]
    counts = Counter(s.customer_id for s in syncs)
    assert max(counts.values()) - min(counts.values()) <= 1, counts
    assert max(s.lag_s for s in syncs) > 1.0
    assert poller.behind
    (warning,) = [r.getMessage() for r in caplog.records if "behind its schedule" in r.getMessage()]
    assert "needs 16.00 polls/s (8 hot customers every 0.5s, 0 others every 60s)" in warning
