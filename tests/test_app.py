"""The service as a whole: one part failing stops all of it, and a normal stop still drains.

`app.serve` runs in this process against the Adobe simulator over real sockets, with its
store in SQLite in a temp dir and its HTTP endpoints on 127.0.0.1:0. A failure is made
for real: a hand-written publisher whose opening raises a bug (not a `BusError`), or a
source whose hand-written provider raises one in the middle of a sync. Either way `serve`
raises `ServiceFailed` naming the part within seconds, having let the pollers end on
their own (not cancelled), cancelled the other loops and closed the HTTP endpoints; what
was not published stays in the outbox. A normal stop is checked against a real broker:
the relay's own loop is refused the broker, so only the drain after the stop can have
published what the queue then holds. Last, `order-watcher run` as a real process whose
broker URL the AMQP client refuses: exit code 1, one line on stderr, no traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from tests import harness
from tests.plugins.simulator import SIM_CUSTOMERS, AdobeSimulator
from tests.test_cli import closed_port, run_cli
from watcher import app, service, web
from watcher.bus import unroutable
from watcher.bus.publisher import Publisher
from watcher.bus.relay import BatchPublisher, Confirmations, PublisherFactory
from watcher.core.errors import BusError, ServiceFailed
from watcher.core.models import Order
from watcher.core.ports import OutboxRecord
from watcher.providers import guard
from watcher.settings import AmqpSettings, Settings, SourceSettings, from_mapping

CUSTOMERS = list(SIM_CUSTOMERS)
ORDERS = 10
BROKEN = "broken-source"
PASSWORD = "broker-pw-Tq93"
pytestmark = pytest.mark.timeout(30)


# --- hand-written parts that fail ------------------------------------------------------


class BrokenPublisher:
    """A publisher whose opening raises a bug, not a `BusError`, once `broken` is set."""

    def __init__(self, broken: asyncio.Event) -> None:
        self._broken = broken

    async def __aenter__(self) -> BrokenPublisher:
        await self._broken.wait()
        raise RuntimeError("the publisher has a bug")

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def publish(self, records: Sequence[OutboxRecord]) -> list[str]:
        return []

    async def send(self, records: Sequence[OutboxRecord]) -> Confirmations:
        raise NotImplementedError("never opened")


class CrashingProvider:
    """A `Provider` whose fetch raises a bug, not a `ProviderError`, once `crash` is set."""

    def __init__(self, crash: asyncio.Event) -> None:
        self._crash = crash

    async def fetch_orders(
        self, customer_id: str, *, since: datetime | None, changed_since: datetime | None = None
    ) -> list[Order]:
        await self._crash.wait()
        raise RuntimeError(f"cannot map the orders of {customer_id}")


def crashing_source(crash: asyncio.Event) -> app.ProviderFactory:
    """The usual providers, but the source named BROKEN gets a `CrashingProvider`."""

    def build(source: SourceSettings, session: aiohttp.ClientSession) -> guard.Guarded:
        if source.name != BROKEN:
            return app.build_provider(source, session)
        breaker = guard.CircuitBreaker(source.name, failures=3, open_s=30)
        return guard.Guarded(CrashingProvider(crash), breaker)

    return build


@contextlib.asynccontextmanager
async def drain_only(settings: AmqpSettings) -> AsyncIterator[BatchPublisher]:
    """The real publisher, refused to the relay's own loop (the task named "relay")."""
    task = asyncio.current_task()
    if task is not None and task.get_name() == "relay":
        raise BusError("held back from the relay's loop; only the drain may publish")
    async with Publisher(settings) as publisher:
        yield publisher


# --- the service in a task -------------------------------------------------------------


def service_settings(
    sim: AdobeSimulator, db: Path, *, amqp_url: str | None = None, broken: bool = False
) -> Settings:
    """Fast polls of `sim` whose baseline puts one order.created per order in the outbox."""
    url = amqp_url or f"amqp://guest:guest@127.0.0.1:{closed_port()}/"
    config = harness.config(sim, db=db, amqp_url=url, customers=CUSTOMERS)
    config["sources"][0]["created_on_baseline"] = True
    if broken:
        config["sources"].append({**config["sources"][0], "name": BROKEN, "customers": ["c-1"]})
    return from_mapping(config)


@dataclass
class Running:
    task: asyncio.Task[None]
    stop: asyncio.Event
    address: web.Address

    def loops(self) -> dict[str, asyncio.Task[Any]]:
        """The service's own tasks, by name."""
        names = {"relay", "outbox watcher", "unroutable reader"}
        return {
            task.get_name(): task
            for task in asyncio.all_tasks()
            if task.get_name() in names or task.get_name().startswith("poller ")
        }

    async def ends_within(self, seconds: float) -> None:
        async with asyncio.timeout(seconds):
            await self.task


@contextlib.asynccontextmanager
async def running(
    settings: Settings,
    *,
    publishers: PublisherFactory | None = None,
    providers: app.ProviderFactory = app.build_provider,
) -> AsyncIterator[Running]:
    """`app.serve` in a task, listening; whatever still runs at the end is cancelled."""
    stop = asyncio.Event()
    listening: asyncio.Future[web.Address] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        app.serve(
            settings,
            stop=stop,
            registry=CollectorRegistry(),
            on_listening=listening.set_result,
            publishers=publishers,
            providers=providers,
        )
    )
    try:
        started: set[asyncio.Future[Any]] = {task, listening}
        await asyncio.wait(started, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
        yield Running(task, stop, listening.result())
    finally:
        task.cancel()
        await asyncio.wait({task})


async def closed(address: web.Address) -> bool:
    """Whether nothing accepts connections on `address` any more."""
    try:
        _, writer = await asyncio.open_connection(address.host, address.port)
    except OSError:
        return True
    writer.close()
    await writer.wait_closed()
    return False


# --- a failing part stops the service --------------------------------------------------


async def test_a_failing_relay_stops_the_pollers_and_fails_naming_the_relay(
    adobe_sim: AdobeSimulator, tmp_path: Path
) -> None:
    db = tmp_path / "w.db"
    broken = asyncio.Event()
    settings = service_settings(adobe_sim, db)
    async with running(settings, publishers=lambda: BrokenPublisher(broken)) as run:
        await harness.eventually(lambda: harness.baseline_done(db, CUSTOMERS), what="baseline")
        loops = run.loops()
        assert set(loops) == {"relay", "outbox watcher", "unroutable reader", "poller adobe-e2e"}
        broken.set()
        with pytest.raises(ServiceFailed) as failed:
            await run.ends_within(5)

    assert failed.value.part == "relay"
    assert str(failed.value) == "relay failed: RuntimeError: the publisher has a bug"
    assert isinstance(failed.value.__cause__, RuntimeError)
    assert not loops["poller adobe-e2e"].cancelled(), "cancelled instead of finishing its syncs"
    assert all(task.done() for task in loops.values())
    assert not run.loops()
    assert await closed(run.address)
    assert await harness.outbox_backlog_at_least(db, ORDERS, at_most=ORDERS)


async def test_a_crashing_poller_stops_the_relay_and_the_endpoints_and_keeps_the_outbox(
    adobe_sim: AdobeSimulator, tmp_path: Path
) -> None:
    db = tmp_path / "w.db"
    crash = asyncio.Event()
    settings = service_settings(adobe_sim, db, broken=True)
    async with running(settings, providers=crashing_source(crash)) as run:
        await harness.eventually(
            lambda: harness.outbox_backlog_at_least(db, ORDERS), what="the baseline's events"
        )
        loops = run.loops()
        crash.set()
        # No drain is tried: with the broker away it alone would take DRAIN_TIMEOUT_S.
        with pytest.raises(ServiceFailed) as failed:
            await run.ends_within(app.DRAIN_TIMEOUT_S / 2)

    assert failed.value.part == f"poller {BROKEN}"
    assert str(failed.value) == (
        f"poller {BROKEN} failed: RuntimeError: cannot map the orders of c-1"
    )
    assert isinstance(failed.value.__cause__, ExceptionGroup)
    assert not loops["poller adobe-e2e"].cancelled()
    assert loops["relay"].cancelled()
    assert all(task.done() for task in loops.values())
    assert await closed(run.address)
    assert await harness.outbox_backlog_at_least(db, ORDERS, at_most=ORDERS)


async def test_a_loop_that_ends_on_its_own_fails_the_service() -> None:
    async def returns() -> None:
        return None

    stop = asyncio.Event()
    with pytest.raises(ServiceFailed, match=r"^relay failed: it ended on its own$"):
        async with asyncio.timeout(5):
            await service.Service([], {"relay": returns}).run(stop)
    assert not stop.is_set()


# --- a normal stop drains --------------------------------------------------------------


async def test_a_normal_stop_drains_the_outbox_and_returns(
    adobe_sim: AdobeSimulator, amqp_url: str, tmp_path: Path
) -> None:
    db = tmp_path / "w.db"
    settings = service_settings(adobe_sim, db, amqp_url=amqp_url)
    async with running(settings, publishers=lambda: drain_only(settings.amqp)) as run:
        await harness.eventually(
            lambda: harness.outbox_backlog_at_least(db, ORDERS), what="the baseline's events"
        )
        run.stop.set()
        await run.ends_within(15)

    assert run.task.result() is None
    assert await harness.outbox_backlog_at_least(db, 0, at_most=0)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        assert await unroutable.depth(connection, harness.QUEUE) == ORDERS


# --- the command line ------------------------------------------------------------------


async def test_run_exits_1_with_one_line_when_a_part_fails(
    adobe_sim: AdobeSimulator, tmp_path: Path
) -> None:
    # The settings take any URL, but the AMQP client refuses this port when it connects:
    # a ValueError, which neither the relay nor the unroutable reader expects.
    config = harness.config(
        adobe_sim,
        db=tmp_path / "w.db",
        amqp_url=f"amqp://watcher:{PASSWORD}@127.0.0.1:99999/",
        customers=CUSTOMERS,
    )
    path = tmp_path / "order-watcher.toml"
    path.write_text(harness.to_toml(config))

    completed = await run_cli("run", "--config", str(path), cwd=tmp_path)

    lines = completed.stderr.strip().splitlines()
    assert completed.returncode == 1, completed.stderr
    assert re.fullmatch(
        r"order-watcher: the service stopped: (relay|unroutable reader) failed: ValueError: .+",
        lines[-1],
    ), completed.stderr
    assert "failed; stopping the service: ValueError" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert PASSWORD not in completed.stderr
