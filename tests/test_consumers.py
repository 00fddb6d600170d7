"""The consumer examples in docs/examples against a real broker and a real watcher run.

Each example (FastStream, aio-pika, pika) subscribes a durable queue of its own to the
watcher's exchange without declaring the exchange. The watcher runs against the simulator
and publishes the events of one completed and one new order through its outbox; a
reference queue of the watcher's own config receives every one of them. Then one event is
published again with the same id (what the relay does after a crash between publishing
and marking published), with a broken event and an event of a type added later beside it.
The example must have processed exactly the published events its bindings select, parsed
by the CloudEvents SDK, dropped the duplicate, rejected the broken one, acknowledged the
unknown type, and left its queue empty. The warning in docs/consumers.md holds too: a
naive re-declaration of the exchange (aio-pika, pika, FastStream left to declare it) is
refused with PRECONDITION_FAILED and closes the channel.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import aiormq
import orjson
import pika
import pika.exceptions
import pytest
from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange, RabbitQueue

from docs.examples import aio_pika_consumer, faststream_consumer, pika_consumer, receiving
from tests import harness
from tests.plugins.simulator import AdobeSimulator, SimAdmin
from tests.test_end_to_end import complete_patch, serving, subject
from watcher import settings
from watcher.bus import topology
from watcher.contract import resolve

CUSTOMERS = ["1000000001", "1000000002"]
OPEN_ORDER = ("1000000001", "5120000001")
DOCS = Path(__file__).resolve().parent.parent / "docs"
pytestmark = pytest.mark.timeout(90)

Consume = Callable[..., Awaitable[receiving.Receiver]]


@dataclass(frozen=True)
class Example:
    name: str
    consume: Consume
    bindings: tuple[str, ...]


async def pika_in_a_thread(url: str, **kw: Any) -> receiving.Receiver:
    """pika blocks: it runs in a thread while the event loop serves the rest."""
    return await asyncio.to_thread(pika_consumer.consume, url, **kw)


EXAMPLES = [
    Example(
        "faststream",
        faststream_consumer.consume,
        ("adobe_vip.order.line_item.#", "adobe_vip.order.status_changed.#"),
    ),
    Example(
        "aio_pika",
        aio_pika_consumer.consume,
        ("adobe_vip.order.status_changed.*", "adobe_vip.order.created"),
    ),
    Example("pika", pika_in_a_thread, ("*.order.provisioning_changed.#", "*.order.line_item.#")),
]


def topic_matches(pattern: str, routing_key: str) -> bool:
    """Whether a topic exchange routes `routing_key` to a binding `pattern`."""
    return _words_match(pattern.split("."), routing_key.split("."))


def _words_match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    if pattern[0] == "#":
        return _words_match(pattern[1:], words) or (
            bool(words) and _words_match(pattern, words[1:])
        )
    return bool(words) and pattern[0] in ("*", words[0]) and _words_match(pattern[1:], words[1:])


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("adobe_vip.#", "adobe_vip.order.created", True),
        ("adobe_vip.order.status_changed.*", "adobe_vip.order.status_changed.completed", True),
        ("adobe_vip.order.status_changed.*", "adobe_vip.order.status_changed.v2.completed", False),
        ("*.order.line_item.#", "zuora.order.line_item.quantity_changed", True),
        ("*.order.line_item.#", "zuora.order.created", False),
        ("#", "anything.at.all", True),
        ("adobe_vip.#.completed", "adobe_vip.completed", True),
        ("*.order.created", "order.created", False),
    ],
)
def test_topic_matches_as_the_broker_does(pattern: str, key: str, matches: bool) -> None:
    assert topic_matches(pattern, key) is matches


async def watcher_run(
    adobe_sim: AdobeSimulator,
    sim_admin: SimAdmin,
    *,
    amqp_url: str,
    db: Path,
    subscribe: Callable[[], Awaitable[None]],
) -> list[harness.Delivery]:
    """Run the watcher until one order completed and one new order are published; return
    every event it published, as the reference queue of its own config received them.
    `subscribe` binds the example's queue once the watcher has declared the exchange."""
    config = harness.settings(adobe_sim, db=db, amqp_url=amqp_url, customers=CUSTOMERS)
    async with serving(config), harness.consuming(amqp_url) as reference:
        await harness.eventually(lambda: harness.baseline_done(db, CUSTOMERS), what="baseline")
        await subscribe()
        lines = adobe_sim.state.order(*OPEN_ORDER)["lineItems"]
        await sim_admin.patch_order(*OPEN_ORDER, complete_patch(adobe_sim, *OPEN_ORDER))
        created = await sim_admin.create_order(
            "1000000002", {"lineItems": [{"offerId": "65304578CA01A12", "quantity": 3}]}
        )
        expected: set[harness.EventKey] = {
            ("order.status_changed", subject(*OPEN_ORDER), None),
            ("order.created", subject("1000000002", created["orderId"]), None),
        }
        for line in lines:
            key = str(line["extLineItemNumber"])
            expected.add(("order.line_item.status_changed", subject(*OPEN_ORDER), key))
            expected.add(("order.provisioning_changed", subject(*OPEN_ORDER), key))
        await reference.wait_for(expected)
        await harness.eventually(
            lambda: harness.outbox_backlog_at_least(db, 0, at_most=0), what="the outbox drained"
        )
        await reference.flush()
    assert reference.keys() == expected
    return reference.received


def message_like(delivery: harness.Delivery, body: bytes) -> aio_pika.Message:
    """A message as the watcher publishes it: persistent, its id and type as properties."""
    return aio_pika.Message(
        body,
        message_id=delivery.message_id,
        type=delivery.type,
        content_type=delivery.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


async def publish_extras(amqp_url: str, *, queue: str, again: harness.Delivery) -> None:
    """`again` once more through the exchange, then a broken event and one of a type
    added later straight into the example's queue."""
    broken = dict(again.body, data={k: v for k, v in again.body["data"].items() if k != "order"})
    later = dict(again.body, type="order.refunded", id="7b0c7c1e-4f36-5a70-9d0e-2f1f5a8e9b10")
    later.pop("dataschema")
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(receiving.EXCHANGE, ensure=True)
        await exchange.publish(
            message_like(again, orjson.dumps(again.body)), routing_key=again.routing_key
        )
        for body in (broken, later):
            await channel.default_exchange.publish(
                message_like(again, orjson.dumps(body)), routing_key=queue
            )


async def messages_in(amqp_url: str, queue: str) -> int:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        count = declared.declaration_result.message_count
        assert isinstance(count, int)
        return count


async def bind_example_queue(amqp_url: str, *, queue: str, bindings: Sequence[str]) -> None:
    """The example's queue and bindings, declared the way the examples declare them."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await aio_pika_consumer.subscribe(
            channel, queue=queue, bindings=bindings, exchange=receiving.EXCHANGE
        )


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.name)
async def test_an_example_consumes_every_event_once_and_leaves_its_queue_empty(
    example: Example,
    adobe_sim: AdobeSimulator,
    sim_admin: SimAdmin,
    amqp_url: str,
    tmp_path: Path,
) -> None:
    queue = f"example-{example.name}"

    async def subscribe() -> None:
        await bind_example_queue(amqp_url, queue=queue, bindings=example.bindings)

    published = await watcher_run(
        adobe_sim, sim_admin, amqp_url=amqp_url, db=tmp_path / "watcher.db", subscribe=subscribe
    )
    selected = [
        delivery
        for delivery in published
        if any(topic_matches(pattern, delivery.routing_key) for pattern in example.bindings)
    ]
    assert selected, f"{example.bindings} select none of {[d.routing_key for d in published]}"
    assert await messages_in(amqp_url, queue) == len(selected)
    await publish_extras(amqp_url, queue=queue, again=selected[0])

    receiver = await example.consume(
        amqp_url,
        queue=queue,
        bindings=example.bindings,
        count=len(selected) + 3,
        timeout_s=30.0,
    )

    assert sorted(event.get_id() for event in receiver.handled) == sorted(
        str(delivery.body["id"]) for delivery in selected
    )
    by_id = {str(delivery.body["id"]): delivery.body for delivery in selected}
    for event in receiver.handled:
        sent = by_id[event.get_id()]
        assert event.get_type() == sent["type"]
        assert event.get_subject() == sent["subject"]
        assert event.get_source() == sent["source"]
        assert event.get_dataschema() == sent["dataschema"]
        assert (DOCS / resolve(str(event.get_dataschema()))).is_file()
        assert event.get_time() is not None
        assert event.get_data() == sent["data"]
    assert receiver.duplicates == [selected[0].body["id"]]
    assert receiver.skipped == ["order.refunded"]
    assert len(receiver.rejected) == 1
    assert "'order' is a required property" in receiver.rejected[0]
    assert await messages_in(amqp_url, queue) == 0, "every message settled"


async def test_a_duplicate_is_dropped_across_a_restart_of_the_consumer(
    amqp_url: str, tmp_path: Path
) -> None:
    """The same event published again after the consumer restarted (what the relay does
    after a crash) is dropped by the ids the first run kept in SQLite."""
    await declared_topology(amqp_url)
    await bind_example_queue(amqp_url, queue="restart", bindings=["#"])
    body = {
        "specversion": "1.0",
        "id": "0f8c2b57-0b5e-5f5e-8a49-2d1c8f0b6a77",
        "source": "order-watcher/adobe-prod",
        "type": "order.created",
        "subject": "adobe_vip/9876543210/5120000009",
        "time": "2026-11-24T09:40:00Z",
        "datacontenttype": "application/json",
        "data": {
            "provider": "adobe_vip",
            "source": "adobe-prod",
            "customer_id": "9876543210",
            "order_id": "5120000009",
            "sequence": 1,
            "order": {
                "provider": "adobe_vip",
                "source": "adobe-prod",
                "customer_id": "9876543210",
                "order_id": "5120000009",
                "status": "pending",
                "status_raw": "1002",
            },
        },
    }
    delivery = harness.Delivery(
        routing_key="adobe_vip.order.created",
        message_id=str(body["id"]),
        type=str(body["type"]),
        content_type="application/cloudevents+json",
        persistent=True,
        body=body,
    )
    database = str(tmp_path / "processed.db")
    for run in range(2):
        await publish_once(amqp_url, delivery)
        receiver = receiving.Receiver(processed=receiving.Processed(database))
        await aio_pika_consumer.consume(
            amqp_url, queue="restart", bindings=["#"], count=1, receiver=receiver, timeout_s=10
        )
        assert [event.get_id() for event in receiver.handled] == ([body["id"]] if run == 0 else [])
        assert receiver.duplicates == ([] if run == 0 else [body["id"]])
    assert await messages_in(amqp_url, "restart") == 0


async def publish_once(amqp_url: str, delivery: harness.Delivery) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(receiving.EXCHANGE, ensure=True)
        await exchange.publish(
            message_like(delivery, orjson.dumps(delivery.body)), routing_key=delivery.routing_key
        )


# The warning in docs/consumers.md -----------------------------------------------------


async def declared_topology(amqp_url: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        await topology.declare(await connection.channel(), settings.AmqpSettings())


async def test_redeclaring_the_exchange_without_its_alternate_is_refused(amqp_url: str) -> None:
    await declared_topology(amqp_url)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed) as refused:
            await channel.declare_exchange(
                receiving.EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
            )
        assert "alternate-exchange" in str(refused.value)
        assert channel.is_closed
        passive = await connection.channel()
        await aio_pika_consumer.subscribe(
            passive, queue="after-refusal", bindings=["#"], exchange=receiving.EXCHANGE
        )


def test_pika_redeclaring_the_exchange_closes_the_channel_with_406(amqp_url: str) -> None:
    asyncio.run(declared_topology(amqp_url))
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.exchange_declare(receiving.EXCHANGE, exchange_type="topic", durable=True)
        assert refused.value.reply_code == 406
        assert "PRECONDITION_FAILED" in refused.value.reply_text
        assert channel.is_closed
        checked = connection.channel()
        pika_consumer.subscribe(
            checked, queue="after-refusal", bindings=["#"], exchange=receiving.EXCHANGE
        )
    finally:
        connection.close()


async def test_subscribing_before_the_watcher_declared_the_exchange_fails(
    amqp_url: str,
) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
            await aio_pika_consumer.subscribe(
                await connection.channel(),
                queue="too-early",
                bindings=["#"],
                exchange=receiving.EXCHANGE,
            )


async def test_faststream_left_to_declare_the_exchange_is_refused(amqp_url: str) -> None:
    await declared_topology(amqp_url)
    broker = RabbitBroker(amqp_url)
    broker.subscriber(
        RabbitQueue("declares-too-much", routing_key="#"),
        RabbitExchange(receiving.EXCHANGE, type=ExchangeType.TOPIC),
    )
    async with broker:
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):
            await broker.start()
