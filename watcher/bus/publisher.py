"""Publishes outbox records to RabbitMQ and reports which ones the broker confirmed.

`Publisher` is an async context manager: entering it opens a robust connection and one
channel with publisher confirms, and declares the topology (see `topology`); leaving it
closes them. `publish()` sends each record's body unchanged, persistent and mandatory,
with message_id = event id, type = event type and the CloudEvents content type, keeping
at most `publish_window` messages awaiting their confirm at once.

`publish()` is `send()` then `Sending.confirmed()`, and the two halves are there so that the
relay can send the next batch while the confirms of the previous one are still coming in.
The window belongs to the publisher, not to one call, so batches sent one after another
share it. Messages reach the broker in the order they were sent, across batches too:
`send()` takes a window slot for each record in turn and starts its publish only then, and
each publish goes through the channel's lock, which is first come, first served.

Only an ack counts. A nack, a message the broker returned as unroutable, or a confirm that
does not come within `timeout_s` leaves that record out of the answer, and the relay tries
it again later: delivery is at least once, and consumers drop duplicates by message_id.
When the connection is down, or nothing in a batch got through because of a connection
or channel failure, `publish()` raises `BusError` so the relay can reconnect.

The connection is aio-pika's robust one (`connect_robust`): its first attempt fails fast
when the broker is unreachable, and once connected it reconnects and re-declares the
topology on its own. A publish attempted during such a reconnect would wait for it, so
every publish is bounded by `timeout_s` from its start, and `publish()` refuses to start
while the connection is down. The bound costs no timer per message: publishes start in
order, so their deadlines come in order too, and one timer set for the oldest publish
still waiting (`_Deadlines`) cancels whatever is past its deadline and moves on.

Every aio-pika/aiormq failure becomes a `BusError` in `bus_error`, the one choke point,
with the cause chained. The AMQP URL carries a password, so messages and logs only ever
show it through `safe_url`/`redact`.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS, DeliveryError
from yarl import URL

from watcher.bus import closing, topology
from watcher.core.errors import BusError
from watcher.core.events import CONTENT_TYPE
from watcher.core.ports import OutboxRecord
from watcher.settings import AmqpSettings

log = logging.getLogger(__name__)


_Outcome = bool | Exception


class Publisher:
    """One connection and confirming channel to the broker; see the module docstring."""

    def __init__(self, settings: AmqpSettings, *, timeout_s: float | None = None) -> None:
        self._settings = settings
        self._url = settings.url.get_secret_value()
        self._timeout_s = settings.confirm_timeout_s if timeout_s is None else timeout_s
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._window = asyncio.Semaphore(settings.publish_window)
        self._deadlines = _Deadlines(self._timeout_s)

    async def __aenter__(self) -> Publisher:
        try:
            await self._open()
            closing.raise_if_cancelled()
        except CONNECTION_EXCEPTIONS as exc:
            await self._close()
            raise bus_error(
                "cannot connect to the broker or declare the topology", exc, url=self._url
            ) from exc
        except BaseException:
            await self._close()
            raise
        log.info("connected to %s, exchange %r", safe_url(self._url), self._settings.exchange)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._close()

    async def publish(self, records: Sequence[OutboxRecord]) -> list[str]:
        """Publish `records`; return the ids of those the broker acknowledged."""
        return await (await self.send(records)).confirmed()

    async def send(self, records: Sequence[OutboxRecord]) -> Sending:
        """Start publishing `records`, in order; return once the last one is on its way.

        Waits only for window slots, i.e. for confirms of what was sent before. Raises
        `BusError` when the connection is down; cancelled, it cancels what it started.
        """
        exchange = self._connected_exchange()
        started: list[asyncio.Task[_Outcome]] = []
        try:
            for record in records:
                await self._window.acquire()
                task = asyncio.create_task(self._publish_one(exchange, record))
                # Released when the task ends, however: even cancelled before its first step.
                task.add_done_callback(self._release_slot)
                self._deadlines.watch(task)
                started.append(task)
        except BaseException:
            for task in started:
                task.cancel()
            raise
        return Sending(records, started, url=self._url)

    async def _open(self) -> None:
        # What `connect_robust` does, but holding the connection before its first attempt:
        # cancelled there, it must still be closed, or its reconnect task lives on.
        self._connection = aio_pika.RobustConnection(
            URL(self._url),
            reconnect_interval=self._settings.reconnect_delay_s,
            client_properties={"connection_name": "order-watcher"},
        )
        await self._connection.connect(timeout=self._timeout_s)
        self._channel = await self._connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        self._exchange = await topology.declare(self._channel, self._settings)

    async def _close(self) -> None:
        connection = self._connection
        self._connection, self._channel, self._exchange = None, None, None
        if connection is not None:
            await closing.close_within(connection, what=f"publisher on {safe_url(self._url)}")

    def _connected_exchange(self) -> AbstractExchange:
        connection, channel, exchange = self._connection, self._channel, self._exchange
        if connection is None or channel is None or exchange is None:
            raise BusError("the publisher is not connected; use it as `async with Publisher(...)`")
        if not connection.connected.is_set() or channel.is_closed:
            raise BusError("the broker connection is down; reconnecting")
        return exchange

    async def _publish_one(self, exchange: AbstractExchange, record: OutboxRecord) -> _Outcome:
        """Publish one record and wait for its confirm; its window slot is taken already, and
        released when the task ends (`send`).

        Runs as a task that `_deadlines` watches: past `timeout_s` it is cancelled, and that
        cancel, unlike any other, ends it as not confirmed.
        """
        try:
            await exchange.publish(_message(record), routing_key=record.routing_key, mandatory=True)
        except DeliveryError as exc:
            log.debug("event %s not confirmed: %s", record.event_id, type(exc).__name__)
            return False
        except asyncio.CancelledError:
            if not self._deadlines.expired(asyncio.current_task()):
                raise
            log.debug("event %s not confirmed within %ss", record.event_id, self._timeout_s)
            return False
        except CONNECTION_EXCEPTIONS as exc:
            return exc
        return True

    def _release_slot(self, _: asyncio.Task[_Outcome]) -> None:
        self._window.release()


class _Deadlines:
    """One timer for the deadlines of every publish in flight, instead of one per message.

    Each publish task gets `timeout_s` from the moment it is watched. They are watched in
    the order they start, so the deadlines come in that order: the timer is set for the
    oldest task still running, and when it fires it cancels each task past its deadline
    (noting it as expired, as `asyncio.timeout` notes its own cancels) and is set again for
    the next. Finished tasks are dropped from the front as new ones are watched.
    """

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._watched: deque[tuple[float, asyncio.Task[_Outcome]]] = deque()
        self._expired: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, task: asyncio.Task[_Outcome]) -> None:
        """Give `task` until `timeout_s` from now to finish."""
        watched = self._watched
        while watched and watched[0][1].done():
            watched.popleft()
        loop = task.get_loop()
        watched.append((loop.time() + self._timeout_s, task))
        if self._timer is None:
            self._timer = loop.call_at(watched[0][0], self._expire, loop)

    def expired(self, task: asyncio.Task[Any] | None) -> bool:
        """Whether a cancel of `task` came from its deadline alone; then the cancel is undone.

        False when the task was also cancelled from elsewhere: that cancel must go on.
        """
        if task is None or task not in self._expired:
            return False
        self._expired.discard(task)
        return task.uncancel() == 0

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        watched = self._watched
        while watched:
            deadline, task = watched[0]
            if not task.done():
                if deadline > now:
                    self._timer = loop.call_at(deadline, self._expire, loop)
                    return
                task.cancel()
                self._expired.add(task)
            watched.popleft()


class Sending:
    """Records on their way to the broker (see `Publisher.send`), awaiting their confirms."""

    def __init__(
        self, records: Sequence[OutboxRecord], tasks: Sequence[asyncio.Task[_Outcome]], *, url: str
    ) -> None:
        self._records = records
        self._tasks = tasks
        self._url = url

    async def confirmed(self) -> list[str]:
        """The ids the broker acknowledged; `BusError` when none was, for a broken connection.

        Cancelled, it cancels the publishes still waiting: their records stay unconfirmed.
        """
        try:
            outcomes = await asyncio.gather(*self._tasks)
        except BaseException:
            self.cancel()
            raise
        confirmed = [
            record.event_id
            for record, ok in zip(self._records, outcomes, strict=True)
            if ok is True
        ]
        failures = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
        if failures and not confirmed:
            raise bus_error("publishing failed", failures[0], url=self._url) from failures[0]
        return confirmed

    def cancel(self) -> None:
        """Give up on the confirms still awaited (a failure elsewhere, or a stop)."""
        for task in self._tasks:
            task.cancel()


def _message(record: OutboxRecord) -> aio_pika.Message:
    return aio_pika.Message(
        record.body,
        message_id=record.event_id,
        type=record.event_type,
        content_type=CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


def bus_error(action: str, exc: BaseException, *, url: str) -> BusError:
    """The one translation of library errors; the message never shows the password."""
    detail = redact(str(exc), url) or "no details"
    return BusError(f"{action} ({safe_url(url)}): {type(exc).__name__}: {detail}")


def safe_url(url: str) -> str:
    """The URL with any user and password replaced by '***'."""
    parsed = URL(url)
    if parsed.user is None and parsed.password is None:
        return str(parsed)
    return str(parsed.with_user(None)).replace("://", "://***@", 1)


def redact(text: str, url: str) -> str:
    """`text` with the URL's user:password part and the password itself masked."""
    parsed = URL(url)
    text = text.replace(url, safe_url(url))
    for secret in (parsed.raw_password, parsed.password):
        if secret:
            text = text.replace(secret, "***")
    return text
