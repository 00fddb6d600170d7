"""A consumer of order-watcher's events with aio-pika: its own durable queue, bound by name.

    python -m docs.examples.aio_pika_consumer --url amqp://... --queue billing \\
        --bind 'adobe_vip.order.status_changed.*' --count 10

The exchange is only checked (a passive declare): the watcher declares it with an
alternate exchange, and a declaration with other arguments would be refused with
PRECONDITION_FAILED, closing the channel. The queue is the consumer's own, a durable
quorum queue, bound with the routing-key patterns given. A message is acknowledged only
after it has been processed (see receiving.py for the verdicts).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from docs.examples import receiving

PREFETCH = 32


async def consume(
    url: str,
    *,
    queue: str,
    bindings: Sequence[str],
    count: int,
    exchange: str = receiving.EXCHANGE,
    receiver: receiving.Receiver | None = None,
    timeout_s: float = 60.0,
) -> receiving.Receiver:
    """Consume until `count` messages are settled; return the receiver with what it saw."""
    receiver = receiver or receiving.Receiver()
    connection = await aio_pika.connect_robust(url)
    async with connection, asyncio.timeout(timeout_s):
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH)
        subscribed = await subscribe(channel, queue=queue, bindings=bindings, exchange=exchange)
        async with subscribed.iterator() as messages:
            async for message in messages:
                await settle(message, receiver)
                if receiver.settled >= count:
                    break
    return receiver


async def subscribe(
    channel: AbstractChannel, *, queue: str, bindings: Sequence[str], exchange: str
) -> AbstractQueue:
    """Check the exchange exists, declare our queue and bind it to the exchange by name."""
    await channel.get_exchange(exchange, ensure=True)  # passive: never re-declared
    declared = await channel.declare_queue(
        queue, durable=True, arguments={"x-queue-type": "quorum"}
    )
    for pattern in bindings:
        await declared.bind(exchange, routing_key=pattern)
    return declared


async def settle(message: AbstractIncomingMessage, receiver: receiving.Receiver) -> None:
    """Acknowledge after processing; reject what can never be processed; requeue a failure."""
    try:
        verdict = receiver.receive(
            headers=message.headers, content_type=message.content_type, body=message.body
        )
    except Exception:
        await message.nack(requeue=True)
        raise
    if verdict is receiving.Verdict.ACK:
        await message.ack()
    else:
        await message.reject(requeue=False)


async def main() -> None:
    args = receiving.arguments("Consume order-watcher events with aio-pika.")
    receiver = receiving.Receiver(processed=receiving.Processed(args.db))
    await consume(
        args.url,
        queue=args.queue,
        bindings=args.bind,
        count=args.count,
        exchange=args.exchange,
        receiver=receiver,
        timeout_s=args.timeout,
    )


if __name__ == "__main__":
    asyncio.run(main())
