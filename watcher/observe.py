"""Observation: what the running parts report, fed into the metrics and the readiness rules.

The parts stay unaware of metrics. `Observed` hears every finished customer sync and publish
batch and feeds `Metrics` and `web.Readiness`; the circuit gauge and the broker gauge read the
breaker and the relay when scraped. It is handed what it watches (the providers behind their
breakers, the publisher factory, the clock), so the composition root stays the only place
that builds concrete adapters.

`watch_outbox` refreshes what nothing reports by itself: the outbox backlog and age from
`stats()`, every `OUTBOX_REFRESH_S` and at once after a sync with events or a publish batch.
The unroutable queue's depth comes from `watcher.bus.unroutable`, whose reports the
composition root hands straight to `Metrics.unroutable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from watcher import web
from watcher.bus.relay import BatchResult, PublisherFactory, Relay
from watcher.core.errors import StoreError
from watcher.core.ports import Outbox, Store
from watcher.fleet import TASKS, Fleet
from watcher.metrics import Metrics
from watcher.poller import CustomerSync, Discovery, Poller
from watcher.providers import guard
from watcher.settings import Settings, SourceSettings

log = logging.getLogger(__name__)
OUTBOX_REFRESH_S = 5.0


class Observed:
    """Feeds what the running parts report into the metrics and the readiness rules.

    `publishers` opens the relay's publisher; `clock` stamps the pollers' syncs and ages the
    outbox's oldest event.
    """

    def __init__(
        self,
        settings: Settings,
        outbox: Outbox,
        *,
        metrics: Metrics,
        backlog_bound: int,
        publishers: PublisherFactory,
        clock: Callable[[], datetime],
        replica: str = "",
        fleet: Fleet | None = None,
    ) -> None:
        self.metrics = metrics
        self.fleet = fleet
        store = settings.store.url.get_secret_value().partition(":")[0].lower()
        store = "postgresql" if store == "postgres" else store  # one name for the backend
        leases_held = None if fleet is None else (lambda: fleet.leases_held)
        names = [source.name for source in settings.sources] + [TASKS]
        metrics.replica(replica, store=store, held=leases_held, sources=names)
        self.relay = Relay(
            outbox,
            publishers,
            settings=settings.amqp,
            on_batch=self.batch_published,
            may_send=(lambda: True) if fleet is None else fleet.may_relay,
        )
        self.readiness = web.Readiness(
            stale_after_s={
                s.name: web.stale_after_s(s.poll_interval_s, s.poll_jitter_s)
                for s in settings.sources
            },
            broker_connected=lambda: self.relay.connected,
            backlog_bound=backlog_bound,
            replica=replica,
            store=store,
            leases_held=leases_held,
        )
        self._outbox = outbox
        self._outbox_changed = asyncio.Event()
        self._clock = clock
        metrics.watch_broker(lambda: self.relay.connected)
        metrics.watch_relaying((lambda: True) if fleet is None else fleet.may_relay)

    def poller(self, source: SourceSettings, provider: guard.Guarded, snapshots: Store) -> Poller:
        """The source's poller, its breaker watched and its syncs observed."""
        self.metrics.source_added(source.name)
        self.metrics.watch_circuit(source.name, lambda: provider.breaker.state.value)
        poller = Poller(
            source,
            provider,
            snapshots,
            directory=provider if source.discovers else None,
            clock=self._clock,
            on_sync=lambda result: self.sync_finished(poller, result),
            on_discovery=lambda found: self.discovered(poller, found),
            shared=self.fleet is not None,
        )
        if self.fleet is not None:
            self.fleet.add(poller, provider.limiter)
        return poller

    def sync_finished(self, poller: Poller, result: CustomerSync) -> None:
        self.metrics.poll_finished(result.source, result.outcome, result.seconds)
        self.metrics.poll_started_late(result.source, result.lag_s)
        self.metrics.customers(
            result.source, known=poller.customers_known, hot=poller.customers_hot
        )
        if result.error is None:
            self.readiness.source_polled(result.source)
            self.metrics.orders_tracked(result.source, poller.orders_tracked)
            self.metrics.stuck_orders(result.source, poller.stuck_by_status)
        if result.records:
            self.metrics.changes_detected(result.source, (r.event_type for r in result.records))
            self.relay.wake()
            self._outbox_changed.set()

    def discovered(self, poller: Poller, found: Discovery) -> None:
        self.metrics.discovery_finished(found.source, ok=found.error is None)
        self.metrics.customers(found.source, known=poller.customers_known, hot=poller.customers_hot)

    def batch_published(self, batch: BatchResult) -> None:
        self.metrics.batch_published(batch.published_types, seconds=batch.seconds)
        self._outbox_changed.set()

    async def refresh_outbox(self) -> None:
        """Read the outbox's backlog and age into the metrics and the readiness rules."""
        self._outbox_changed.clear()
        try:
            stats = await self._outbox.stats()
        except StoreError as exc:
            log.warning("cannot read the outbox: %s", exc)
            self.readiness.store_failed(str(exc))
            return
        oldest = stats.oldest_created_at
        age_s = 0.0 if oldest is None else max(0.0, (self._clock() - oldest).total_seconds())
        self.metrics.outbox(stats.backlog, age_s)
        self.readiness.store_read(stats.backlog)

    async def watch_outbox(self) -> None:
        """`refresh_outbox` every OUTBOX_REFRESH_S, and soon after the outbox changed."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(OUTBOX_REFRESH_S):
                    await self._outbox_changed.wait()
            await self.refresh_outbox()
