"""`order-watcher tail` against a real private broker.

Covers: only events whose routing key matches a pattern are printed, one readable line each
(time, routing key, subject, line key, before -> after); JSON mode prints each body exactly;
a body that is not a CloudEvent prints a marked raw line and the tail goes on; `limit`,
`stop` and cancellation end it, its queue is gone afterwards and consumer queues keep their
messages; the exchange keeps its arguments, and on a fresh virtual host the tail declares
the topology; a connection closed by the broker and an unreachable broker are `BusError`s
that never show the password.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aio_pika
import orjson
import pytest
from aio_pika.abc import AbstractChannel
from aio_pika.exceptions import ChannelNotFoundEntity
from yarl import URL

from tests.plugins.rabbit import Broker
from watcher.bus import tail, topology
from watcher.core.errors import BusError
from watcher.settings import AmqpSettings, QueueSettings

STATUS_KEY = "adobe_vip.order.status_changed.completed"
QUANTITY_KEY = "adobe_vip.order.line_item.quantity_changed"
CREATED_KEY = "adobe_vip.order.created"
BILLING = QueueSettings(name="billing", bindings=["#"], type="classic", dead_letter=False)


def event(event_type: str, **data: Any) -> bytes:
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"id-{event_type}",
            "source": "order-watcher/adobe-prod",
            "type": event_type,
            "subject": "adobe_vip/9876543210/5120008001",
            "time": "2026-11-24T09:40:00Z",
            "datacontenttype": "application/json",
            "data": {"provider": "adobe_vip", "order_id": "5120008001", **data},
        }
    )


CREATED = event("order.created")
STATUS = event(
    "order.status_changed",
    before={"value": "pending", "raw": "1002"},
    after={"value": "completed", "raw": "1000"},
)
QUANTITY = event("order.line_item.quantity_changed", line_key="1", before=5, after=7)
SUBJECT = "2026-11-24T09:40:00Z  {key:<56} adobe_vip/9876543210/5120008001"


class Output(io.StringIO):
    """What the tail printed, with an event set on every write."""

    def __init__(self) -> None:
        super().__init__()
        self.written = asyncio.Event()

    def write(self, text: str, /) -> int:
        self.written.set()
        return super().write(text)


@dataclass
class Tail:
    task: asyncio.Task[int]
    out: Output
    queue: str

    def lines(self) -> list[str]:
        return self.out.getvalue().splitlines()


@pytest.fixture
async def channel(amqp_url: str) -> AsyncIterator[AbstractChannel]:
    """A channel on the test's virtual host, with the topology and a `billing` queue."""
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel()
        await topology.declare(channel, settings_for(amqp_url, BILLING))
        yield channel


def settings_for(url: str, *queues: QueueSettings) -> AmqpSettings:
    return AmqpSettings.model_validate(
        {"url": url, "queues": [queue.model_dump() for queue in queues]}
    )


async def start(broker: Broker, url: str, **kw: Any) -> Tail:
    """A running tail, once its queue is bound and consumed."""
    out = Output()
    task = asyncio.create_task(tail.tail(settings_for(url), out=out, **kw))
    async with asyncio.timeout(20):
        while not (queue := await tail_queue(broker, url)):
            assert not task.done(), task.result()
            await asyncio.sleep(0.05)
    return Tail(task, out, queue)


async def tail_queue(broker: Broker, url: str) -> str | None:
    """The name of the server-named queue with a consumer, if there is one yet."""
    rows = await asyncio.to_thread(
        ctl_json, broker, "list_queues", URL(url).path.lstrip("/"), "name", "consumers"
    )
    tails = (row for row in rows if row["name"].startswith("amq.gen-") and row["consumers"])
    return next((row["name"] for row in tails), None)


def ctl_json(broker: Broker, what: str, vhost: str, *columns: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(
        broker.ctl(what, "-p", vhost, *columns, "--formatter", "json")
    )
    return rows


def rows_by(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(row for row in rows if row["name"] == name)


async def publish(channel: AbstractChannel, *messages: tuple[str, bytes]) -> None:
    exchange = await channel.get_exchange("order-watcher")
    for routing_key, body in messages:
        await exchange.publish(aio_pika.Message(body), routing_key=routing_key)


async def exchange_arguments(broker: Broker, url: str) -> dict[str, Any]:
    vhost = URL(url).path.lstrip("/")
    rows = await asyncio.to_thread(ctl_json, broker, "list_exchanges", vhost, "name", "arguments")
    return {key: value for key, _type, value in rows_by(rows, "order-watcher")["arguments"]}


async def test_prints_matching_events_one_readable_line_each(
    amqp_url: str, rabbit_broker: Broker, channel: AbstractChannel
) -> None:
    patterns = ["*.order.status_changed.*", "adobe_vip.order.line_item.#"]
    running = await start(rabbit_broker, amqp_url, patterns=patterns, limit=2)
    await publish(
        channel,
        (CREATED_KEY, CREATED),
        ("zuora.order.line_item.added", CREATED),
        (STATUS_KEY, STATUS),
    )
    await publish(channel, (QUANTITY_KEY, QUANTITY), (STATUS_KEY, STATUS))

    assert await asyncio.wait_for(running.task, 20) == 2
    assert running.lines() == [
        f"{SUBJECT.format(key=STATUS_KEY)}  pending (1002) -> completed (1000)",
        f"{SUBJECT.format(key=QUANTITY_KEY)} line 1  5 -> 7",
    ]


async def test_json_mode_prints_each_body_exactly_and_marks_raw_bodies(
    amqp_url: str, rabbit_broker: Broker, channel: AbstractChannel
) -> None:
    running = await start(rabbit_broker, amqp_url, json_lines=True, limit=2)
    await publish(channel, (STATUS_KEY, STATUS), (CREATED_KEY, b"not json\n"))

    assert await asyncio.wait_for(running.task, 20) == 2
    [status, raw] = running.lines()
    assert status == STATUS.decode()
    assert orjson.loads(raw) == {"raw": "not json\n", "routing_key": CREATED_KEY}


async def test_a_body_that_is_no_cloud_event_prints_a_raw_line_and_the_tail_goes_on(
    amqp_url: str, rabbit_broker: Broker, channel: AbstractChannel
) -> None:
    running = await start(rabbit_broker, amqp_url, limit=3)
    await publish(channel, (CREATED_KEY, b"\xffhello"), (CREATED_KEY, b'{"a": 1}'))
    await publish(channel, (CREATED_KEY, CREATED))

    assert await asyncio.wait_for(running.task, 20) == 3
    assert running.lines() == [
        f'[not a CloudEvent]  {CREATED_KEY}  "\ufffdhello"',
        f'[not a CloudEvent]  {CREATED_KEY}  "{{\\"a\\": 1}}"',
        SUBJECT.format(key=CREATED_KEY),
    ]


async def test_stop_leaves_no_queue_consumer_messages_and_exchange_arguments_untouched(
    amqp_url: str, rabbit_broker: Broker, channel: AbstractChannel
) -> None:
    stop = asyncio.Event()
    running = await start(rabbit_broker, amqp_url, stop=stop)
    await publish(channel, (STATUS_KEY, STATUS))
    await asyncio.wait_for(running.out.written.wait(), 20)
    stop.set()

    assert await asyncio.wait_for(running.task, 20) == 1
    billing = await channel.declare_queue("billing", passive=True)
    assert billing.declaration_result.message_count == 1
    with pytest.raises(ChannelNotFoundEntity):
        await channel.declare_queue(running.queue, passive=True)
    assert await exchange_arguments(rabbit_broker, amqp_url) == {
        "alternate-exchange": "order-watcher.unroutable"
    }


async def test_on_a_fresh_vhost_it_declares_the_topology_and_cancelling_ends_it(
    amqp_url: str, rabbit_broker: Broker
) -> None:
    running = await start(rabbit_broker, amqp_url)
    running.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running.task

    assert await exchange_arguments(rabbit_broker, amqp_url) == {
        "alternate-exchange": "order-watcher.unroutable"
    }
    assert await tail_queue(rabbit_broker, amqp_url) is None


async def test_a_connection_closed_by_the_broker_is_a_bus_error(
    amqp_url: str, rabbit_broker: Broker
) -> None:
    running = await start(rabbit_broker, amqp_url)
    vhost = URL(amqp_url).path.lstrip("/")
    await asyncio.to_thread(rabbit_broker.ctl, "close_all_connections", "-p", vhost, "test")

    with pytest.raises(BusError, match="lost the connection"):
        await asyncio.wait_for(running.task, 20)


async def test_an_unreachable_broker_is_a_bus_error_without_the_password() -> None:
    url = "amqp://order:hunter2-secret@127.0.0.1:1/"
    with pytest.raises(BusError) as caught:
        await tail.tail(settings_for(url), out=io.StringIO())

    assert "hunter2-secret" not in str(caught.value)
    assert "hunter2-secret" not in repr(caught.value.__cause__)
    assert "amqp://***@127.0.0.1:1/" in str(caught.value)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"before": None, "after": {"value": "pending", "raw": None}}, "  - -> pending"),
        (
            {"before": {"value": "paid", "raw": "paid"}, "after": {"value": "failed"}},
            "  paid -> failed",
        ),
        ({"line_key": "A-1", "line": {"quantity": 2}}, " line A-1"),
        ({}, ""),
    ],
)
def test_readable_shows_line_key_and_change_only_when_present(
    data: dict[str, Any], expected: str
) -> None:
    event = {"time": "2026-11-24T09:40:00Z", "subject": "adobe_vip/1/2", "data": data}
    assert tail.readable(event, "k") == f"2026-11-24T09:40:00Z  {'k':<56} adobe_vip/1/2{expected}"


@pytest.mark.parametrize(
    ("time", "shown"),
    [
        ("2026-11-24T09:40:00.123456Z", "2026-11-24T09:40:00Z"),
        ("2026-11-24T10:40:00.5+01:00", "2026-11-24T09:40:00Z"),
        ("2026-11-24T09:40:00", "2026-11-24T09:40:00"),
        ("yesterday", "yesterday"),
    ],
)
def test_readable_shows_the_time_to_the_second(time: str, shown: str) -> None:
    event = {"time": time, "subject": "s", "data": {}}
    assert tail.readable(event, "k").split("  ")[0] == shown


def test_readable_lines_keep_their_columns_whatever_the_routing_key() -> None:
    keys = ["zuora.order.created", "partner_center.order.provisioning_changed.fulfilled"]
    event = {"time": "2026-11-24T09:40:00.5Z", "subject": "zuora/1/2", "data": {}}
    lines = [tail.readable(event, key) for key in keys]
    assert {line.index("zuora/1/2") for line in lines} == {len("2026-11-24T09:40:00Z") + 2 + 57}
