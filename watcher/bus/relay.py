"""The outbox relay: moves committed events from the outbox to the broker.

    outbox.pending(relay_batch) -> publisher.publish(records) -> outbox.mark_published(acked)

Only ids the broker acknowledged are marked, so an event is never lost: whatever was not
confirmed (nack, unroutable, timeout, lost connection) stays pending and goes out again
with the next batch. Delivery is therefore at least once; event ids are deterministic and
travel as message_id, so consumers drop duplicates.

`run()` runs until cancelled. It opens a publisher from `publisher_factory` (an async
context manager, normally `Publisher(settings)`), then publishes batch after batch while
there is backlog and otherwise sleeps until `wake()` (the poller calls it after each
committed sync) or `relay_idle_s`. When the broker is unreachable at the start or goes
away, the relay logs once per outage, waits `reconnect_delay_s` and connects again; the
pollers never wait for it, because they only write to the outbox. `drain()` publishes
everything pending once, for shutdown and `order-watcher once`; it is not meant to run
alongside `run()`.

Metrics are not built here: `on_batch` receives one `BatchResult` per publish batch, and
`connected` says whether the relay holds a broker connection. While there is nothing to
publish, the relay checks that connection after each idle period by publishing an empty
batch, so a broker that went away while all was quiet is noticed within `relay_idle_s`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NoReturn, Protocol

from watcher import logs
from watcher.core.errors import BusError, StoreError
from watcher.core.ports import Outbox, OutboxRecord
from watcher.settings import AmqpSettings

log = logging.getLogger(__name__)


class BatchPublisher(Protocol):
    async def publish(self, records: Sequence[OutboxRecord]) -> list[str]:
        """The ids of `records` the broker confirmed; raises `BusError` when it is away.

        An empty `records` sends nothing and only checks the connection.
        """
        ...


PublisherFactory = Callable[[], AbstractAsyncContextManager[BatchPublisher]]


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One publish batch: how many events were tried, how many confirmed, how long publishing
    took (first send to last confirm), and the confirmed events by type."""

    attempted: int
    published: int
    seconds: float
    published_types: Mapping[str, int] = field(default_factory=dict)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Relay:
    """Publishes the outbox; see the module docstring."""

    def __init__(
        self,
        outbox: Outbox,
        publisher_factory: PublisherFactory,
        *,
        settings: AmqpSettings,
        clock: Callable[[], datetime] = _utc_now,
        on_batch: Callable[[BatchResult], None] | None = None,
    ) -> None:
        self._outbox = outbox
        self._publisher_factory = publisher_factory
        self._settings = settings
        self._clock = clock
        self._on_batch = on_batch
        self._wake = asyncio.Event()
        self._in_outage = False
        self._connected = False

    @property
    def connected(self) -> bool:
        """Whether the relay holds a broker connection right now."""
        return self._connected

    def wake(self) -> None:
        """New events are in the outbox: publish them without waiting for the idle timer."""
        self._wake.set()

    async def run(self) -> None:
        """Publish until cancelled, reconnecting whenever the broker is away."""
        while True:
            try:
                async with self._publisher_factory() as publisher:
                    self._broker_reachable()
                    try:
                        await self._pump(publisher)
                    finally:
                        self._connected = False
            except BusError as exc:
                self._broker_unreachable(exc)
            await asyncio.sleep(self._settings.reconnect_delay_s)

    async def drain(self, *, timeout_s: float) -> int:
        """Publish everything pending within `timeout_s`; return how many were published."""
        published = 0
        try:
            async with asyncio.timeout(timeout_s), aclosing(self._drain_batches()) as batches:
                async for batch in batches:
                    published += batch.published
        except TimeoutError:
            log.warning("drain gave up after %.1fs with events still pending", timeout_s)
        return published

    async def _drain_batches(self) -> AsyncGenerator[BatchResult, None]:
        while True:
            try:
                async with self._publisher_factory() as publisher:
                    self._broker_reachable()
                    try:
                        while (batch := await self._publish_batch(publisher)).attempted:
                            yield batch
                            await self._pause_after(batch)
                    finally:
                        self._connected = False
                    return
            except BusError as exc:
                self._broker_unreachable(exc)
            await asyncio.sleep(self._settings.reconnect_delay_s)

    async def _pump(self, publisher: BatchPublisher) -> NoReturn:
        while True:
            try:
                batch = await self._publish_batch(publisher)
            except StoreError as exc:
                log.warning("cannot read or update the outbox: %s", exc)
                await asyncio.sleep(self._settings.reconnect_delay_s)
                continue
            if batch.published < batch.attempted:
                await self._pause_after(batch)
            elif batch.attempted < self._settings.relay_batch and not await self._idle():
                await publisher.publish(())

    async def _publish_batch(self, publisher: BatchPublisher) -> BatchResult:
        self._wake.clear()
        records = await self._outbox.pending(self._settings.relay_batch)
        if not records:
            return BatchResult(attempted=0, published=0, seconds=0.0)
        started = time.monotonic()
        confirmed = await publisher.publish(records)
        seconds = time.monotonic() - started
        if confirmed:
            await self._outbox.mark_published(confirmed, at=self._clock())
        result = BatchResult(len(records), len(confirmed), seconds, _types(records, confirmed))
        level = logging.INFO if result.published == result.attempted else logging.WARNING
        log.log(
            level,
            "published %d of %d events in %.3fs",
            result.published,
            result.attempted,
            result.seconds,
            extra=logs.fields(
                outcome="ok" if result.published == result.attempted else "unconfirmed",
                duration_s=result.seconds,
            ),
        )
        if self._on_batch is not None:
            self._on_batch(result)
        return result

    async def _pause_after(self, batch: BatchResult) -> None:
        """Go on at once after a clean batch; back off when some events were not confirmed."""
        if batch.published < batch.attempted:
            await asyncio.sleep(self._settings.reconnect_delay_s)

    async def _idle(self) -> bool:
        """Wait for `wake()` or `relay_idle_s`; True when woken."""
        try:
            async with asyncio.timeout(self._settings.relay_idle_s):
                await self._wake.wait()
        except TimeoutError:
            return False
        return True

    def _broker_reachable(self) -> None:
        if self._in_outage:
            log.info("broker reachable again; publishing the backlog")
        self._in_outage = False
        self._connected = True

    def _broker_unreachable(self, exc: BusError) -> None:
        if not self._in_outage:
            log.warning(
                "broker unavailable, retrying every %.1fs: %s",
                self._settings.reconnect_delay_s,
                exc,
                extra=logs.fields(error=exc),
            )
        else:
            log.debug("broker still unavailable: %s", exc)
        self._in_outage = True


def _types(records: Sequence[OutboxRecord], confirmed: Sequence[str]) -> dict[str, int]:
    ids = set(confirmed)
    return dict(Counter(record.event_type for record in records if record.event_id in ids))
