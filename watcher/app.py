"""The composition root: the only module that knows every concrete class.

`serve` builds the service's parts by name (`Parts`: the metrics, the store, the pollers,
the outbox relay, the outbox watcher, the unroutable-queue reader and the HTTP endpoints
/metrics, /healthz, /readyz) and hands their loops to `service.Service`, which runs them in
one TaskGroup until asked to stop. Shutdown drains: the pollers finish the syncs in hand,
the relay stops, then whatever is still in the outbox gets one bounded attempt at the
broker before the store closes. What does not make it stays in the outbox for the next
start. When a part fails, the rest stop in the same order but nothing is drained, and
`serve` raises `ServiceFailed` naming the part, so that `run` exits non-zero and a
supervisor restarts the service.

Observation is wired in `observe`: `serve` hands `observe.Observed` the providers, the
publisher factory and the clock it builds here, so the parts stay unaware of metrics. Each
source gets a session of its own whose TraceConfig counts its vendor requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TextIO

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from pydantic import SecretStr

from watcher import observe, service, store, web
from watcher.bus import unroutable
from watcher.bus.publisher import Publisher
from watcher.bus.relay import PublisherFactory, Relay
from watcher.core.errors import BusError, ProviderError, StoreError
from watcher.core.models import Order
from watcher.core.ports import Leases, Store
from watcher.fleet import RELAY, Fleet, discovery_task, replica_name
from watcher.metrics import Metrics
from watcher.poller import CustomerSync, Poller, summary
from watcher.providers import connect, guard, sessions
from watcher.settings import Settings, SourceSettings

log = logging.getLogger(__name__)
DRAIN_TIMEOUT_S = 10.0
DRAIN_MARGIN_S = 1.0  # a fleet's drain ends this long before the relay's lease may run out


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_provider(source: SourceSettings, session: sessions.Session) -> guard.Guarded:
    """The source's vendor adapter behind its circuit breaker."""
    return connect.guarded(source, session)


ProviderFactory = Callable[[SourceSettings, sessions.Session], guard.Guarded]


def freeze_heap() -> None:
    """Take every object alive now out of the cyclic garbage collector's sight (`gc.freeze`).

    What a running service holds from its start (modules, models, settings, its parts) is
    never garbage, yet each full collection walks all of it again: measured on the outbox
    relay, those walks were a third of its CPU. Reference counting still frees frozen
    objects; only a cycle among them would stay, and the service's start builds none to drop.
    """
    gc.collect()
    gc.freeze()


def service_registry() -> CollectorRegistry:
    """A registry with the process, platform and garbage-collector collectors on it."""
    registry = CollectorRegistry()
    for collector in (ProcessCollector, PlatformCollector, GCCollector):
        collector(registry=registry)
    return registry


@dataclass(frozen=True, slots=True)
class Parts:
    """The service's long-lived parts, by name; their resources live in `serve`'s exit stack."""

    metrics: Metrics
    store: Store
    pollers: list[Poller]
    relay: Relay
    outbox_watcher: service.Loop
    unroutable_reader: service.Loop
    http: web.Address
    fleet: Fleet | None = None  # replicas sharing a PostgreSQL store

    def loops(self) -> dict[str, service.Loop]:
        """The parts that run until cancelled, by name; in a fleet, the relay and each
        discovery only while this replica holds its lease."""
        loops = {
            "relay": self.relay.run,
            "outbox watcher": self.outbox_watcher,
            "unroutable reader": self.unroutable_reader,
        }
        if self.fleet is None:
            return loops
        loops["relay"] = self.fleet.gate(RELAY, self.relay.run)
        for poller in self.pollers:
            if poller.discovers:
                task = discovery_task(poller.name)
                loops[task] = self.fleet.gate(task, poller.discover_every_interval)
        loops["fleet"] = self.fleet.run
        return loops

    async def drain(self) -> int:
        """Publish what the outbox holds, within `DRAIN_TIMEOUT_S`; in a fleet, only the
        replica that relayed drains, then hands the relay over."""
        if self.fleet is None:
            return await self.relay.drain(timeout_s=DRAIN_TIMEOUT_S)
        try:
            if not self.fleet.relayed_until_stop:
                return 0
            left_s = self.fleet.relay_lease_left_s() - DRAIN_MARGIN_S
            return await self.relay.drain(timeout_s=max(0.0, min(DRAIN_TIMEOUT_S, left_s)))
        finally:
            await self.fleet.hand_over()


async def serve(
    settings: Settings,
    *,
    stop: asyncio.Event,
    registry: CollectorRegistry | None = None,
    backlog_bound: int = web.BACKLOG_BOUND,
    on_listening: Callable[[web.Address], None] | None = None,
    publishers: PublisherFactory | None = None,
    providers: ProviderFactory = build_provider,
) -> None:
    """Poll, publish and serve the HTTP endpoints until `stop` is set, then drain and close.

    When a part fails instead, the rest stop in order and `ServiceFailed` names the part;
    the outbox keeps what was not published, with no drain attempt. `registry` defaults to
    a fresh `service_registry()`; `backlog_bound` is the readiness bound on the outbox while
    the broker is away; `on_listening` hears the bound address. `publishers` (default: a
    `Publisher` on `settings.amqp`) and `providers` build the relay's publisher and each
    source's guarded provider.
    """
    metrics = Metrics(service_registry() if registry is None else registry)
    async with contextlib.AsyncExitStack() as stack:
        parts = await _build(
            stack,
            settings,
            metrics=metrics,
            backlog_bound=backlog_bound,
            publishers=publishers or (lambda: Publisher(settings.amqp)),
            providers=providers,
        )
        freeze_heap()
        if on_listening is not None:
            on_listening(parts.http)
        log.info("watching %d source(s); store %s", len(parts.pollers), _scheme(settings.store.url))
        if parts.fleet is not None:
            log.info(
                "replica %s shares the work with the others on this store (leases of %gs)",
                parts.fleet.replica,
                settings.store.lease_s,
            )
        await service.Service(parts.pollers, parts.loops()).run(stop)
        published = await parts.drain()
        log.info("stopped; %d event(s) published while draining", published)


async def _build(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    *,
    metrics: Metrics,
    backlog_bound: int,
    publishers: PublisherFactory,
    providers: ProviderFactory,
) -> Parts:
    """Open the store, the vendor sessions and the HTTP endpoints on `stack`; build the rest."""
    url = settings.store.url.get_secret_value()
    snapshots = await stack.enter_async_context(store.opened(url, one_process=True))
    replica = replica_name()
    shared = (
        Fleet(snapshots, replica=replica, lease_s=settings.store.lease_s)
        if isinstance(snapshots, Leases)
        else None
    )
    observed = observe.Observed(
        settings,
        snapshots,
        metrics=metrics,
        backlog_bound=backlog_bound,
        publishers=publishers,
        clock=utc_now,
        replica=replica,
        fleet=shared,
    )
    pollers: list[Poller] = []
    for source in settings.sources:
        session = await stack.enter_async_context(sessions.vendor(source.name, metrics))
        pollers.append(observed.poller(source, providers(source, session), snapshots))
    await observed.refresh_outbox()
    address = await stack.enter_async_context(
        web.serving(settings.http.listen, registry=metrics.registry, readiness=observed.readiness)
    )
    return Parts(
        metrics=metrics,
        store=snapshots,
        pollers=pollers,
        relay=observed.relay,
        outbox_watcher=observed.watch_outbox,
        unroutable_reader=lambda: unroutable.watch(settings.amqp, on_depth=metrics.unroutable),
        http=address,
        fleet=shared,
    )


async def serve_until_signalled(settings: Settings) -> None:
    """`serve`, stopping cleanly on SIGTERM or SIGINT; SIGUSR1 logs every task's stack."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, log_tasks)
    await serve(settings, stop=stop)


def log_tasks() -> None:
    """Log every task of the event loop and where it waits: for a process that does not
    stop, or does not move, `kill -USR1 <pid>` says what it waits for."""
    tasks = asyncio.all_tasks()
    log.warning("%d task(s):", len(tasks))
    for task in sorted(tasks, key=lambda task: task.get_name()):
        stack = io.StringIO()
        task.print_stack(file=stack)
        log.warning("task %s:\n%s", task.get_name(), stack.getvalue().rstrip())


async def once(settings: Settings, *, out: TextIO) -> list[CustomerSync]:
    """One sync of every customer of every source; each event printed as a JSON line.

    A customer's events are printed as soon as they are committed, so a long run shows its
    progress. They are committed to the outbox like in `run`, so the service publishes them
    when it next runs; `once` itself never talks to the broker.
    """

    def show(result: CustomerSync) -> None:
        for record in result.records:
            out.write(record.body.decode() + "\n")
        out.flush()

    results: list[CustomerSync] = []
    url = settings.store.url.get_secret_value()
    async with store.opened(url, one_process=True) as snapshots, sessions.pooled() as session:
        for source in settings.sources:
            provider = build_provider(source, session)
            poller = Poller(
                source,
                provider,
                snapshots,
                directory=provider if source.discovers else None,
                on_sync=show,
                clock=utc_now,
            )
            cycle = await poller.cycle()
            log.info("once: source %s: %s", source.name, summary(cycle))
            results.extend(cycle)
    return results


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


async def check(settings: Settings) -> list[Check]:
    """Reach every dependency once: the store, the broker, and each source's vendor API."""
    checks = [await _check_store(settings), await _check_broker(settings)]
    async with sessions.pooled() as session:
        for source in settings.sources:
            checks.append(await _check_source(source, session))
    return checks


async def _check_store(settings: Settings) -> Check:
    name = f"store ({_scheme(settings.store.url)})"
    try:
        url = settings.store.url.get_secret_value()
        async with store.opened(url, read_only=True) as snapshots:
            stats = await snapshots.stats()
    except StoreError as exc:
        return Check(name, False, str(exc))
    return Check(name, True, f"readable; {stats.backlog} event(s) waiting in the outbox")


async def _check_broker(settings: Settings) -> Check:
    name = f"broker (exchange {settings.amqp.exchange})"
    try:
        async with Publisher(settings.amqp):
            pass
    except BusError as exc:
        return Check(name, False, str(exc))
    return Check(name, True, "connected; topology declared")


async def _check_source(source: SourceSettings, session: sessions.Session) -> Check:
    """The first customer's orders of the last day; with `customers = "all"`, the customer
    listing first, then the first customer it lists, or the first page of the store's
    orders changed in the last day."""
    name = f"source {source.name} ({source.provider})"
    provider = build_provider(source, session)
    day_ago = utc_now() - timedelta(days=1)
    try:
        if source.feeds:
            return Check(name, True, await _first_store_page(provider, since=day_ago))
        listed = await provider.list_customers() if source.discovers else None
        customer_ids = source.fixed_customers if listed is None else listed
        if not customer_ids:
            return Check(name, True, "the account lists no customers")
        customer_id = customer_ids[0]
        orders = await provider.fetch_orders(customer_id, since=day_ago)
    except ProviderError as exc:
        return Check(name, False, str(exc))
    found = "" if listed is None else f"{len(listed)} customer(s) listed; "
    return Check(
        name, True, f"{found}customer {customer_id}: {len(orders)} order(s) in the last day"
    )


async def _first_store_page(provider: guard.Guarded, *, since: datetime) -> str:
    pages = provider.store_orders(since=since, changed_since=since)
    async with contextlib.aclosing(pages):
        page: list[Order] = await anext(pages, [])
    customers = len({order.customer_id for order in page})
    return f"store-wide: {len(page)} order(s) of {customers} customer(s) changed in the last day"


def _scheme(url: SecretStr) -> str:
    return url.get_secret_value().partition(":")[0]
