"""Nothing is lost when the watcher process dies: SIGKILL between cycles, in the middle of a
fetch and in the middle of publishing, then a restart. Every change is delivered, and any
duplicate carries the same event id and body. SIGTERM drains and exits 0.

The watcher runs as a real `order-watcher run` process against the in-process simulator
(served by this test's event loop, so the test only ever awaits) and a real broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from tests import harness
from tests.plugins.simulator import AdobeSimulator, SimAdmin

CUSTOMERS = ["1000000001", "1000000002"]
pytestmark = pytest.mark.timeout(120)
READY = "watcher.app: watching"


class Watcher:
    """An `order-watcher run` process that can be killed and started again."""

    def __init__(self, config: Path, log: Path) -> None:
        self._config = config
        self._log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start the process and wait until it has set up its signal handlers."""
        starts = self.log_text().count(READY)
        with self._log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "watcher.cli", "run", "--config", str(self._config),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip
        await harness.eventually(
            _logged(self, READY, starts + 1), what=f"the watcher to start:\n{self.log_text()}"
        )

    async def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        assert await self.process.wait() == -signal.SIGKILL

    async def terminate(self) -> int:
        """SIGTERM and the exit status; a process still running after 30 s is asked for
        its tasks' stacks (SIGUSR1, into the log the test prints) before the test fails."""
        assert self.process is not None
        self.process.terminate()
        try:
            return await asyncio.wait_for(self.process.wait(), timeout=30)
        except TimeoutError:
            self.process.send_signal(signal.SIGUSR1)
            await asyncio.sleep(1)
            raise

    def log_text(self) -> str:
        return self._log.read_text(errors="replace") if self._log.exists() else ""


@contextlib.asynccontextmanager
async def watching(
    adobe_sim: AdobeSimulator, amqp_url: str, tmp_path: Path
) -> AsyncIterator[Watcher]:
    """A `Watcher` of the simulator's customers on a store in `tmp_path` (not started yet);
    when the test fails, a process still running is killed and the log is printed."""
    config = tmp_path / "watcher.toml"
    db = tmp_path / "watcher.db"
    config.write_text(
        harness.to_toml(harness.config(adobe_sim, db=db, amqp_url=amqp_url, customers=CUSTOMERS))
    )
    watcher = Watcher(config, tmp_path / "watcher.log")
    try:
        yield watcher
    except BaseException:
        if watcher.process and watcher.process.returncode is None:
            watcher.process.kill()
        print(watcher.log_text())
        raise


def _logged(watcher: Watcher, text: str, times: int) -> harness.Check:
    async def check() -> bool:
        return watcher.log_text().count(text) >= times

    return check


async def complete(sim: AdobeSimulator, admin: SimAdmin, customer_id: str, order_id: str) -> None:
    """The order and its lines reach 1000 and every line gets a subscription id."""
    lines = [
        {"extLineItemNumber": n, "status": "1000", "subscriptionId": f"s-{order_id}-{n}"}
        for n in (
            line["extLineItemNumber"]
            for line in sim.state.order(customer_id, order_id)["lineItems"]
        )
    ]
    await admin.patch_order(customer_id, order_id, {"status": "1000", "lineItems": lines})


def status_key(customer_id: str, order_id: str) -> harness.EventKey:
    return ("order.status_changed", f"adobe_vip/{customer_id}/{order_id}", None)


def quantity_key(customer_id: str, order_id: str) -> harness.EventKey:
    return ("order.line_item.quantity_changed", f"adobe_vip/{customer_id}/{order_id}", "1")


async def bump_quantity(
    sim: AdobeSimulator, admin: SimAdmin, customer_id: str, order_id: str
) -> None:
    line = sim.state.order(customer_id, order_id)["lineItems"][0]
    patch = {"extLineItemNumber": line["extLineItemNumber"], "quantity": line["quantity"] + 1}
    await admin.patch_order(customer_id, order_id, {"lineItems": [patch]})


async def test_sigkill_at_any_point_loses_nothing(
    adobe_sim: AdobeSimulator, sim_admin: SimAdmin, amqp_url: str, tmp_path: Path
) -> None:
    db = tmp_path / "watcher.db"
    async with watching(adobe_sim, amqp_url, tmp_path) as watcher:
        await watcher.start()
        await harness.eventually(
            lambda: harness.baseline_done(db, CUSTOMERS), what="the baseline sync"
        )
        async with harness.consuming(amqp_url) as consumer:
            expected = await _kill_and_restart(adobe_sim, sim_admin, watcher, consumer)
            await consumer.wait_for(expected, timeout_s=30)
            assert await watcher.terminate() == 0, "SIGTERM drains and exits 0"
            await consumer.flush()  # whatever the process published has been received
        assert await harness.outbox_backlog_at_least(db, 0, at_most=0)
    _assert_duplicates_are_identical(consumer.received)
    assert consumer.keys() == expected
    assert "sim-secret" not in watcher.log_text()


async def _kill_and_restart(
    sim: AdobeSimulator, admin: SimAdmin, watcher: Watcher, consumer: harness.Consumer
) -> set[harness.EventKey]:
    # Between cycles: the change is delivered, then the process dies.
    await bump_quantity(sim, admin, "1000000001", "5120000003")
    await consumer.wait_for({quantity_key("1000000001", "5120000003")})
    await watcher.kill()

    # While it is down, an order completes; the restarted watcher finds it.
    await complete(sim, admin, "1000000001", "5120000001")
    await watcher.start()
    await consumer.wait_for({status_key("1000000001", "5120000001")})

    # In the middle of a fetch: vendor replies stall, the change is pending, the process dies.
    # A finite count (never reached) so the fault shows when it has taken a request.
    stalls = 1_000
    await admin.fault(kind="slow", delay_s=5.0, count=stalls)
    await bump_quantity(sim, admin, "1000000002", "5120000006")
    await harness.eventually(_stalled(sim, stalls), what="a vendor call held by the fault")
    await watcher.kill()
    await admin.clear_faults()
    await watcher.start()
    await consumer.wait_for({quantity_key("1000000002", "5120000006")})

    # In the middle of publishing: killed as soon as the first of a burst of events arrives.
    await complete(sim, admin, "1000000002", "5120000008")
    await complete(sim, admin, "1000000002", "5120000010")
    burst = {status_key("1000000002", "5120000008"), status_key("1000000002", "5120000010")}
    seen = len(consumer.received)
    await harness.eventually(_more_than(consumer, seen), what="the burst to start arriving")
    await watcher.kill()
    await watcher.start()
    await consumer.wait_for(burst)
    return _all_keys(sim, burst)


def _stalled(sim: AdobeSimulator, count: int) -> harness.Check:
    """Whether the one registered fault has taken a request of its `count`."""

    async def check() -> bool:
        return any(fault.count < count for fault in sim.state.faults.active())

    return check


def _more_than(consumer: harness.Consumer, count: int) -> harness.Check:
    async def check() -> bool:
        return len(consumer.received) > count

    return check


def _all_keys(sim: AdobeSimulator, burst: set[harness.EventKey]) -> set[harness.EventKey]:
    keys = {
        quantity_key("1000000001", "5120000003"),
        quantity_key("1000000002", "5120000006"),
        status_key("1000000001", "5120000001"),
        *burst,
    }
    for customer_id, order_id in (
        ("1000000001", "5120000001"),
        ("1000000002", "5120000008"),
        ("1000000002", "5120000010"),
    ):
        for line in sim.state.order(customer_id, order_id)["lineItems"]:
            subject = f"adobe_vip/{customer_id}/{order_id}"
            number = str(line["extLineItemNumber"])
            keys.add(("order.line_item.status_changed", subject, number))
            keys.add(("order.provisioning_changed", subject, number))
    return keys


def _assert_duplicates_are_identical(received: list[harness.Delivery]) -> None:
    """A change delivered twice carries one id; one id always carries the same event."""
    ids_by_change: dict[harness.EventKey, set[str | None]] = defaultdict(set)
    bodies_by_id: dict[str | None, set[bytes]] = defaultdict(set)
    for delivery in received:
        ids_by_change[delivery.key].add(delivery.message_id)
        data = {k: v for k, v in delivery.body.items() if k != "time"}
        bodies_by_id[delivery.message_id].add(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))
    assert all(len(ids) == 1 for ids in ids_by_change.values()), ids_by_change
    assert all(len(bodies) == 1 for bodies in bodies_by_id.values())


async def test_sigusr1_logs_every_task_and_the_service_runs_on(
    adobe_sim: AdobeSimulator, amqp_url: str, tmp_path: Path
) -> None:
    db = tmp_path / "watcher.db"
    async with watching(adobe_sim, amqp_url, tmp_path) as watcher:
        await watcher.start()
        assert watcher.process is not None
        await harness.eventually(
            lambda: harness.baseline_done(db, CUSTOMERS), what="the baseline sync"
        )
        watcher.process.send_signal(signal.SIGUSR1)
        await harness.eventually(_logged(watcher, "task(s):", 1), what="the task dump")
        assert await watcher.terminate() == 0
    log = watcher.log_text()
    assert "task poller adobe-e2e:" in log
    assert "task relay:" in log


async def test_a_stop_just_after_start_ends_at_once(
    adobe_sim: AdobeSimulator, amqp_url: str, tmp_path: Path
) -> None:
    """SIGTERM while the broker connections are still being made: each stop ends within
    seconds, never waiting on a connection cut short (a swallowed cancellation once kept
    the unroutable queue reader alive for ever)."""
    rng = random.Random(11)
    async with watching(adobe_sim, amqp_url, tmp_path) as watcher:
        for _ in range(12):
            await watcher.start()
            await asyncio.sleep(rng.uniform(0, 0.06))
            assert await watcher.terminate() == 0
