"""A consumer of order-watcher's events with FastStream: its own queue, bound by name.

    python -m docs.examples.faststream_consumer --url amqp://... --queue crm \\
        --bind 'partner_center.order.#' --count 10

`RabbitExchange(..., declare=False)` makes FastStream only check the exchange (a passive
declare): re-declaring it without the watcher's `alternate-exchange` argument would be
refused with PRECONDITION_FAILED, closing the channel. The queue is the consumer's own, a
durable quorum queue; FastStream binds it with one routing-key pattern per subscriber.
Acknowledging is manual so that a message is acknowledged only after it has been
processed and before the consumer counts it (see receiving.py for the verdicts). The
body stays bytes: FastStream decodes only plain JSON content types, and CloudEvents
arrive as `application/cloudevents+json`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from faststream import AckPolicy
from faststream.rabbit import ExchangeType, QueueType, RabbitBroker, RabbitExchange, RabbitQueue
from faststream.rabbit.annotations import RabbitMessage
from faststream.rabbit.subscriber import RabbitSubscriber

from docs.examples import receiving


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
    enough = asyncio.Event()
    broker = RabbitBroker(url)
    for pattern in bindings:

        @subscriber(broker, queue=queue, binding=pattern, exchange=exchange)
        async def on_message(message: RabbitMessage) -> None:
            await settle(message, receiver)
            if receiver.settled >= count:
                enough.set()

    async with broker, asyncio.timeout(timeout_s):
        await broker.start()
        await enough.wait()
    return receiver


def subscriber(
    broker: RabbitBroker, *, queue: str, binding: str, exchange: str
) -> RabbitSubscriber:
    """Our durable queue, bound by `binding` to the exchange, which is not declared."""
    return broker.subscriber(
        RabbitQueue(queue, queue_type=QueueType.QUORUM, durable=True, routing_key=binding),
        RabbitExchange(exchange, type=ExchangeType.TOPIC, declare=False),
        ack_policy=AckPolicy.MANUAL,
    )


async def settle(message: RabbitMessage, receiver: receiving.Receiver) -> None:
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
    args = receiving.arguments("Consume order-watcher events with FastStream.")
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
