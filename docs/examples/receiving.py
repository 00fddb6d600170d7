"""What a consumer of order-watcher's events does with each message, whatever its client.

The three examples beside this file (FastStream, aio-pika, pika) differ only in how they
subscribe and settle a message; each hands the message's headers, content type and body
to `Receiver.receive` and settles it by the verdict:

    ACK      processed now, or already processed (a duplicate), or a type not handled here
    REJECT   not a CloudEvent, or not valid against the schema it names: never retried
    (raise)  processing failed: requeue it (nack) and try again later

Delivery is at least once, so a consumer drops duplicates by the event id. The ids it
has processed are kept in SQLite, and the id is recorded in the same transaction as the
processing's own writes, so a crash between the two can neither lose an event nor apply
it twice. The example keeps them in memory unless given a file; a real service keeps them
in its own database and prunes ids older than its longest redelivery window.

The body is validated against the JSON Schema its `dataschema` names before it is parsed
with the CloudEvents SDK's RabbitMQ binding (which would invent an id for an event
lacking one). The schemas are read from docs/schemas, indexed by their `$id`.
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import json
import logging
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.rabbitmq import RabbitMQMessage, from_rabbitmq
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from jsonschema import Draft202012Validator

log = logging.getLogger(__name__)

EXCHANGE = "order-watcher"
SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


class Verdict(enum.Enum):
    ACK = "ack"
    REJECT = "reject"


class Schemas:
    """The published schemas, found by the `dataschema` an event names (its `$id`)."""

    def __init__(self, directory: Path = SCHEMAS) -> None:
        self._by_id: dict[str, Any] = {}
        self._by_type: dict[str, str] = {}
        for path in sorted(directory.glob("*/v*.json")):
            document = json.loads(path.read_text())
            validator = Draft202012Validator(
                document, format_checker=Draft202012Validator.FORMAT_CHECKER
            )
            self._by_id[document["$id"]] = validator
            if path.stem == "v1":
                self._by_type[document["properties"]["type"]["const"]] = document["$id"]

    def validator(self, body: Mapping[str, Any]) -> Any:
        """The validator for `body`, None for an event type this consumer has no schema of.

        An event published before `dataschema` existed is checked against its type's v1.
        """
        dataschema = body.get("dataschema") or self._by_type.get(str(body.get("type")))
        return self._by_id.get(str(dataschema))


class Processed:
    """The ids of the events already processed, in SQLite."""

    def __init__(self, database: str = ":memory:") -> None:
        self.db = sqlite3.connect(database)
        self.db.execute("CREATE TABLE IF NOT EXISTS processed (id TEXT PRIMARY KEY)")
        self.db.commit()

    @contextlib.contextmanager
    def first_time(self, event_id: str) -> Iterator[bool]:
        """One transaction: whether `event_id` is new; the block's writes and the id are
        committed together, or neither when the block raises."""
        with self.db:
            inserted = self.db.execute(
                "INSERT OR IGNORE INTO processed (id) VALUES (?)", (event_id,)
            )
            yield inserted.rowcount == 1


def log_event(event: BaseCloudEvent, db: sqlite3.Connection) -> None:
    """The default processing: one log line. Write your effects through `db`."""
    log.info("%s %s %s", event.get_type(), event.get_subject(), event.get_id())


@dataclass
class Receiver:
    """Validates, parses, deduplicates and processes messages; keeps what it saw."""

    process: Callable[[BaseCloudEvent, sqlite3.Connection], None] = log_event
    schemas: Schemas = field(default_factory=Schemas)
    processed: Processed = field(default_factory=Processed)
    handled: list[BaseCloudEvent] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    @property
    def settled(self) -> int:
        """How many messages got a verdict."""
        return len(self.handled) + len(self.duplicates) + len(self.skipped) + len(self.rejected)

    def receive(
        self, *, headers: Mapping[str, Any] | None, content_type: str | None, body: bytes
    ) -> Verdict:
        """The verdict on one message; raises when processing it failed."""
        try:
            decoded = json.loads(body)
        except ValueError as error:
            return self._reject(f"not JSON: {error}")
        if not isinstance(decoded, dict):
            return self._reject("not a JSON object")
        validator = self.schemas.validator(decoded)
        if validator is None:
            self.skipped.append(str(decoded.get("type")))
            return Verdict.ACK
        errors = [error.message for error in validator.iter_errors(decoded)]
        if errors:
            return self._reject("; ".join(errors))
        event = cloud_event(headers, content_type, body)
        if isinstance(event, str):
            return self._reject(event)
        return self._process(event)

    def _process(self, event: BaseCloudEvent) -> Verdict:
        with self.processed.first_time(event.get_id()) as first:
            if first:
                self.process(event, self.processed.db)
        if first:
            self.handled.append(event)
        else:
            self.duplicates.append(event.get_id())
        return Verdict.ACK

    def _reject(self, reason: str) -> Verdict:
        log.warning("rejected a message: %s", reason)
        self.rejected.append(reason)
        return Verdict.REJECT


def cloud_event(
    headers: Mapping[str, Any] | None, content_type: str | None, body: bytes
) -> BaseCloudEvent | str:
    """The message as a CloudEvent, through the SDK's RabbitMQ binding; why not, if not."""
    text_headers = {name: _text(value) for name, value in (headers or {}).items()}
    message = RabbitMQMessage(headers=text_headers, content_type=content_type, body=body)
    try:
        return from_rabbitmq(message, JSONFormat())
    except (BaseCloudEventException, ValueError) as error:
        return f"not a CloudEvent: {error}"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def arguments(description: str) -> argparse.Namespace:
    """The examples' command line: broker, queue, bindings, how many messages."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--exchange", default=EXCHANGE)
    parser.add_argument("--queue", default="example-consumer")
    parser.add_argument("--bind", action="append", help="routing-key pattern (repeatable)")
    parser.add_argument("--count", type=int, default=10, help="stop after this many messages")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait at most")
    parser.add_argument("--db", default=":memory:", help="SQLite file of processed ids")
    args = parser.parse_args()
    args.bind = args.bind or ["#"]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return args
