"""`order-watcher tail`: watch the events on the exchange as they pass, without taking any.

A tail has a queue of its own: exclusive, auto-delete and named by the broker, bound to the
exchange with the given routing-key patterns (every event by default). It consumes with
no_ack, so it never takes, rejects or requeues a message meant for a consumer queue, and
the broker deletes its queue when the connection closes, however the tail ends.

The exchange is only checked (a passive declare), so tailing never changes its type or
arguments; on a broker the watcher has not set up yet, the tail declares the topology
exactly as the publisher would (see `topology`), so the first events are not missed.

Each message becomes one line on `out`: readable (time to the second, routing key in a
column as wide as `demo`'s, subject, line key, before -> after) or the body itself, exactly,
as a JSON line. A body that is not a CloudEvent is shown
on a line marked `[not a CloudEvent]` (in JSON mode `{"raw": ..., "routing_key": ...}`), so
a stray message never stops the tail. Deliveries go through an in-process inbox; `stop`
being set or the channel closing puts an end marker into it, so one loop waits for
messages and for the end alike.

Connecting, checking the exchange, binding and consuming translate aio-pika/aiormq
failures into `BusError`, showing the URL only through the publisher's `safe_url` and
`redact`. A connection lost while tailing is a `BusError` too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

import aio_pika
import orjson
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractQueue,
)
from aio_pika.exceptions import CONNECTION_EXCEPTIONS, ChannelNotFoundEntity
from yarl import URL

from watcher.bus import closing, topology
from watcher.bus.publisher import bus_error, redact, safe_url
from watcher.core.errors import BusError
from watcher.settings import AmqpSettings

log = logging.getLogger(__name__)

DEFAULT_PATTERNS = ("#",)
RAW_MARK = "[not a CloudEvent]"
MAX_RAW_CHARS = 1000
KEY_WIDTH = 56  # the routing-key column of `tail` and `demo`: fits every key but the longest
_ENVELOPE = ("specversion", "id", "source", "type")

_Inbox = asyncio.Queue[AbstractIncomingMessage | None]


async def tail(
    settings: AmqpSettings,
    *,
    patterns: Sequence[str] = DEFAULT_PATTERNS,
    out: TextIO,
    json_lines: bool = False,
    limit: int | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Print events matching `patterns` until `limit`, `stop` or cancellation; return the count."""
    url = settings.url.get_secret_value()
    inbox: _Inbox = asyncio.Queue()
    connection = aio_pika.Connection(
        URL(url), client_properties={"connection_name": "order-watcher tail"}
    )
    ender = asyncio.ensure_future(_end_when_set(stop, inbox))
    try:
        channel = await _subscribe(
            connection, settings, inbox, patterns=patterns or DEFAULT_PATTERNS
        )
        printed = await _print(inbox, out=out, json_lines=json_lines, limit=limit)
        if channel.is_closed and not _stopped(stop) and not _reached(printed, limit):
            raise BusError(f"lost the connection to the broker ({safe_url(url)})")
    finally:
        ender.cancel()
        await asyncio.wait([ender])
        await _close(connection, url)
    log.info("tail stopped after %d events", printed)
    return printed


async def _subscribe(
    connection: AbstractConnection,
    settings: AmqpSettings,
    inbox: _Inbox,
    *,
    patterns: Sequence[str],
) -> AbstractChannel:
    """Connect, bind a queue of the tail's own and start consuming it into `inbox`."""
    url = settings.url.get_secret_value()
    try:
        await connection.connect(timeout=settings.confirm_timeout_s)
        closing.raise_if_cancelled()
        channel = await connection.channel()
        await _ensure_exchange(channel, settings)
        queue = await _bind(channel, settings.exchange, patterns)
        await queue.consume(_deliver_into(inbox), no_ack=True)
    except CONNECTION_EXCEPTIONS as exc:
        raise bus_error("cannot connect to the broker or bind a queue", exc, url=url) from exc
    channel.close_callbacks.add(lambda *_: inbox.put_nowait(None))
    log.info("tailing %s on %s, exchange %r", ", ".join(patterns), safe_url(url), settings.exchange)
    return channel


async def _bind(channel: AbstractChannel, exchange: str, patterns: Sequence[str]) -> AbstractQueue:
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    for pattern in patterns:
        await queue.bind(exchange, routing_key=pattern)
    return queue


def _deliver_into(inbox: _Inbox) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
    async def deliver(message: AbstractIncomingMessage) -> None:
        inbox.put_nowait(message)

    return deliver


async def _ensure_exchange(channel: AbstractChannel, settings: AmqpSettings) -> None:
    """Check the exchange exists (passively); declare the topology only when it does not."""
    try:
        await channel.get_exchange(settings.exchange, ensure=True)
    except ChannelNotFoundEntity:
        await channel.reopen()
        await topology.declare(channel, settings)


async def _end_when_set(stop: asyncio.Event | None, inbox: _Inbox) -> None:
    if stop is not None:
        await stop.wait()
        inbox.put_nowait(None)


async def _print(inbox: _Inbox, *, out: TextIO, json_lines: bool, limit: int | None) -> int:
    printed = 0
    while not _reached(printed, limit):
        message = await inbox.get()
        if message is None:
            break
        out.write(render(message.body, message.routing_key or "", json_lines=json_lines) + "\n")
        out.flush()
        printed += 1
    return printed


def _stopped(stop: asyncio.Event | None) -> bool:
    return stop is not None and stop.is_set()


def _reached(printed: int, limit: int | None) -> bool:
    return limit is not None and printed >= limit


async def _close(connection: AbstractConnection, url: str) -> None:
    try:
        await connection.close()
    except CONNECTION_EXCEPTIONS as exc:
        log.debug("closing the broker connection failed: %s", redact(str(exc), url))


def render(body: bytes, routing_key: str, *, json_lines: bool) -> str:
    """One line for one message: readable, or JSON; a non-CloudEvent marked as raw."""
    event = cloud_event(body)
    if event is None:
        return _raw_json(body, routing_key) if json_lines else _raw_line(body, routing_key)
    if json_lines:
        return _json_line(body, event)
    return readable(event, routing_key)


def cloud_event(body: bytes) -> dict[str, Any] | None:
    """The body as a CloudEvent's fields, or None when it is not one."""
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict) or not all(isinstance(event.get(k), str) for k in _ENVELOPE):
        return None
    return event


def readable(event: dict[str, Any], routing_key: str) -> str:
    """Time to the second, routing key in its column, subject, then line and change."""
    data = event.get("data")
    data = data if isinstance(data, dict) else {}
    text = f"{_to_the_second(event.get('time'))}  {routing_key:<{KEY_WIDTH}} "
    text += str(event.get("subject", "-"))
    if data.get("line_key") is not None:
        text += f" line {data['line_key']}"
    if "after" in data:
        text += f"  {_value(data.get('before'))} -> {_value(data['after'])}"
    return text


def _to_the_second(time: object) -> str:
    """'2026-11-24T09:40:00.123456Z' as '2026-11-24T09:40:00Z'; anything else as it is."""
    try:
        moment = datetime.fromisoformat(str(time))
    except ValueError:
        return str(time) if time is not None else "-"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}{'Z' if moment.tzinfo is not None else ''}"


def _value(value: object) -> str:
    if isinstance(value, dict):
        normalised, raw = value.get("value"), value.get("raw")
        text = _value(normalised)
        return f"{text} ({raw})" if raw is not None and raw != normalised else text
    return "-" if value is None else str(value)


def _json_line(body: bytes, event: dict[str, Any]) -> str:
    # The body as published, unless it spans lines: then the same event, compacted.
    text = body.decode()
    return text if "\n" not in text and "\r" not in text else orjson.dumps(event).decode()


def _raw_line(body: bytes, routing_key: str) -> str:
    return f"{RAW_MARK}  {routing_key}  {orjson.dumps(_raw_text(body)).decode()}"


def _raw_json(body: bytes, routing_key: str) -> str:
    return orjson.dumps({"raw": _raw_text(body), "routing_key": routing_key}).decode()


def _raw_text(body: bytes) -> str:
    text = body.decode(errors="replace")
    return text if len(text) <= MAX_RAW_CHARS else text[:MAX_RAW_CHARS] + "…"
