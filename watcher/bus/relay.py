"""The outbox relay: moves committed events from the outbox to the broker.

    outbox.pending(relay_batch, after=last read) -> publisher.send(batch)
        ... then, for the batch before it: confirmed() -> outbox.mark_published(acked)

Only ids the broker acknowledged are marked, so an event is never lost: whatever was not
confirmed (nack, unroutable, timeout, lost connection) stays pending and goes out again
with the next batch. Delivery is therefore at least once; event ids are deterministic and
travel as message_id, so consumers drop duplicates.

Batches are pipelined, two at most in flight: the next batch is read (after the last event
read, so nothing in flight is read twice) while the one before it waits for its window
slots, and sent while the previous one's confirms come in, and only then is the previous
one marked. Waiting for each batch's last confirm, its
marking and the next read before sending again left the broker idle between batches. The
order holds: a batch is sent only once the one before it is on its way, and the publisher
keeps the order in which it was asked to send (so an order's events reach the exchange in
outbox order). When a batch comes back with events unconfirmed, the batch sent behind it
is settled too, and the relay pauses and starts again from the oldest pending event, so
the unconfirmed ones go out again first.

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
from collections import Counter, deque
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
PIPELINE_DEPTH = 2  # batches sent and not yet settled, at most


class Confirmations(Protocol):
    """A batch on its way to the broker (`BatchPublisher.send`)."""

    async def confirmed(self) -> list[str]:
        """The ids of the batch the broker confirmed; raises `BusError` when it is away."""
        ...

    def cancel(self) -> None:
        """Stop waiting for the confirms; what was not confirmed stays unconfirmed."""
        ...


class BatchPublisher(Protocol):
    async def publish(self, records: Sequence[OutboxRecord]) -> list[str]:
        """The ids of `records` the broker confirmed; raises `BusError` when it is away.

        An empty `records` sends nothing and only checks the connection.
        """
        ...

    async def send(self, records: Sequence[OutboxRecord]) -> Confirmations:
        """Start publishing `records` in order, after whatever was sent before; return once
        the last is on its way (waiting only for the publisher's window)."""
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
        may_send: Callable[[], bool] = lambda: True,
    ) -> None:
        self._outbox = outbox
        self._may_send = may_send  # asked before every batch sent (a fleet's relay lease)
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
                        while True:
                            clean = True
                            async with aclosing(self._backlog(publisher)) as batches:
                                async for batch in batches:
                                    clean = clean and _clean(batch)
                                    yield batch
                            if clean:
                                return
                            await asyncio.sleep(self._settings.reconnect_delay_s)
                    finally:
                        self._connected = False
            except BusError as exc:
                self._broker_unreachable(exc)
            await asyncio.sleep(self._settings.reconnect_delay_s)

    async def _pump(self, publisher: BatchPublisher) -> NoReturn:
        while True:
            clean = True
            try:
                async with aclosing(self._backlog(publisher)) as batches:
                    async for batch in batches:
                        clean = clean and _clean(batch)
            except StoreError as exc:
                log.warning("cannot read or update the outbox: %s", exc)
                await asyncio.sleep(self._settings.reconnect_delay_s)
                continue
            if not clean:
                await asyncio.sleep(self._settings.reconnect_delay_s)
            elif not await self._idle():
                await publisher.publish(())

    async def _backlog(self, publisher: BatchPublisher) -> AsyncGenerator[BatchResult, None]:
        """Publish the outbox from its oldest pending event, the next batch sent before the
        one ahead of it is settled, until a read finds nothing more or a batch comes back
        with events unconfirmed.

        Either way every batch sent is settled (its confirms awaited, the confirmed events
        marked) before this ends; on an error or a stop, what is still in flight is given
        up, unmarked, to be published again.
        """
        in_flight: deque[_InFlight] = deque()
        reading: asyncio.Task[list[OutboxRecord]] | None = None
        try:
            records = await self._read(after=None)
            while True:
                if records and not self._may_send():
                    log.info("no longer relaying: %d event(s) left to the next relay", len(records))
                    records = []
                if records:
                    # The next batch is read while this one waits for its window slots, so
                    # the read does not hold up the send after it.
                    reading = asyncio.create_task(self._read(after=records[-1].event_id))
                    in_flight.append(await self._send(publisher, records))
                if len(in_flight) < PIPELINE_DEPTH and records:
                    records, reading = await _taken(reading), None
                    continue
                batch = await self._settle(in_flight[0]) if in_flight else None
                if batch is not None:
                    in_flight.popleft()
                    yield batch
                if batch is None or not records or not _clean(batch):
                    while in_flight:
                        yield await self._settle(in_flight[0])
                        in_flight.popleft()
                    return
                records, reading = await _taken(reading), None
        finally:
            if reading is not None:
                _abandon(reading)
            for sent in in_flight:
                sent.confirmations.cancel()

    async def _read(self, *, after: str | None) -> list[OutboxRecord]:
        """The next pending batch after `after`; a commit from now on wakes the relay again."""
        self._wake.clear()
        return await self._outbox.pending(self._settings.relay_batch, after=after)

    async def _send(self, publisher: BatchPublisher, records: list[OutboxRecord]) -> _InFlight:
        started = time.monotonic()
        return _InFlight(records, await publisher.send(records), started)

    async def _settle(self, batch: _InFlight) -> BatchResult:
        """Wait for the batch's confirms, mark the confirmed events published, report."""
        confirmed = await batch.confirmations.confirmed()
        seconds = time.monotonic() - batch.started
        if confirmed:
            await self._outbox.mark_published(confirmed, at=self._clock())
        records = batch.records
        result = BatchResult(len(records), len(confirmed), seconds, _types(records, confirmed))
        level = logging.INFO if _clean(result) else logging.WARNING
        log.log(
            level,
            "published %d of %d events in %.3fs",
            result.published,
            result.attempted,
            result.seconds,
            extra=logs.fields(
                outcome="ok" if _clean(result) else "unconfirmed",
                duration_s=result.seconds,
            ),
        )
        if self._on_batch is not None:
            self._on_batch(result)
        return result

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


@dataclass(frozen=True, slots=True)
class _InFlight:
    """A batch sent and not settled yet: its records, their confirms, when sending began."""

    records: list[OutboxRecord]
    confirmations: Confirmations
    started: float


async def _taken(reading: asyncio.Task[list[OutboxRecord]] | None) -> list[OutboxRecord]:
    """What the read ahead found; nothing when there was none (the last read found none)."""
    return [] if reading is None else await reading


def _abandon(reading: asyncio.Task[list[OutboxRecord]]) -> None:
    """Give up a read ahead: cancelled, and its outcome, even a failure, left unheard."""
    reading.cancel()
    reading.add_done_callback(lambda task: task.cancelled() or task.exception())


def _clean(batch: BatchResult) -> bool:
    """Whether the broker confirmed every event of the batch."""
    return batch.published == batch.attempted


def _types(records: Sequence[OutboxRecord], confirmed: Sequence[str]) -> dict[str, int]:
    ids = set(confirmed)
    return dict(Counter(record.event_type for record in records if record.event_id in ids))
