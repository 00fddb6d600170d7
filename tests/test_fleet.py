"""Three `order-watcher run` replicas on one PostgreSQL store, one broker and the simulator
with 30 customers, each replica a real process.

While 40 order changes are made, one replica is SIGKILLed and another SIGSTOPped past its
lease and then resumed: every change arrives, nothing else does, a change delivered twice
carries one id, and the events of each order arrive in sequence order. The vendor sees the
work shared, not tripled: about one list call per customer per poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import signal
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import pytest

from tests import harness
from tests.plugins.simulator import SIM_NOW, ManualClock, SimAdmin
from watcher.simulator import Simulator, adobe_vip, running
from watcher.simulator.adobe_vip import scenario
from watcher.simulator.adobe_vip.world import AdobeVipState

pytestmark = pytest.mark.timeout(180)
CUSTOMERS = [f"10000000{n:02d}" for n in range(1, 31)]
POLL_S = 0.4
LEASE_S = 2.0
RATE_PER_S = 400.0  # for the fleet: 30 customers every POLL_S need 75 calls a second
READY = "watcher.app: watching"
QUANTITY = "order.line_item.quantity_changed"
SOURCE = harness.SOURCE
Key = tuple[str, int]  # (subject, sequence)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator[AdobeVipState]]:
    state = AdobeVipState(ManualClock(SIM_NOW), random.Random(99))
    scenario.seed(state, customers=30, orders_per_customer=2, rng_seed=5, now=SIM_NOW)
    async with running(adobe_vip.api(state)) as served:
        yield served


class Replica:
    """One `order-watcher run` process with its own log."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "watcher.cli", "run", "--config", str(self.config),
                stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
            )  # fmt: skip

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextlib.asynccontextmanager
async def fleet_of(
    count: int, sim: Simulator[AdobeVipState], pg_url: str, amqp_url: str, tmp_path: Path
) -> AsyncIterator[list[Replica]]:
    config = harness.config(sim, db=tmp_path / "unused.db", amqp_url=amqp_url, customers=CUSTOMERS)
    config["store"] = {"url": pg_url, "lease_s": LEASE_S}
    source = config["sources"][0]
    source |= {"poll_interval_s": POLL_S, "poll_jitter_s": 0.05, "concurrency": 8}
    source["hot_interval_s"] = POLL_S
    source["limits"] = {"rate_per_s": RATE_PER_S, "burst": 20}
    path = tmp_path / "watcher.toml"
    path.write_text(harness.to_toml(config))
    replicas = [Replica(path, tmp_path / f"replica-{n}.log") for n in range(count)]
    try:
        await asyncio.gather(*(replica.start() for replica in replicas))
        await harness.eventually(
            _all_logged(replicas, READY), what="the replicas to start", timeout_s=30
        )
        yield replicas
    except BaseException:
        for n, replica in enumerate(replicas):
            print(f"--- replica {n}\n{replica.text()[-6000:]}")
        raise
    finally:
        for replica in replicas:
            if replica.process is not None and replica.process.returncode is None:
                replica.process.send_signal(signal.SIGCONT)
                replica.process.kill()
                await replica.process.wait()


def _all_logged(replicas: list[Replica], text: str) -> harness.Check:
    async def check() -> bool:
        return all(text in replica.text() for replica in replicas)

    return check


async def baselined(pg_url: str) -> bool:
    db = await asyncpg.connect(pg_url)
    try:
        done = await db.fetchval(
            "SELECT count(*) FROM poll_state WHERE baseline_done AND customer_id = any($1)",
            CUSTOMERS,
        )
    except asyncpg.UndefinedTableError:
        return False
    finally:
        await db.close()
    return bool(done == len(CUSTOMERS))


async def bump(admin: SimAdmin, state: AdobeVipState, customer_id: str, order_id: str) -> str:
    line = state.order(customer_id, order_id)["lineItems"][0]
    patch = {"extLineItemNumber": line["extLineItemNumber"], "quantity": line["quantity"] + 1}
    await admin.patch_order(customer_id, order_id, {"lineItems": [patch]})
    return f"adobe_vip/{customer_id}/{order_id}"


def changes(consumer: harness.Consumer) -> list[tuple[str, int, str | None]]:
    """(subject, sequence, id) of every quantity change received, in arrival order."""
    return [
        (d.body["subject"], d.body["data"]["sequence"], d.message_id)
        for d in consumer.received
        if d.body["type"] == QUANTITY
    ]


async def test_three_replicas_lose_nothing_when_one_dies_and_one_pauses(
    sim: Simulator[AdobeVipState], pg_url: str, amqp_url: str, tmp_path: Path
) -> None:
    rng = random.Random(3)
    orders = [(c, o["orderId"]) for c in CUSTOMERS for o in sim.state.orders(c)]
    chosen = rng.sample(orders, 20)
    async with (
        fleet_of(3, sim, pg_url, amqp_url, tmp_path) as replicas,
        aiohttp.ClientSession() as session,
    ):
        admin = SimAdmin(session, sim)
        await harness.eventually(lambda: baselined(pg_url), what="every baseline", timeout_s=30)
        async with harness.consuming(amqp_url) as consumer:
            # Round one: 20 changes, and the replica relaying killed as they are made.
            subjects = [await bump(admin, sim.state, *order) for order in chosen[:10]]
            killed = await _relaying(replicas)
            killed.signal(signal.SIGKILL)
            subjects += [await bump(admin, sim.state, *order) for order in chosen[10:]]
            await _arrived(consumer, len(set(subjects)), timeout_s=30)

            # Round two: the same orders again while the replica relaying now sleeps past
            # its lease, then wakes up.
            paused = await _relaying([r for r in replicas if r is not killed])
            paused.signal(signal.SIGSTOP)
            for order in chosen:
                await bump(admin, sim.state, *order)
            await asyncio.sleep(LEASE_S * 2.5)
            paused.signal(signal.SIGCONT)
            await _arrived(consumer, 2 * len(chosen), timeout_s=45)
            await asyncio.sleep(LEASE_S)  # anything late from the resumed replica
            await consumer.flush()

    password = urlsplit(pg_url).password
    assert password
    assert all(password not in replica.text() for replica in replicas)
    received = changes(consumer)
    expected = {(subject, sequence) for subject in subjects for sequence in (2, 3)}
    assert {(subject, sequence) for subject, sequence, _ in received} == expected
    assert {d.body["type"] for d in consumer.received} == {QUANTITY}, "nothing else arrives"
    ids: dict[Key, set[str | None]] = defaultdict(set)
    for subject, sequence, event_id in received:
        ids[(subject, sequence)].add(event_id)
    assert all(len(found) == 1 for found in ids.values()), "a duplicate has the same id"
    first_seen: dict[str, list[int]] = defaultdict(list)
    for subject, sequence, _ in received:
        if sequence not in first_seen[subject]:
            first_seen[subject].append(sequence)
    assert all(seen == sorted(seen) for seen in first_seen.values()), first_seen


async def _relaying(replicas: list[Replica]) -> Replica:
    """The replica that took the relay's lease last."""
    found: list[Replica] = []

    async def one() -> bool:
        found[:] = [
            r
            for r in replicas
            if r.text().count("leads relay")
            > r.text().count("no longer leads relay") + r.text().count("lease on relay ran out")
        ]
        return len(found) == 1

    await harness.eventually(one, what="one replica relaying", timeout_s=20)
    return found[0]


async def _arrived(consumer: harness.Consumer, count: int, *, timeout_s: float) -> None:
    async def enough() -> bool:
        return len({(s, q) for s, q, _ in changes(consumer)}) >= count

    await harness.eventually(enough, what=f"{count} changes", timeout_s=timeout_s)


async def test_the_vendor_sees_the_work_shared_not_tripled(
    sim: Simulator[AdobeVipState], pg_url: str, amqp_url: str, tmp_path: Path
) -> None:
    async with fleet_of(3, sim, pg_url, amqp_url, tmp_path) as replicas:
        await harness.eventually(lambda: baselined(pg_url), what="every baseline", timeout_s=30)
        await asyncio.sleep(LEASE_S * 2)  # the leases settle into shares
        sim.state.requests.clear()
        window_s = 8.0
        await asyncio.sleep(window_s)
        calls = _list_calls(sim.state.requests.entries())
        shares = await _shares(pg_url)
        assert all(replica.process and replica.process.returncode is None for replica in replicas)
        reports = [await _endpoint(replica, "/readyz") for replica in replicas]
        exposition = await _endpoint(replicas[0], "/metrics")

    per_customer = [calls.get(customer, 0) for customer in CUSTOMERS]
    intervals = window_s / (POLL_S + 0.025)  # the mean jitter
    ratio = sum(per_customer) / len(CUSTOMERS) / intervals
    print(f"list calls per customer per interval: {ratio:.2f}; shares {sorted(shares.values())}")
    assert 0.7 <= ratio <= 1.3, (ratio, per_customer)
    assert sorted(shares.values()) == [10, 10, 10], shares
    assert {report["replica"]["id"] for report in reports} == set(shares)
    assert all(report["replica"]["store"] == "postgresql" for report in reports)
    assert sorted(report["replica"]["leases"][SOURCE] for report in reports) == [10, 10, 10]
    assert sum(report["replica"]["leases"]["@tasks"] for report in reports) == 1  # the relay
    assert all(report["ready"] for report in reports), reports
    assert 'order_watcher_replica_info{replica="' in exposition["text"]
    assert f'order_watcher_leases_held{{source="{SOURCE}"}} 10.0' in exposition["text"]


async def _endpoint(replica: Replica, path: str) -> dict[str, Any]:
    """GET `path` of the replica's HTTP endpoints (its port is in its log)."""
    found = re.search(r"serving /metrics /healthz /readyz on ([\d.]+:\d+)", replica.text())
    assert found, replica.text()
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://{found.group(1)}{path}") as reply,
    ):
        if path == "/readyz":
            report: dict[str, Any] = await reply.json()
            return report
        return {"text": await reply.text()}


async def _shares(pg_url: str) -> dict[str, int]:
    """Customers by the replica holding their lease now."""
    db = await asyncpg.connect(pg_url)
    try:
        rows = await db.fetch(
            "SELECT l.holder, count(*) FROM leases AS l JOIN replicas AS r"
            " ON r.replica = l.holder WHERE l.customer_id = any($1)"
            " AND r.expires_at > clock_timestamp() GROUP BY l.holder",
            CUSTOMERS,
        )
    finally:
        await db.close()
    return {row[0]: row[1] for row in rows}


def _list_calls(entries: list[Any]) -> dict[str, int]:
    """List calls by customer id (`/v3/customers/<id>/orders?...`)."""
    counts: dict[str, int] = defaultdict(int)
    for entry in entries:
        parts = entry.path_qs.split("?")[0].split("/")
        if len(parts) >= 5 and parts[2] == "customers" and parts[4] == "orders":
            counts[parts[3]] += 1
    return counts
