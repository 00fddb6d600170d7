"""The event contract as documents: one JSON Schema per event type and an AsyncAPI file.

Everything here is derived from the code that defines the wire contract, so the documents
cannot say something the service does not do:

    events.EVENT_TYPES               one schema and one AsyncAPI message per event type
    <event class>.model_json_schema  `data` of that type's CloudEvent (serialisation mode)
    models.Order, models.LineItem    `data.order` and `data.line`, declared there as plain
                                     dicts but always dumps of these models
    events.envelope                  the envelope fields, `type` and `specversion` consts
    settings.Provider                the `provider` values and the routing keys' first word
    settings.SourceSettings.name     the pattern of `source` ("order-watcher/<name>")
    settings.AmqpSettings defaults   broker, exchange, alternate exchange, unroutable queue
    events.CONTENT_TYPE, publisher   AMQP content type, persistent and mandatory publishing

Each schema is JSON Schema 2020-12 describing the whole structured-mode CloudEvent, with
every model it needs under `$defs`. The AsyncAPI 3.0 document has one channel for the
topic exchange, addressed by routing key "{provider}.{event}", where `event` is the event
type plus, for types routed by value, the new normalised value; each message documents its
own routing key as `x-routing-key`. A second channel is the queue behind the alternate
exchange, where events no binding matches end up.

`documents()` renders every file as text, deterministically (sorted keys, fixed layout,
trailing newline), so a test can compare the checked-in files with it byte for byte.
`main()` is the only part that touches the disk: `python -m watcher.contract` rewrites
docs/, and `--check` only reports files that differ.
"""

from __future__ import annotations

import json
import sys
import typing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from watcher import settings
from watcher.core import events, models

DOCS = Path(__file__).resolve().parent.parent / "docs"
SCHEMA_DIR = "schemas"
ASYNCAPI_FILE = "asyncapi.yaml"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_FORMAT = "application/schema+json;version=2020-12"
AMQP_BINDING_VERSION = "0.3.0"
DATA_CONTENT_TYPE = "application/json"
PERSISTENT = 2
PROVIDERS: tuple[str, ...] = typing.get_args(settings.Provider)
CONTRACT_VERSION = "1.0.0"  # of the wire contract, not of the package
CHANNEL = "orderEvents"
UNROUTABLE_CHANNEL = "unroutable"

WHEN: dict[str, str] = {
    events.OrderCreated.type: "An order first seen after the source's baseline sync.",
    events.OrderStatusChanged.type: "The order's normalised or raw status changed.",
    events.LineItemAdded.type: "A line appeared on the order.",
    events.LineItemRemoved.type: "A line disappeared from the order.",
    events.LineItemQuantityChanged.type: "A line's quantity changed.",
    events.LineItemStatusChanged.type: "A line's normalised or raw status changed.",
    events.ProvisioningChanged.type: (
        "Provisioning of a line (`line_key` set) or fulfilment of the whole order"
        " (`line_key` null) changed."
    ),
    events.PaymentChanged.type: "The order's payment status changed.",
    events.OrderStuck.type: (
        "The order stayed in a non-terminal status past its threshold (once per episode)."
    ),
}
VALUE_SEGMENT: dict[str, str] = {
    events.OrderStatusChanged.type: "the new normalised order status: "
    + ", ".join(models.OrderStatus),
    events.ProvisioningChanged.type: "the new normalised provisioning or fulfilment state: "
    + ", ".join(models.Provisioning),
    events.PaymentChanged.type: "the new payment status as the vendor names it, trimmed and"
    " lower-cased (for example paid, unpaid, authorized, refunded)",
}
_UNKNOWN_VALUE = "; `unknown` when there is none"


def when(event: type[events.OrderEvent]) -> str:
    """When `event` is published; a new event type needs its sentence in WHEN first."""
    if event.type not in WHEN:
        raise LookupError(f"describe {event.type} in watcher.contract.WHEN")
    return WHEN[event.type]


def schema_path(event_type: str) -> str:
    """Where the schema of `event_type` lives, relative to docs/."""
    return f"{SCHEMA_DIR}/{event_type}.schema.json"


def schema_id(event_type: str) -> str:
    return f"urn:order-watcher:event-schema:{event_type}"


def routing_key_template(event: type[events.OrderEvent]) -> str:
    """The routing key of `event`'s messages, with {provider} and {value} placeholders."""
    key = f"{{provider}}.{event.type}"
    return f"{key}.{{value}}" if event.routed_by_value else key


def documents() -> dict[str, str]:
    """Every generated file, by path relative to docs/, as the exact text to write."""
    files = {
        schema_path(event.type): _json_text(event_schema(event)) for event in events.EVENT_TYPES
    }
    files[ASYNCAPI_FILE] = _yaml_text(asyncapi())
    return files


# JSON Schema per event type ---------------------------------------------------------------


def event_schema(event: type[events.OrderEvent]) -> dict[str, Any]:
    """The whole CloudEvent of `event`'s type, `data` described by its model."""
    data = data_schema(event)
    defs: dict[str, Any] = {**data.pop("$defs", {}), **_snapshot_defs()}
    defs[event.__name__] = data
    properties = _envelope_properties(event)
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": schema_id(event.type),
        "title": f"{event.type} event",
        "description": f"{when(event)} A CloudEvents 1.0 event in structured JSON mode.",
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
        "$defs": defs,
    }


def data_schema(event: type[events.OrderEvent]) -> dict[str, Any]:
    """The event model's schema, with what the model leaves open filled in from the code."""
    schema = event.model_json_schema(mode="serialization", ref_template="#/$defs/{model}")
    properties: dict[str, Any] = schema["properties"]
    properties["provider"] = {**properties["provider"], "enum": list(PROVIDERS)}
    properties["source"] = {**properties["source"], "pattern": _source_name_pattern()}
    properties["order"] = _ref("Order", "The order after the change, as stored in its snapshot.")
    if "line" in properties:
        properties["line"] = _ref("LineItem", "The line that was added or removed.")
    return schema


def _envelope_properties(event: type[events.OrderEvent]) -> dict[str, Any]:
    providers = "|".join(PROVIDERS)
    return {
        "specversion": _const("1.0", "The CloudEvents specification version."),
        "id": {
            "type": "string",
            "format": "uuid",
            "description": "Deterministic: the same change always has the same id, so"
            " consumers drop duplicates by it.",
        },
        "source": {
            "type": "string",
            "pattern": f"^order-watcher/{_source_name_pattern().removeprefix('^')}",
            "description": "order-watcher/<source name>.",
        },
        "type": _const(event.type, "The event type."),
        "subject": {
            "type": "string",
            "pattern": f"^({providers})/.+/.+$",
            "description": "<provider>/<customer id>/<order id>.",
        },
        "time": {
            "type": "string",
            "format": "date-time",
            "pattern": "Z$",
            "description": "When the change was detected, RFC 3339 in UTC.",
        },
        "datacontenttype": _const(DATA_CONTENT_TYPE, "The media type of `data`."),
        "data": _ref(event.__name__, "The change, the order's identity and its snapshot."),
    }


def _snapshot_defs() -> dict[str, Any]:
    order = models.Order.model_json_schema(mode="serialization", ref_template="#/$defs/{model}")
    defs: dict[str, Any] = order.pop("$defs")
    defs["Order"] = order
    return defs


def _source_name_pattern() -> str:
    fields = settings.SourceSettings.model_json_schema()["properties"]
    return str(fields["name"]["pattern"])


def _const(value: str, description: str) -> dict[str, Any]:
    return {"type": "string", "const": value, "description": description}


def _ref(model: str, description: str) -> dict[str, Any]:
    return {"$ref": f"#/$defs/{model}", "description": description}


# AsyncAPI -------------------------------------------------------------------------------


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the exchange, its routing keys and messages."""
    amqp = settings.AmqpSettings()
    return {
        "asyncapi": "3.0.0",
        "info": _info(),
        "defaultContentType": events.CONTENT_TYPE,
        "servers": {"broker": _server(amqp)},
        "channels": {
            CHANNEL: _exchange_channel(amqp),
            UNROUTABLE_CHANNEL: _unroutable_channel(amqp),
        },
        "operations": {
            f"publish{event.__name__}": _operation(event) for event in events.EVENT_TYPES
        },
        "components": {
            "messages": {event.__name__: message(event) for event in events.EVENT_TYPES}
        },
    }


def message(event: type[events.OrderEvent]) -> dict[str, Any]:
    """One event type as an AsyncAPI message, its payload the event type's JSON Schema."""
    return {
        "name": event.type,
        "title": event.type,
        "summary": when(event),
        "description": _message_description(event),
        "contentType": events.CONTENT_TYPE,
        "payload": {
            "schemaFormat": SCHEMA_FORMAT,
            "schema": {"$ref": f"./{schema_path(event.type)}"},
        },
        "bindings": {"amqp": {"messageType": event.type, "bindingVersion": AMQP_BINDING_VERSION}},
        "x-routing-key": routing_key_template(event),
    }


def _message_description(event: type[events.OrderEvent]) -> str:
    text = f"Routing key `{routing_key_template(event)}`, where `{{provider}}` is one of "
    text += ", ".join(PROVIDERS)
    if event.routed_by_value:
        values = VALUE_SEGMENT.get(event.type, "the new normalised value")
        text += f" and `{{value}}` is {values}{_UNKNOWN_VALUE}"
    return text + ". AMQP properties: message_id = the CloudEvent id, type = the event type."


def _info() -> dict[str, Any]:
    return {
        "title": "order-watcher events",
        "version": CONTRACT_VERSION,
        "description": (
            "order-watcher polls vendor order APIs and publishes one CloudEvents 1.0 event"
            " (structured JSON mode) per order change to a RabbitMQ topic exchange."
            " Messages are persistent and published with confirms and `mandatory`; an"
            " event no queue is bound for goes through the exchange's alternate exchange"
            " to the unroutable queue. Delivery is at least once: drop duplicates by the"
            " event id (AMQP message_id)."
        ),
    }


def _server(amqp: settings.AmqpSettings) -> dict[str, Any]:
    url = urlsplit(amqp.url.get_secret_value())
    return {
        "host": f"{url.hostname}:{url.port or 5672}",
        "pathname": url.path or "/",
        "protocol": "amqp",
        "protocolVersion": "0.9.1",
        "description": "The broker `[amqp] url` names; the default is shown.",
    }


def _exchange_channel(amqp: settings.AmqpSettings) -> dict[str, Any]:
    return {
        "address": "{provider}.{event}",
        "title": f"The topic exchange `{amqp.exchange}`",
        "description": (
            f"The durable topic exchange `[amqp] exchange` (default `{amqp.exchange}`)."
            f" Its alternate exchange `{amqp.unroutable_exchange}` (fanout) catches every"
            f" event no binding matches and routes it to the queue"
            f" `{amqp.unroutable_queue}`. Consumer queues declared from `[[amqp.queues]]`"
            " are bound with routing-key patterns such as `adobe_vip.order.#` or"
            " `*.order.status_changed.completed`."
        ),
        "servers": [{"$ref": "#/servers/broker"}],
        "parameters": _address_parameters(),
        "messages": _message_refs(),
        "bindings": {"amqp": _exchange_binding(amqp)},
        "x-alternate-exchange": {
            "name": amqp.unroutable_exchange,
            "type": "fanout",
            "durable": True,
            "queue": amqp.unroutable_queue,
        },
    }


def _address_parameters() -> dict[str, Any]:
    routed = [event.type for event in events.EVENT_TYPES if event.routed_by_value]
    return {
        "provider": {"description": "The source's provider.", "enum": list(PROVIDERS)},
        "event": {
            "description": (
                "The event type, followed for "
                + ", ".join(routed)
                + " by one more segment: the new normalised value."
            ),
            "examples": _event_segment_examples(),
        },
    }


def _event_segment_examples() -> list[str]:
    values = {
        events.OrderStatusChanged.type: models.OrderStatus.COMPLETED.value,
        events.ProvisioningChanged.type: models.Provisioning.PROVISIONED.value,
        events.PaymentChanged.type: "paid",
    }
    return [
        f"{event.type}.{values.get(event.type, 'unknown')}" if event.routed_by_value else event.type
        for event in events.EVENT_TYPES
    ]


def _exchange_binding(amqp: settings.AmqpSettings) -> dict[str, Any]:
    return {
        "is": "routingKey",
        "exchange": {
            "name": amqp.exchange,
            "type": "topic",
            "durable": True,
            "autoDelete": False,
            "vhost": "/",
        },
        "bindingVersion": AMQP_BINDING_VERSION,
    }


def _unroutable_channel(amqp: settings.AmqpSettings) -> dict[str, Any]:
    return {
        "address": amqp.unroutable_queue,
        "title": f"The unroutable queue `{amqp.unroutable_queue}`",
        "description": (
            f"Bound to the alternate exchange `{amqp.unroutable_exchange}` of"
            f" `{amqp.exchange}`: holds the events that no consumer queue was bound for."
        ),
        "servers": [{"$ref": "#/servers/broker"}],
        "messages": _message_refs(),
        "bindings": {
            "amqp": {
                "is": "queue",
                "queue": {
                    "name": amqp.unroutable_queue,
                    "durable": True,
                    "exclusive": False,
                    "autoDelete": False,
                    "vhost": "/",
                },
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
    }


def _message_refs() -> dict[str, Any]:
    return {
        event.__name__: {"$ref": f"#/components/messages/{event.__name__}"}
        for event in events.EVENT_TYPES
    }


def _operation(event: type[events.OrderEvent]) -> dict[str, Any]:
    return {
        "action": "send",
        "title": f"Publish {event.type}",
        "summary": when(event),
        "channel": {"$ref": f"#/channels/{CHANNEL}"},
        "messages": [{"$ref": f"#/channels/{CHANNEL}/messages/{event.__name__}"}],
        "bindings": {
            "amqp": {
                "deliveryMode": PERSISTENT,
                "mandatory": True,
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
    }


# Rendering and writing ------------------------------------------------------------------


def _json_text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _yaml_text(document: dict[str, Any]) -> str:
    return yaml.safe_dump(
        document, sort_keys=True, allow_unicode=True, default_flow_style=False, width=100
    )


def stale(directory: Path, expected: dict[str, str]) -> list[Path]:
    """Schema files in `directory` that no event type produces any more."""
    existing = sorted((directory / SCHEMA_DIR).glob("*.schema.json"))
    return [path for path in existing if path.relative_to(directory).as_posix() not in expected]


def differing(directory: Path, expected: dict[str, str]) -> list[str]:
    """The generated files that are missing from `directory` or differ from `expected`."""
    return [
        name
        for name, text in expected.items()
        if not (directory / name).is_file() or (directory / name).read_text() != text
    ]


def main(argv: list[str] | None = None) -> int:
    """Write docs/ (or, with --check, report what is out of date and return 1)."""
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--check"]):
        print("usage: python -m watcher.contract [--check]", file=sys.stderr)
        return 2
    expected = documents()
    if args:
        outdated = differing(DOCS, expected) + [str(p) for p in stale(DOCS, expected)]
        for name in outdated:
            print(f"out of date: {name}; run `python -m watcher.contract`", file=sys.stderr)
        return 1 if outdated else 0
    for path in stale(DOCS, expected):
        path.unlink()
    for name, text in expected.items():
        (DOCS / name).parent.mkdir(parents=True, exist_ok=True)
        (DOCS / name).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
