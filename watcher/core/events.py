"""Typed change events and their CloudEvents 1.0 envelope (the wire contract).

One pydantic class per event type of DESIGN.md. Every event carries the order's identity,
its per-order `sequence` and the order snapshot after the change; changes carry `before`
and `after` values, normalised and raw. `envelope` wraps an event in the structured-mode
CloudEvent that is published as the AMQP body, and `routing_key` derives the topic key:
"<provider>.<type>", plus the new normalised value for status, provisioning and payment.

Every envelope names the schema of its type in `dataschema`, a URN that ends in the
schema's path among the contract documents: "urn:order-watcher:schemas/<family>/v<major>.json".
A type's major version is in its name: `order.status_changed` is major 1 of its family, and
a breaking change to it would be published as a new type, `order.status_changed.v2`, whose
schema is "schemas/order.status_changed/v2.json". Additive changes keep the name and the
schema (docs/README.md states the policy).

Event ids are deterministic (a UUIDv5 of source, order, sequence, type and line key), so
a sync repeated after a crash produces the same ids and consumers can drop duplicates.
order.stuck is the exception: it is published once per episode (an order's stay in one
status), not per snapshot, so its id is a hash of source, order, type, status and the
moment the episode began. The same episode always gives the same id, whatever sequence
the order has reached when it is reported; a new episode gives a new id.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict, field_validator

_ID_NAMESPACE = uuid.UUID("5b0c3f2e-8f3e-4c52-9d7e-0f6f1d1c7a11")
CONTENT_TYPE = "application/cloudevents+json"
SCHEMA_NAMESPACE = "urn:order-watcher:"
_MAJOR_SUFFIX = re.compile(r"\.v(?P<major>[2-9]|[1-9][0-9]+)$")


class Value(BaseModel):
    """A normalised value with the vendor's own raw value beside it."""

    model_config = ConfigDict(frozen=True)

    value: str | None
    raw: str | None


class OrderEvent(BaseModel):
    """Fields every event's `data` carries."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    type: ClassVar[str]
    routed_by_value: ClassVar[bool] = False

    provider: str
    source: str
    customer_id: str
    order_id: str
    sequence: int
    order: dict[str, Any]

    def affected_line(self) -> str | None:
        """The line key for line events, None for order-level ones."""
        key = getattr(self, "line_key", None)
        return key if isinstance(key, str) else None

    def identity(self) -> tuple[str, ...]:
        """What the event's id is a hash of: source, order, sequence, type and scope."""
        line = self.affected_line()
        scope = "order" if line is None else f"line:{line}"
        return (self.source, self.order_id, str(self.sequence), self.type, scope)

    def routing_value(self) -> str | None:
        """The extra routing-key segment: the new normalised value, where there is one."""
        after = getattr(self, "after", None)
        if self.routed_by_value and isinstance(after, Value):
            return after.value or "unknown"
        return None


class OrderCreated(OrderEvent):
    type = "order.created"


class OrderStatusChanged(OrderEvent):
    type = "order.status_changed"
    routed_by_value = True
    before: Value
    after: Value


class LineItemAdded(OrderEvent):
    type = "order.line_item.added"
    line_key: str
    line: dict[str, Any]


class LineItemRemoved(OrderEvent):
    type = "order.line_item.removed"
    line_key: str
    line: dict[str, Any]


class LineItemQuantityChanged(OrderEvent):
    type = "order.line_item.quantity_changed"
    line_key: str
    before: int
    after: int


class LineItemStatusChanged(OrderEvent):
    type = "order.line_item.status_changed"
    line_key: str
    before: Value
    after: Value


class ProvisioningChanged(OrderEvent):
    """Provisioning of one line (`line_key` set) or fulfilment of the whole order."""

    type = "order.provisioning_changed"
    routed_by_value = True
    line_key: str | None
    before: Value
    after: Value
    subscription_id: str | None = None


class PaymentChanged(OrderEvent):
    type = "order.payment_changed"
    routed_by_value = True
    before: Value
    after: Value


class OrderStuck(OrderEvent):
    """The order has been in `status` since `since`, past its threshold; once per episode.

    `stuck_for_s` is how long it had been there when detected, `threshold_s` the threshold
    its status crossed. `sequence` and `order` are those of the snapshot it was detected on.
    """

    type = "order.stuck"
    status: Value
    since: datetime
    stuck_for_s: float
    threshold_s: float

    @field_validator("since")
    @classmethod
    def _in_utc(cls, since: datetime) -> datetime:
        if since.utcoffset() is None:
            raise ValueError("since needs a timezone")
        return since.astimezone(UTC)

    def identity(self) -> tuple[str, ...]:
        """The episode: source, order, type, status (normalised and raw) and since."""
        episode = f"{self.status.value}:{self.status.raw}@{self.since.isoformat()}"
        return (self.source, self.order_id, self.type, episode)


EVENT_TYPES: tuple[type[OrderEvent], ...] = (
    OrderCreated,
    OrderStatusChanged,
    LineItemAdded,
    LineItemRemoved,
    LineItemQuantityChanged,
    LineItemStatusChanged,
    ProvisioningChanged,
    PaymentChanged,
    OrderStuck,
)


def event_id(event: OrderEvent) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, "\x1f".join(event.identity())))


def routing_key(event: OrderEvent) -> str:
    value = event.routing_value()
    key = f"{event.provider}.{event.type}"
    return f"{key}.{value}" if value else key


def schema_version(event_type: str) -> tuple[str, int]:
    """The family and major version of `event_type`: "order.status_changed.v2" is major 2
    of "order.status_changed"; a name without a `.v<N>` suffix is major 1."""
    suffix = _MAJOR_SUFFIX.search(event_type)
    if suffix is None:
        return event_type, 1
    return event_type[: suffix.start()], int(suffix["major"])


def schema_file(event_type: str) -> str:
    """The path of `event_type`'s schema among the contract documents (docs/)."""
    family, major = schema_version(event_type)
    return f"schemas/{family}/v{major}.json"


def dataschema(event_type: str) -> str:
    """The `dataschema` of `event_type`'s events, also the `$id` of that schema."""
    return SCHEMA_NAMESPACE + schema_file(event_type)


def envelope(event: OrderEvent, *, detected_at: datetime) -> dict[str, Any]:
    """The structured-mode CloudEvent for `event`."""
    return {
        "specversion": "1.0",
        "id": event_id(event),
        "source": f"order-watcher/{event.source}",
        "type": event.type,
        "subject": f"{event.provider}/{event.customer_id}/{event.order_id}",
        "time": detected_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "dataschema": dataschema(event.type),
        "data": event.model_dump(mode="json"),
    }


def encode(event: OrderEvent, *, detected_at: datetime) -> bytes:
    return orjson.dumps(envelope(event, detected_at=detected_at))
