"""The RabbitMQ objects order-watcher relies on, declared idempotently.

    <exchange> (topic, durable, alternate-exchange = <unroutable_exchange>)
      ├── bound with each consumer queue's routing-key patterns:
      │     <queue> (quorum unless asked for classic, durable)
      │       └── x-dead-letter-exchange -> <queue>.dlx (fanout) -> <queue>.dead
      └── anything no binding matches -> <unroutable_exchange> (fanout) -> <unroutable_queue>

Declaring is safe to repeat: the broker accepts a declaration equal to what exists and
refuses (PRECONDITION_FAILED) one whose type or arguments differ, so a changed setting is
reported instead of silently ignored. Every object is durable; messages are published
persistent, so events survive a broker restart.
"""

from __future__ import annotations

from typing import Any

from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel, AbstractExchange

from watcher.settings import AmqpSettings, QueueSettings


def dead_letter_exchange(queue: str) -> str:
    return f"{queue}.dlx"


def dead_letter_queue(queue: str) -> str:
    return f"{queue}.dead"


async def declare(channel: AbstractChannel, settings: AmqpSettings) -> AbstractExchange:
    """Declare everything and return the exchange events are published to."""
    await _declare_unroutable(channel, settings)
    exchange = await channel.declare_exchange(
        settings.exchange,
        ExchangeType.TOPIC,
        durable=True,
        arguments={"alternate-exchange": settings.unroutable_exchange},
    )
    for queue in settings.queues:
        await _declare_consumer_queue(channel, exchange, queue)
    return exchange


async def _declare_unroutable(channel: AbstractChannel, settings: AmqpSettings) -> None:
    exchange = await channel.declare_exchange(
        settings.unroutable_exchange, ExchangeType.FANOUT, durable=True
    )
    queue = await channel.declare_queue(settings.unroutable_queue, durable=True)
    await queue.bind(exchange)


async def _declare_consumer_queue(
    channel: AbstractChannel, exchange: AbstractExchange, settings: QueueSettings
) -> None:
    arguments: dict[str, Any] = {"x-queue-type": settings.type}
    if settings.dead_letter:
        await _declare_dead_letter(channel, settings)
        arguments["x-dead-letter-exchange"] = dead_letter_exchange(settings.name)
    queue = await channel.declare_queue(settings.name, durable=True, arguments=arguments)
    for pattern in settings.bindings:
        await queue.bind(exchange, routing_key=pattern)


async def _declare_dead_letter(channel: AbstractChannel, settings: QueueSettings) -> None:
    exchange = await channel.declare_exchange(
        dead_letter_exchange(settings.name), ExchangeType.FANOUT, durable=True
    )
    queue = await channel.declare_queue(
        dead_letter_queue(settings.name),
        durable=True,
        arguments={"x-queue-type": settings.type},
    )
    await queue.bind(exchange)
