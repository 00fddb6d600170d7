"""A consumer of order-watcher's events with pika (blocking): its own queue, bound by name.

    python -m docs.examples.pika_consumer --url amqp://... --queue fulfilment \\
        --bind '*.order.provisioning_changed.#' --count 10

The exchange is only checked (`exchange_declare(passive=True)`): re-declaring it without
the watcher's `alternate-exchange` argument is refused with PRECONDITION_FAILED and closes
the channel. The queue is the consumer's own, a durable quorum queue. A message is
acknowledged only after it has been processed (see receiving.py for the verdicts).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties

from docs.examples import receiving

PREFETCH = 32
IDLE_S = 0.5


def consume(
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
    deadline = time.monotonic() + timeout_s
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=PREFETCH)
        subscribe(channel, queue=queue, bindings=bindings, exchange=exchange)
        for method, properties, body in channel.consume(queue, inactivity_timeout=IDLE_S):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{receiver.settled} of {count} messages in {timeout_s}s")
            if method is not None:
                settle(channel, method, properties, body, receiver)
            if receiver.settled >= count:
                break
        channel.cancel()
    finally:
        connection.close()
    return receiver


def subscribe(
    channel: BlockingChannel, *, queue: str, bindings: Sequence[str], exchange: str
) -> None:
    """Check the exchange exists, declare our queue and bind it to the exchange by name."""
    channel.exchange_declare(exchange, passive=True)  # never re-declared
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    for pattern in bindings:
        channel.queue_bind(queue, exchange, routing_key=pattern)


def settle(
    channel: BlockingChannel,
    method: Basic.Deliver,
    properties: BasicProperties,
    body: bytes,
    receiver: receiving.Receiver,
) -> None:
    """Acknowledge after processing; reject what can never be processed; requeue a failure."""
    tag = method.delivery_tag
    try:
        verdict = receiver.receive(
            headers=properties.headers, content_type=properties.content_type, body=body
        )
    except Exception:
        channel.basic_nack(tag, requeue=True)
        raise
    if verdict is receiving.Verdict.ACK:
        channel.basic_ack(tag)
    else:
        channel.basic_reject(tag, requeue=False)


def main() -> None:
    args = receiving.arguments("Consume order-watcher events with pika.")
    receiver = receiving.Receiver(processed=receiving.Processed(args.db))
    consume(
        args.url,
        queue=args.queue,
        bindings=args.bind,
        count=args.count,
        exchange=args.exchange,
        receiver=receiver,
        timeout_s=args.timeout,
    )


if __name__ == "__main__":
    main()
