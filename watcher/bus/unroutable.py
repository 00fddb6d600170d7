"""The unroutable queue's depth, read from the broker for whoever reports it.

Events no binding matched end up in the unroutable queue (see `topology`). `watch` reads
its depth every `REFRESH_S` by a passive declare, on a connection and channel of its own
so the publisher's confirming channel never sees a failed declare, and hands it to
`on_depth`. While the broker is away it skips quietly and tries again on the next round:
the relay already reports the outage. Any other error is a bug and leaves `watch`, so the
service notices.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aio_pika
from aio_pika.exceptions import CONNECTION_EXCEPTIONS

from watcher.bus import closing
from watcher.settings import AmqpSettings

log = logging.getLogger(__name__)
REFRESH_S = 15.0


async def depth(connection: aio_pika.abc.AbstractConnection, queue: str) -> int:
    """Messages waiting in `queue`, read by a passive declare on a channel of its own."""
    channel = await connection.channel(publisher_confirms=False)
    async with channel:
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0


async def watch(
    settings: AmqpSettings, *, on_depth: Callable[[int], None], refresh_s: float = REFRESH_S
) -> None:
    """Hand the unroutable queue's depth to `on_depth` every `refresh_s` until cancelled."""
    connection: aio_pika.abc.AbstractConnection | None = None
    try:
        while True:
            try:
                if connection is None or connection.is_closed:
                    connection = await _connect(settings)
                on_depth(await depth(connection, settings.unroutable_queue))
            except (*CONNECTION_EXCEPTIONS, TimeoutError) as exc:
                log.debug("unroutable queue not read: %s", type(exc).__name__)
            closing.raise_if_cancelled()  # connecting or reading may have swallowed a stop
            await asyncio.sleep(refresh_s)
    finally:
        if connection is not None:
            await closing.close_within(connection, what="unroutable queue reader")


async def _connect(settings: AmqpSettings) -> aio_pika.abc.AbstractConnection:
    return await aio_pika.connect(
        settings.url.get_secret_value(),
        timeout=settings.confirm_timeout_s,
        client_properties={"connection_name": "order-watcher metrics"},
    )
