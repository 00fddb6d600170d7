"""The RabbitMQ adapter against a real private broker: topology, publisher, outbox relay.

Covers: idempotent topology with the declared types and arguments; published events keep
their body and carry message_id, type, content type and persistence; unroutable events
land in the alternate queue; nacked and returned messages are not reported as confirmed;
the relay marks only confirmed events, survives a broker outage and delivers each event
once afterwards, and keeps retrying when the broker is down at the start; pipelined
batches keep outbox order, an unconfirmed event goes out again, a connection lost
mid-batch marks nothing the broker did not confirm, and confirms that stall past the
deadline leave their events pending until they go out again; error texts and logs never
show the AMQP password.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import aio_pika
import orjson
import pytest
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractQueue,
)
from yarl import URL

from tests.fakes import InMemoryOutbox
from tests.plugins.rabbit import Broker
from watcher.bus import closing, topology
from watcher.bus.publisher import Publisher, safe_url
from watcher.bus.relay import BatchResult, Relay
from watcher.core.errors import BusError
from watcher.core.ports import OutboxRecord
from watcher.settings import AmqpSettings, QueueSettings

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
BILLING = QueueSettings(name="billing", bindings=["adobe_vip.order.#"])
CRM = QueueSettings(name="crm", bindings=["*.order.created"], type="classic", dead_letter=False)


def settings_for(url: str, *queues: QueueSettings) -> AmqpSettings:
    return AmqpSettings.model_validate(
        {
            "url": url,
            "queues": [queue.model_dump() for queue in queues],
            "relay_idle_s": 0.05,
            "reconnect_delay_s": 0.05,
            "publish_window": 4,
        }
    )


async def cancelled(task: asyncio.Task[Any]) -> None:
    """Cancel the relay's task and see it end cancelled."""
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def record(
    n: int, *, routing_key: str = "adobe_vip.order.created", event_type: str = "order.created"
) -> OutboxRecord:
    body = orjson.dumps({"specversion": "1.0", "id": f"ev-{n}", "type": event_type, "data": {}})
    return OutboxRecord(
        event_id=f"ev-{n}",
        event_type=event_type,
        routing_key=routing_key,
        body=body,
        created_at=T0 + timedelta(seconds=n),
    )


def records(
    numbers: Iterable[int], *, routing_key: str = "adobe_vip.order.created"
) -> list[OutboxRecord]:
    return [record(n, routing_key=routing_key) for n in numbers]


@pytest.fixture
async def channel(amqp_url: str) -> AsyncIterator[AbstractChannel]:
    """A plain consumer-side channel on the test's virtual host."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        yield await connection.channel()


async def take(
    queue: AbstractQueue, count: int, *, no_ack: bool = True
) -> list[AbstractIncomingMessage]:
    """`count` messages from `queue`, waiting for them if needed."""
    taken: list[AbstractIncomingMessage] = []
    async with asyncio.timeout(20):
        while len(taken) < count:
            message = await queue.get(no_ack=no_ack, fail=False)
            if message is None:
                await asyncio.sleep(0.02)
            else:
                taken.append(message)
    return taken


async def published(outbox: InMemoryOutbox, count: int) -> None:
    async with asyncio.timeout(30):
        await outbox.wait_until(lambda box: len(box.published) >= count)


async def consumed(channel: AbstractChannel, name: str, count: int) -> list[str | None]:
    """The message ids of `count` messages of the queue `name`, read by a consumer (many at
    once: `take` asks for one message a round trip)."""
    await channel.set_qos(prefetch_count=1000)
    queue = await channel.declare_queue(name, passive=True)
    ids: list[str | None] = []
    async with asyncio.timeout(60), queue.iterator(no_ack=True) as messages:
        async for message in messages:
            ids.append(message.message_id)
            if len(ids) == count:
                break
    return ids


async def passive_count(channel: AbstractChannel, name: str) -> int:
    queue = await channel.declare_queue(name, passive=True)
    count = queue.declaration_result.message_count
    assert count is not None
    return count


def ctl_json(broker: Broker, vhost: str, what: str, *columns: str) -> dict[str, dict[str, Any]]:
    """`rabbitmqctl list_*` rows by name, with `arguments` as a plain dict."""
    rows = json.loads(broker.ctl(what, "-p", vhost, "name", *columns, "--formatter", "json"))
    for row in rows:
        row["arguments"] = {key: value for key, _type, value in row.get("arguments", [])}
    return {row["name"]: row for row in rows}


async def test_topology_is_idempotent_and_declared_with_its_arguments(
    amqp_url: str, rabbit_broker: Broker, channel: AbstractChannel
) -> None:
    settings = settings_for(amqp_url, BILLING, CRM)
    await topology.declare(channel, settings)
    await topology.declare(channel, settings)

    vhost = URL(amqp_url).path.lstrip("/")
    exchanges = await asyncio.to_thread(
        ctl_json, rabbit_broker, vhost, "list_exchanges", "type", "durable", "arguments"
    )
    queues = await asyncio.to_thread(
        ctl_json, rabbit_broker, vhost, "list_queues", "type", "durable", "arguments"
    )
    assert exchanges["order-watcher"]["type"] == "topic"
    assert exchanges["order-watcher"]["durable"] is True
    assert exchanges["order-watcher"]["arguments"] == {
        "alternate-exchange": "order-watcher.unroutable"
    }
    assert exchanges["order-watcher.unroutable"]["type"] == "fanout"
    assert exchanges["billing.dlx"]["type"] == "fanout"
    assert "crm.dlx" not in exchanges
    assert queues["order-watcher.unroutable"]["durable"] is True
    assert queues["billing"]["type"] == "quorum"
    assert queues["billing"]["arguments"] == {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": "billing.dlx",
    }
    assert queues["billing.dead"]["type"] == "quorum"
    assert queues["crm"]["type"] == "classic"
    assert "crm.dead" not in queues


async def test_consumer_queue_is_bound_and_dead_letters(
    amqp_url: str, channel: AbstractChannel
) -> None:
    async with Publisher(settings_for(amqp_url, BILLING), timeout_s=10) as publisher:
        assert await publisher.publish([record(1)]) == ["ev-1"]
    billing = await channel.declare_queue("billing", passive=True)
    [message] = await take(billing, 1, no_ack=False)
    await message.reject(requeue=False)

    [dead] = await take(await channel.declare_queue("billing.dead", passive=True), 1)
    assert dead.message_id == "ev-1"


async def test_published_event_arrives_with_its_properties_and_body(
    amqp_url: str, channel: AbstractChannel
) -> None:
    event = record(
        7,
        routing_key="adobe_vip.order.status_changed.completed",
        event_type="order.status_changed",
    )
    async with Publisher(settings_for(amqp_url, BILLING), timeout_s=10) as publisher:
        assert await publisher.publish([event]) == ["ev-7"]

    [message] = await take(await channel.declare_queue("billing", passive=True), 1)
    assert message.body == event.body
    assert message.message_id == "ev-7"
    assert message.type == "order.status_changed"
    assert message.content_type == "application/cloudevents+json"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.routing_key == "adobe_vip.order.status_changed.completed"


async def test_event_no_binding_matches_lands_in_the_unroutable_queue(
    amqp_url: str, channel: AbstractChannel
) -> None:
    event = record(
        3, routing_key="zuora.order.payment_changed.paid", event_type="order.payment_changed"
    )
    async with Publisher(settings_for(amqp_url, BILLING), timeout_s=10) as publisher:
        assert await publisher.publish([event]) == ["ev-3"]

    [message] = await take(await channel.declare_queue("order-watcher.unroutable", passive=True), 1)
    assert message.message_id == "ev-3"
    assert await passive_count(channel, "billing") == 0


async def test_nacked_and_returned_messages_are_not_confirmed(
    amqp_url: str, channel: AbstractChannel
) -> None:
    settings = settings_for(amqp_url, BILLING)
    async with Publisher(settings, timeout_s=10) as publisher:
        full = await channel.declare_queue(
            "full", arguments={"x-max-length": 0, "x-overflow": "reject-publish"}
        )
        await full.bind("order-watcher", routing_key="elastic_path.#")
        await channel.queue_delete("order-watcher.unroutable")
        batch = [
            record(1),
            record(2, routing_key="elastic_path.order.created"),
            record(3, routing_key="zuora.order.created"),
        ]
        assert await publisher.publish(batch) == ["ev-1"]


async def test_publishes_cancelled_before_they_start_give_their_window_slots_back(
    amqp_url: str,
) -> None:
    """The window is 4: had the four cancelled publishes kept their slots, the next batch
    would wait for confirms that never come."""
    async with Publisher(settings_for(amqp_url, BILLING), timeout_s=10) as publisher:
        sending = await publisher.send([record(n) for n in range(1, 5)])
        sending.cancel()  # before any of their tasks ran a step

        async with asyncio.timeout(10):
            confirmed = await publisher.publish([record(n) for n in range(5, 9)])

    assert confirmed == ["ev-5", "ev-6", "ev-7", "ev-8"]


async def test_relay_publishes_everything_and_marks_only_confirmed(
    amqp_url: str, channel: AbstractChannel
) -> None:
    settings = settings_for(amqp_url, BILLING).model_copy(update={"relay_batch": 3})
    async with Publisher(settings, timeout_s=10):
        full = await channel.declare_queue(
            "full", arguments={"x-max-length": 0, "x-overflow": "reject-publish"}
        )
        await full.bind("order-watcher", routing_key="elastic_path.#")
    outbox = InMemoryOutbox(records(range(10)))
    outbox.add(records([20, 21], routing_key="elastic_path.order.created"))
    relay = Relay(
        outbox, lambda: Publisher(settings, timeout_s=10), settings=settings, clock=lambda: T0
    )

    task = asyncio.create_task(relay.run())
    await published(outbox, 10)
    outbox.add(records(range(10, 13)))
    relay.wake()
    await published(outbox, 13)
    await cancelled(task)

    assert set(outbox.published) == {f"ev-{n}" for n in range(13)}
    assert set(outbox.published.values()) == {T0}
    assert [r.event_id for r in outbox.unpublished] == ["ev-20", "ev-21"]
    delivered = await take(await channel.declare_queue("billing", passive=True), 13)
    assert sorted(m.message_id or "" for m in delivered) == sorted(outbox.published)


async def test_drain_publishes_everything_pending(amqp_url: str) -> None:
    settings = settings_for(amqp_url, BILLING).model_copy(update={"relay_batch": 4})
    outbox = InMemoryOutbox(records(range(10)))
    relay = Relay(outbox, lambda: Publisher(settings, timeout_s=10), settings=settings)

    assert await relay.drain(timeout_s=30) == 10
    assert outbox.unpublished == []
    assert await relay.drain(timeout_s=30) == 0


async def test_pipelined_batches_reach_the_queue_in_outbox_order(
    amqp_url: str, channel: AbstractChannel
) -> None:
    """Many small batches, each sent while the one before awaits its confirms, through a
    small window: the queue holds every event once, in outbox order, and all are marked."""
    settings = settings_for(amqp_url, BILLING).model_copy(update={"relay_batch": 3})
    outbox = InMemoryOutbox(records(range(60)))
    relay = Relay(outbox, lambda: Publisher(settings, timeout_s=10), settings=settings)

    assert await relay.drain(timeout_s=30) == 60

    assert outbox.unpublished == []
    delivered = await take(await channel.declare_queue("billing", passive=True), 60)
    assert [m.message_id for m in delivered] == [f"ev-{n}" for n in range(60)]
    assert await passive_count(channel, "billing") == 0


async def test_an_unconfirmed_event_goes_out_again_after_the_batches_behind_it(
    amqp_url: str, channel: AbstractChannel
) -> None:
    """A nacked event stays pending while later batches go on being confirmed; once the
    queue has room again it is published too, and marked."""
    settings = settings_for(amqp_url, BILLING).model_copy(update={"relay_batch": 2})
    async with Publisher(settings, timeout_s=10):
        full = await channel.declare_queue(
            "full", arguments={"x-max-length": 0, "x-overflow": "reject-publish"}
        )
        await full.bind("order-watcher", routing_key="elastic_path.#")
    outbox = InMemoryOutbox(records(range(2)))
    outbox.add([record(2, routing_key="elastic_path.order.created")])
    outbox.add(records(range(3, 9)))
    relay = Relay(outbox, lambda: Publisher(settings, timeout_s=10), settings=settings)

    task = asyncio.create_task(relay.run())
    await published(outbox, 8)
    assert [r.event_id for r in outbox.unpublished] == ["ev-2"]
    await channel.queue_delete("full")
    await published(outbox, 9)
    await cancelled(task)


EVENTS_IN_OUTAGE = 15_000


async def test_a_connection_lost_mid_batch_marks_nothing_unconfirmed(
    outage_broker: Broker,
) -> None:
    """The broker stops while thousands of events are in flight: whatever the relay marked
    published is in the queue after the restart, and the rest goes out again."""
    settings = settings_for(outage_broker.url, BILLING).model_copy(
        update={"relay_batch": 200, "publish_window": 100}
    )
    # Enough events that the publishing outlasts the stop (rabbitmqctl takes seconds).
    outbox = InMemoryOutbox(records(range(EVENTS_IN_OUTAGE)))
    relay = Relay(outbox, CountingFactory(settings), settings=settings)
    task = asyncio.create_task(relay.run())
    await published(outbox, 1)

    await asyncio.to_thread(outage_broker.stop)
    marked_during_outage = set(outbox.published)
    await asyncio.to_thread(outage_broker.start)
    await published(outbox, EVENTS_IN_OUTAGE)
    await cancelled(task)

    assert len(marked_during_outage) < EVENTS_IN_OUTAGE, "the stop came too late to cut a batch"
    connection = await aio_pika.connect(outage_broker.url)
    async with connection:
        consumer = await connection.channel()
        count = await passive_count(consumer, "billing")
        delivered = await consumed(consumer, "billing", count)
    assert set(delivered) == {f"ev-{n}" for n in range(EVENTS_IN_OUTAGE)}


STALL_TIMEOUT_S = 1.0


async def test_confirms_stalled_past_the_deadline_leave_the_events_pending(
    outage_broker: Broker,
) -> None:
    """A memory alarm blocks publishing, so no confirm comes: every publish in the window is
    given up at its deadline, nothing is marked, and the relay keeps retrying; once the alarm
    clears, every event goes out again and is marked."""
    settings = settings_for(outage_broker.url, BILLING).model_copy(update={"relay_batch": 5})
    outbox = InMemoryOutbox([record(0)])
    batches: list[BatchResult] = []
    stalled_twice = asyncio.Event()

    def on_batch(batch: BatchResult) -> None:
        batches.append(batch)
        # Two rounds of the whole backlog, each event given up at its own deadline.
        if sum(batch.attempted for batch in batches[1:]) >= 20:
            stalled_twice.set()

    relay = Relay(
        outbox,
        lambda: Publisher(settings, timeout_s=STALL_TIMEOUT_S),
        settings=settings,
        on_batch=on_batch,
    )
    task = asyncio.create_task(relay.run())
    await published(outbox, 1)

    await asyncio.to_thread(outage_broker.ctl, "set_vm_memory_high_watermark", "0")
    outbox.add(records(range(1, 11)))
    relay.wake()
    async with asyncio.timeout(30):
        await stalled_twice.wait()
    stalled = batches[1:]
    assert set(outbox.published) == {"ev-0"}
    assert all(batch.published == 0 for batch in stalled)
    # A batch of 5 through a window of 4: the fifth starts only when the first four expire.
    assert stalled[0].attempted == 5
    assert stalled[0].seconds >= 2 * STALL_TIMEOUT_S

    await asyncio.to_thread(outage_broker.ctl, "set_vm_memory_high_watermark", "0.4")
    await published(outbox, 11)
    await cancelled(task)

    connection = await aio_pika.connect(outage_broker.url)
    async with connection:
        consumer = await connection.channel()
        count = await passive_count(consumer, "billing")
        delivered = await consumed(consumer, "billing", count)
    # At least once: publishes given up may still have reached the broker after the alarm.
    assert set(delivered) == {f"ev-{n}" for n in range(11)}


class CountingFactory:
    """Builds publishers and counts the connection attempts the relay makes."""

    def __init__(self, settings: AmqpSettings) -> None:
        self.settings = settings
        self.calls = 0
        self._called = asyncio.Event()

    def __call__(self) -> Publisher:
        self.calls += 1
        self._called.set()
        return Publisher(self.settings, timeout_s=3)

    async def wait_for_calls(self, count: int) -> None:
        async with asyncio.timeout(30):
            while self.calls < count:
                self._called.clear()
                await self._called.wait()


async def test_relay_survives_an_outage_and_delivers_each_event_once(
    outage_broker: Broker,
) -> None:
    settings = settings_for(outage_broker.url, BILLING)
    outbox = InMemoryOutbox([record(0)])
    factory = CountingFactory(settings)
    relay = Relay(outbox, factory, settings=settings)
    task = asyncio.create_task(relay.run())
    await published(outbox, 1)

    await asyncio.to_thread(outage_broker.stop)
    outbox.add(records(range(1, 21)))
    relay.wake()
    attempts = factory.calls
    await factory.wait_for_calls(attempts + 3)
    assert set(outbox.published) == {"ev-0"}
    assert not task.done()

    await asyncio.to_thread(outage_broker.start)
    await published(outbox, 21)
    await cancelled(task)

    connection = await aio_pika.connect(outage_broker.url)
    async with connection:
        consumer = await connection.channel()
        assert await passive_count(consumer, "billing") == 21
        delivered = await take(await consumer.declare_queue("billing", passive=True), 21)
    assert sorted(m.message_id or "" for m in delivered) == sorted(outbox.published)


async def test_relay_keeps_trying_while_the_broker_is_down_at_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = settings_for("amqp://guest:hunter2-secret@127.0.0.1:1/")
    outbox = InMemoryOutbox(records(range(3)))
    factory = CountingFactory(settings)
    relay = Relay(outbox, factory, settings=settings)

    with caplog.at_level(logging.INFO, logger="watcher.bus"):
        task = asyncio.create_task(relay.run())
        await factory.wait_for_calls(4)
        await cancelled(task)

    assert outbox.published == {}
    outages = [r for r in caplog.records if "broker unavailable" in r.getMessage()]
    assert len(outages) == 1
    assert "hunter2-secret" not in caplog.text


async def test_bus_error_never_shows_the_password(
    rabbit_broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = f"amqp://guest:hunter2-secret@127.0.0.1:{rabbit_broker.amqp_port}/"
    closed = "amqp://order:hunter2-secret@127.0.0.1:1/"
    for url in (wrong, closed):
        with pytest.raises(BusError) as caught:
            async with Publisher(settings_for(url), timeout_s=10):
                pass
        assert "hunter2-secret" not in str(caught.value)
        assert "hunter2-secret" not in repr(caught.value.__cause__)
        assert "127.0.0.1" in str(caught.value)
    assert "hunter2-secret" not in caplog.text
    assert safe_url(closed) == "amqp://***@127.0.0.1:1/"


class UnansweredClose:
    """A connection whose close the broker never answers (one cut short in its handshake)."""

    def __init__(self) -> None:
        self.close_called = False

    async def close(self) -> None:
        self.close_called = True
        await asyncio.Event().wait()


async def test_a_close_the_broker_never_answers_is_given_up_and_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    connection = UnansweredClose()
    caplog.set_level(logging.WARNING, logger="watcher.bus.closing")

    async with asyncio.timeout(5):
        await closing.close_within(
            cast(AbstractConnection, connection), what="publisher", timeout_s=0.05
        )

    assert connection.close_called
    assert "publisher: the broker did not answer the close within 0.05s" in caplog.text


async def test_a_real_connection_closes_within_the_bound(amqp_url: str) -> None:
    connection = await aio_pika.connect(amqp_url)

    await closing.close_within(connection, what="test")

    assert connection.is_closed


async def test_a_stop_a_library_swallowed_is_raised_again() -> None:
    swallowed = asyncio.Event()

    async def connect_swallowing_a_cancel() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            swallowed.set()  # as aio-pika's connect can: the caller is never told

    async def reader() -> None:
        await connect_swallowing_a_cancel()
        closing.raise_if_cancelled()
        await asyncio.sleep(10)  # without the check, a stop would wait here, then loop on

    task = asyncio.create_task(reader())
    await asyncio.sleep(0)
    task.cancel()

    async with asyncio.timeout(2):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert swallowed.is_set()


async def test_no_stop_asked_no_stop_raised() -> None:
    closing.raise_if_cancelled()  # a running task that nobody cancelled goes on
