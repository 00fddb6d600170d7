"""Building blocks for the end-to-end tests: a watcher config aimed at the simulator and a
broker, a consumer that collects what the watcher published, and polling helpers.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aio_pika
import orjson

from tests.plugins.simulator import AdobeSimulator
from watcher import store
from watcher.settings import Settings, from_mapping
from watcher.simulator.adobe_vip.world import CLIENT_ID, CLIENT_SECRET

SOURCE = "adobe-e2e"
FLUSH_TYPE = "tests.flush"
QUEUE = "e2e-orders"
POLL_S = 0.05
EventKey = tuple[str, str, str | None]
Check = Callable[[], Awaitable[bool]]


def config(sim: AdobeSimulator, *, db: Path, amqp_url: str, customers: list[str]) -> dict[str, Any]:
    """A watcher config (as TOML would give it) polling `sim` fast and publishing to a queue."""
    return {
        "store": {"url": f"sqlite:///{db}"},
        "http": {"listen": "127.0.0.1:0"},
        "amqp": {
            "url": amqp_url,
            "relay_idle_s": 0.1,
            "reconnect_delay_s": 0.3,
            "queues": [{"name": QUEUE, "bindings": ["adobe_vip.#"]}],
        },
        "sources": [
            {
                "name": SOURCE,
                "provider": "adobe_vip",
                "base_url": sim.base_url,
                "customers": customers,
                "poll_interval_s": 0.2,
                "poll_jitter_s": 0.05,
                # The simulator's orders were created before SIM_NOW and the watcher reads the
                # real clock: a window of ten years keeps them all in it as the date moves on.
                "lookback_days": 3650,
                "auth": {
                    "token_url": sim.token_url,
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                },
                "retry": {"attempts": 2, "base_delay_s": 0.05, "max_delay_s": 0.2},
                "timeout_s": 5,
            }
        ],
    }


def settings(sim: AdobeSimulator, *, db: Path, amqp_url: str, customers: list[str]) -> Settings:
    return from_mapping(config(sim, db=db, amqp_url=amqp_url, customers=customers))


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout_s: float = 15.0, what: str
) -> None:
    """Wait until `check()` holds, polling every 50 ms; fail naming `what` once `timeout_s`
    has passed (the time `check()` itself takes counts too)."""
    deadline = asyncio.timeout(timeout_s)
    try:
        async with deadline:
            while True:
                if await check():
                    return
                await asyncio.sleep(POLL_S)
    except TimeoutError:
        if not deadline.expired():
            raise
        raise AssertionError(f"gave up after {timeout_s:g}s waiting for {what}") from None


async def baseline_done(db: Path, customers: list[str]) -> bool:
    async with store.opened(f"sqlite:///{db}") as snapshots:
        states = [await snapshots.poll_state(SOURCE, customer) for customer in customers]
    return all(state is not None and state.baseline_done for state in states)


@dataclass
class Delivery:
    routing_key: str
    message_id: str | None
    type: str | None
    content_type: str | None
    persistent: bool
    body: dict[str, Any]

    @property
    def key(self) -> EventKey:
        """What changed: event type, subject and line key (None for order-level events)."""
        return (self.body["type"], self.body["subject"], self.body["data"].get("line_key"))


@dataclass
class Consumer:
    """Collects every message arriving on a queue."""

    received: list[Delivery] = field(default_factory=list)
    channel: aio_pika.abc.AbstractChannel | None = None
    queue: str = QUEUE
    _markers: dict[str, asyncio.Event] = field(default_factory=dict)

    async def flush(self, *, timeout_s: float = 15.0) -> None:
        """Return once every message that was in the queue has been received.

        A marker is published (with a confirm) to the queue behind whatever it holds; a
        queue delivers to its one consumer in order, so when the marker comes back nothing
        that was ahead of it is still on its way. The marker is not counted as received.
        """
        assert self.channel is not None, "flush() needs the channel of consuming()"
        marker = uuid.uuid4().hex
        back = self._markers[marker] = asyncio.Event()
        message = aio_pika.Message(b"", message_id=marker, type=FLUSH_TYPE)
        await self.channel.default_exchange.publish(message, routing_key=self.queue)
        async with asyncio.timeout(timeout_s):
            await back.wait()

    def keys(self) -> set[EventKey]:
        return {delivery.key for delivery in self.received}

    async def wait_for(self, expected: set[EventKey], **kw: Any) -> None:
        async def arrived() -> bool:
            return expected <= self.keys()

        await eventually(arrived, what=f"missing events: {expected - self.keys()}", **kw)

    async def on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            if message.type == FLUSH_TYPE and message.message_id in self._markers:
                self._markers.pop(message.message_id).set()
                return
            self.received.append(
                Delivery(
                    routing_key=message.routing_key or "",
                    message_id=message.message_id,
                    type=message.type,
                    content_type=message.content_type,
                    persistent=message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT,
                    body=orjson.loads(message.body),
                )
            )


@contextlib.asynccontextmanager
async def consuming(amqp_url: str, queue: str = QUEUE) -> AsyncIterator[Consumer]:
    """Consume `queue` (declared by the watcher) until the block ends, reconnecting as needed."""
    connection = await aio_pika.connect_robust(amqp_url, reconnect_interval=0.3)
    try:
        channel = await connection.channel()
        consumer = Consumer(channel=channel, queue=queue)
        declared = await _wait_for_queue(channel, queue)
        await declared.consume(consumer.on_message)
        yield consumer
    finally:
        await connection.close()


async def _wait_for_queue(
    channel: aio_pika.abc.AbstractChannel, name: str
) -> aio_pika.abc.AbstractQueue:
    async with asyncio.timeout(15):
        while True:
            try:
                return await channel.get_queue(name, ensure=True)
            except aio_pika.exceptions.ChannelClosed:
                await channel.reopen()
                await asyncio.sleep(0.1)


class BrokerLike(Protocol):
    """What the tests need of tests.plugins.rabbit.Broker."""

    @property
    def url(self) -> str: ...

    def stop(self) -> None: ...

    def start(self) -> None: ...


async def outbox_backlog_at_least(db: Path, count: int, *, at_most: int | None = None) -> bool:
    """Whether the outbox holds at least `count` (and at most `at_most`) unpublished events."""
    async with store.opened(f"sqlite:///{db}") as snapshots:
        backlog = (await snapshots.stats()).backlog
    return backlog >= count and (at_most is None or backlog <= at_most)


def to_toml(config: dict[str, Any]) -> str:
    """TOML text for a config of tables, arrays of tables, and scalar or list values."""
    lines: list[str] = []
    _emit_table(lines, (), config)
    return "\n".join(lines) + "\n"


def _emit_table(lines: list[str], path: tuple[str, ...], table: dict[str, Any]) -> None:
    nested = {k: v for k, v in table.items() if isinstance(v, dict) or _is_table_list(v)}
    for key, value in table.items():
        if key not in nested:
            lines.append(f"{key} = {_value(value)}")
    for key, value in nested.items():
        if isinstance(value, dict):
            lines.append(f"\n[{'.'.join((*path, key))}]")
            _emit_table(lines, (*path, key), value)
        else:
            for item in value:
                lines.append(f"\n[[{'.'.join((*path, key))}]]")
                _emit_table(lines, (*path, key), item)


def _is_table_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    return orjson.dumps(str(value)).decode()


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
