"""The HTTP endpoints of the running service: /healthz, /metrics and /readyz.

The readiness rules first, as a table on a controllable clock. Then the service itself
(`app.serve` on 127.0.0.1:0, its own registry) against the Adobe simulator over real
sockets: with a real broker it is healthy, exports the poll metrics and is ready; with the
broker on a closed loopback port it turns unready once the outbox grows past a small bound,
and a source failing every poll turns it unready after three poll intervals. Last, the
unroutable queue's depth read from a real broker by `watcher.bus.unroutable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from tests import harness
from tests.plugins.simulator import SIM_CUSTOMERS, AdobeSimulator, SimAdmin
from watcher import app, web
from watcher.bus import unroutable
from watcher.bus.publisher import Publisher
from watcher.core.errors import ConfigError
from watcher.core.ports import OutboxRecord
from watcher.metrics import Metrics
from watcher.settings import AmqpSettings, Settings, from_mapping

SOURCE = harness.SOURCE
CUSTOMERS = list(SIM_CUSTOMERS)
pytestmark = pytest.mark.timeout(30)


# --- the readiness rules --------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Broker:
    connected: bool = False


def readiness(clock: Clock, broker: Broker) -> web.Readiness:
    return web.Readiness(
        stale_after_s={"a": 30.0, "b": 60.0},
        broker_connected=lambda: broker.connected,
        backlog_bound=3,
        clock=clock,
    )


def failing(report: dict[str, Any]) -> set[str]:
    checks = report["checks"]
    names = {name for name in ("store", "broker") if not checks[name]["ok"]}
    return names | {name for name, check in checks["sources"].items() if not check["ok"]}


def test_stale_after_is_three_intervals_with_jitter() -> None:
    assert web.stale_after_s(120.0, 5.0) == 375.0


def test_the_store_must_have_been_read() -> None:
    ready = readiness(Clock(), Broker())
    assert failing(ready.report()) == {"store"}
    ready.store_read(0)
    assert ready.report()["ready"] is True
    ready.store_failed("cannot read the outbox: disk I/O error")
    report = ready.report()
    assert (report["ready"], failing(report)) == (False, {"store"})
    assert report["checks"]["store"]["detail"] == "cannot read the outbox: disk I/O error"


def test_without_a_broker_the_backlog_must_stay_below_the_bound() -> None:
    broker = Broker()
    ready = readiness(Clock(), broker)
    ready.store_read(2)
    assert ready.report()["checks"]["broker"] == {
        "ok": True,
        "detail": "not connected; 2 event(s) waiting in the outbox, below the bound of 3",
    }
    ready.store_read(3)
    assert failing(ready.report()) == {"broker"}
    broker.connected = True
    assert ready.report()["checks"]["broker"] == {"ok": True, "detail": "connected"}


def test_each_source_needs_a_successful_poll_within_its_window() -> None:
    clock = Clock()
    ready = readiness(clock, Broker(connected=True))
    ready.store_read(0)
    clock.now += 30.0
    assert ready.report()["ready"] is True
    clock.now += 0.5
    report = ready.report()
    assert failing(report) == {"a"}
    assert report["checks"]["sources"]["a"]["detail"] == (
        "no successful poll in the 30.5s since start (allowed: 30s)"
    )

    ready.source_polled("a")
    clock.now += 30.0
    assert failing(ready.report()) == {"b"}
    ready.source_polled("b")
    clock.now += 1.0
    report = ready.report()
    assert failing(report) == {"a"}
    assert report["checks"]["sources"]["b"]["detail"] == (
        "last successful poll 1.0s ago (allowed: 60s)"
    )


def test_in_a_fleet_a_source_held_by_other_replicas_does_not_count_against_this_one() -> None:
    clock = Clock()
    held = {"a": 0, "b": 2, "@tasks": 1}
    ready = web.Readiness(
        stale_after_s={"a": 30.0, "b": 60.0},
        broker_connected=lambda: True,
        clock=clock,
        replica="host-1-abc",
        store="postgresql",
        leases_held=lambda: held,
    )
    ready.store_read(0)
    clock.now += 61.0

    report = ready.report()

    assert failing(report) == {"b"}  # the one it holds leases of and has not polled
    assert report["checks"]["sources"]["a"]["detail"].startswith("this replica holds none")
    assert report["replica"] == {"id": "host-1-abc", "store": "postgresql", "leases": held}
    held["a"] = 1
    assert failing(ready.report()) == {"a", "b"}


def test_a_single_process_names_itself_and_its_store_without_leases() -> None:
    ready = web.Readiness(
        stale_after_s={}, broker_connected=lambda: True, replica="host-2-def", store="sqlite"
    )
    assert ready.report()["replica"] == {"id": "host-2-def", "store": "sqlite"}


@pytest.mark.parametrize("listen", ["9108", "localhost", "127.0.0.1:http", "127.0.0.1:70000"])
def test_a_bad_listen_address_names_the_setting(listen: str) -> None:
    with pytest.raises(ConfigError, match=r"^http\.listen: "):
        web.parse_listen(listen)


async def test_a_port_in_use_is_a_config_error() -> None:
    ready = readiness(Clock(), Broker())
    registry = CollectorRegistry()
    async with web.serving("127.0.0.1:0", registry=registry, readiness=ready) as address:
        taken = f"{address.host}:{address.port}"
        with pytest.raises(ConfigError, match="cannot listen on"):
            async with web.serving(taken, registry=registry, readiness=ready):
                pass


# --- the running service --------------------------------------------------------------


def closed_port_url() -> str:
    """An AMQP URL on a loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"amqp://guest:guest@127.0.0.1:{port}/"


def service_settings(
    sim: AdobeSimulator, tmp_path: Path, *, amqp_url: str, **source: Any
) -> Settings:
    config = harness.config(sim, db=tmp_path / "w.db", amqp_url=amqp_url, customers=CUSTOMERS)
    config["http"] = {"listen": "127.0.0.1:0"}
    config["sources"][0] |= {"full_relist_interval_s": 0.001, **source}
    return from_mapping(config)


@dataclass
class Service:
    base_url: str
    registry: CollectorRegistry
    session: aiohttp.ClientSession

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.base_url + path) as reply:
            return reply.status, await reply.text()

    async def get_json(self, path: str) -> tuple[int, Any]:
        async with self.session.get(self.base_url + path) as reply:
            return reply.status, await reply.json()

    def sample(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(f"order_watcher_{name}", labels)

    async def readyz_until(self, done: Any, *, what: str) -> dict[str, Any]:
        """Poll /readyz until `done(status, body)` holds; the last body."""
        last: dict[str, Any] = {}

        async def check() -> bool:
            nonlocal last
            status, last = await self.get_json("/readyz")
            return bool(done(status, last))

        await harness.eventually(check, timeout_s=15, what=f"{what}; last /readyz: {last}")
        return last


@contextlib.asynccontextmanager
async def running(
    settings: Settings, *, drain: bool = True, backlog_bound: int = web.BACKLOG_BOUND
) -> AsyncIterator[Service]:
    """`app.serve` in a task; on exit it is stopped (and drains) or, without a broker, cancelled."""
    stop = asyncio.Event()
    registry = CollectorRegistry()
    listening: asyncio.Future[web.Address] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        app.serve(
            settings,
            stop=stop,
            registry=registry,
            backlog_bound=backlog_bound,
            on_listening=listening.set_result,
        )
    )
    try:
        started: set[asyncio.Future[Any]] = {task, listening}
        await asyncio.wait(started, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
        host, port = listening.result()
        async with aiohttp.ClientSession() as session:
            yield Service(f"http://{host}:{port}", registry, session)
    finally:
        await _end(task, stop, drain=drain)


async def _end(task: asyncio.Task[None], stop: asyncio.Event, *, drain: bool) -> None:
    if drain:
        stop.set()
        await asyncio.wait_for(task, timeout=20)
        return
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_healthy_exports_metrics_and_ready_with_everything_up(
    adobe_sim: AdobeSimulator, amqp_url: str, tmp_path: Path
) -> None:
    settings = service_settings(adobe_sim, tmp_path, amqp_url=amqp_url)
    async with running(settings) as service:
        assert await service.get_json("/healthz") == (200, {"status": "ok"})
        body = await service.readyz_until(
            lambda status, body: (
                status == 200 and body["checks"]["broker"]["detail"] == "connected"
            ),
            what="ready with the broker connected",
        )
        await harness.eventually(
            lambda: _polled_ok(service), what="order_watcher_polls_total on /metrics"
        )
        status, text = await service.get("/metrics")

    assert body["ready"] is True
    assert set(body["checks"]) == {"store", "broker", "sources"}
    assert body["checks"]["sources"][SOURCE]["ok"] is True
    samples = exposition(text)
    assert status == 200
    assert samples[("order_watcher_orders_tracked", (("source", SOURCE),))] == 10.0
    # Both seeded customers have an open order: both are hot.
    assert samples[("order_watcher_customers", (("source", SOURCE),))] == 2.0
    assert samples[("order_watcher_customers_hot", (("source", SOURCE),))] == 2.0
    assert samples[("order_watcher_poll_lag_seconds_count", (("source", SOURCE),))] >= 2.0
    assert samples[("order_watcher_broker_connected", ())] == 1.0
    assert samples[("order_watcher_circuit_state", (("source", SOURCE),))] == 0.0
    token = (("code", "200"), ("endpoint", "token"), ("source", SOURCE))
    assert samples[("order_watcher_vendor_requests_total", token)] == 1.0
    assert ("order_watcher_outbox_backlog", ()) in samples


async def _polled_ok(service: Service) -> bool:
    _, text = await service.get("/metrics")
    key = ("order_watcher_polls_total", (("outcome", "ok"), ("source", SOURCE)))
    return exposition(text).get(key, 0.0) >= len(CUSTOMERS)


def exposition(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_unready_when_the_broker_is_down_and_the_backlog_passes_the_bound(
    adobe_sim: AdobeSimulator, tmp_path: Path
) -> None:
    settings = service_settings(
        adobe_sim, tmp_path, amqp_url=closed_port_url(), created_on_baseline=True
    )
    async with running(settings, drain=False, backlog_bound=5) as service:
        body = await service.readyz_until(
            lambda status, body: status == 503 and not body["checks"]["broker"]["ok"],
            what="unready for the broker",
        )
        backlog = service.sample("outbox_backlog")
        connected = service.sample("broker_connected")

    assert body["ready"] is False
    assert body["checks"]["store"]["ok"] is True
    assert body["checks"]["sources"][SOURCE]["ok"] is True
    detail = body["checks"]["broker"]["detail"]
    assert detail.startswith("not connected and ")
    assert detail.endswith("event(s) waiting in the outbox, the bound is 5")
    assert backlog is not None
    assert backlog >= 5
    assert connected == 0.0


async def test_unready_when_a_source_has_not_polled_for_three_intervals(
    adobe_sim: AdobeSimulator, sim_admin: SimAdmin, tmp_path: Path
) -> None:
    await sim_admin.fault(kind="status", status=500, count=-1)
    settings = service_settings(
        adobe_sim,
        tmp_path,
        amqp_url=closed_port_url(),
        poll_interval_s=0.05,
        poll_jitter_s=0,
        retry={"attempts": 1},
    )
    async with running(settings, drain=False) as service:
        body = await service.readyz_until(
            lambda status, body: status == 503 and not body["checks"]["sources"][SOURCE]["ok"],
            what="unready for the failing source",
        )
        await harness.eventually(
            _breaker_open(service), what="order_watcher_circuit_state 2 (open)"
        )
        errors = service.sample("polls_total", source=SOURCE, outcome="error")

    assert body["ready"] is False
    detail = body["checks"]["sources"][SOURCE]["detail"]
    assert detail.startswith("no successful poll in the ")
    assert detail.endswith("since start (allowed: 0.15s)")
    assert body["checks"]["store"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["broker"]["detail"].startswith("not connected; 0 event(s)")
    assert errors is not None
    assert errors >= 1


def _breaker_open(service: Service) -> harness.Check:
    async def check() -> bool:
        return service.sample("circuit_state", source=SOURCE) == 2.0

    return check


# --- the unroutable queue -------------------------------------------------------------


async def test_the_unroutable_queue_depth_is_read_from_the_broker(amqp_url: str) -> None:
    settings = AmqpSettings.model_validate({"url": amqp_url})
    stray = OutboxRecord(
        event_id="ev-1",
        event_type="order.created",
        routing_key="nobody.order.created",
        body=b"{}",
        created_at=datetime.now(UTC),
    )
    async with Publisher(settings, timeout_s=10) as publisher:
        assert await publisher.publish([stray]) == ["ev-1"]

    registry = CollectorRegistry()
    watching = asyncio.create_task(
        unroutable.watch(settings, on_depth=Metrics(registry).unroutable)
    )
    try:
        await harness.eventually(
            _unroutable_is(registry, 1.0), timeout_s=10, what="order_watcher_unroutable_events 1"
        )
    finally:
        watching.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watching

    connection = await aio_pika.connect(amqp_url)
    async with connection:
        assert await unroutable.depth(connection, settings.unroutable_queue) == 1


def _unroutable_is(registry: CollectorRegistry, expected: float) -> harness.Check:
    async def check() -> bool:
        return registry.get_sample_value("order_watcher_unroutable_events") == expected

    return check
