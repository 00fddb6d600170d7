"""The AsyncAPI 3.0 document of the exchange, its routing keys and its messages.

One channel is the topic exchange, addressed by routing key "{provider}.{event}", where
`event` is the event type plus, for types routed by value, the new normalised value; each
message documents its own routing key as `x-routing-key` and takes its payload from the
event type's JSON Schema (`schemas`). A second channel is the queue behind the alternate
exchange, where events no binding matches end up. Derived from the code:

    events.EVENT_TYPES               one message and one send operation per event type
    vendors.NAMES                    the routing keys' first word
    settings.AmqpSettings defaults   broker, exchange, alternate exchange, unroutable queue
    events.CONTENT_TYPE, publisher   AMQP content type, persistent and mandatory publishing
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from watcher import settings
from watcher.contract import schemas
from watcher.core import events, models

SCHEMA_FORMAT = "application/schema+json;version=2020-12"
AMQP_BINDING_VERSION = "0.3.0"
PERSISTENT = 2
CONTRACT_VERSION = "1.1.0"  # of the wire contract, not of the package; 1.1: dataschema
CHANNEL = "orderEvents"
UNROUTABLE_CHANNEL = "unroutable"

VALUE_SEGMENT: dict[str, str] = {
    events.OrderStatusChanged.type: "the new normalised order status: "
    + ", ".join(models.OrderStatus),
    events.ProvisioningChanged.type: "the new normalised provisioning or fulfilment state: "
    + ", ".join(models.Provisioning),
    events.PaymentChanged.type: "the new payment status as the vendor names it, trimmed and"
    " lower-cased (for example paid, unpaid, authorized, refunded)",
}
_UNKNOWN_VALUE = "; `unknown` when there is none"


def routing_key_template(event: type[events.OrderEvent]) -> str:
    """The routing key of `event`'s messages, with {provider} and {value} placeholders."""
    key = f"{{provider}}.{event.type}"
    return f"{key}.{{value}}" if event.routed_by_value else key


def document() -> dict[str, Any]:
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
        "summary": schemas.when(event),
        "description": _message_description(event),
        "contentType": events.CONTENT_TYPE,
        "payload": {
            "schemaFormat": SCHEMA_FORMAT,
            "schema": {"$ref": f"./{schemas.schema_path(event.type)}"},
        },
        "bindings": {"amqp": {"messageType": event.type, "bindingVersion": AMQP_BINDING_VERSION}},
        "x-routing-key": routing_key_template(event),
    }


def _message_description(event: type[events.OrderEvent]) -> str:
    text = f"Routing key `{routing_key_template(event)}`, where `{{provider}}` is one of "
    text += ", ".join(schemas.PROVIDERS)
    if event.routed_by_value:
        values = VALUE_SEGMENT.get(event.type, "the new normalised value")
        text += f" and `{{value}}` is {values}{_UNKNOWN_VALUE}"
    text += ". AMQP properties: message_id = the CloudEvent id, type = the event type."
    return text + f" The CloudEvent's `dataschema` is `{schemas.schema_id(event.type)}`."


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
            " event id (AMQP message_id). Every event names its schema in `dataschema`."
            " Changes that only add (optional fields, event types, vendors) keep the"
            " schemas and their versions, so consumers must accept fields they do not"
            " know and ignore types they do not handle; a breaking change is published as"
            " a new type named with its major version (`order.status_changed.v2`), beside"
            " the old one for a deprecation period."
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
        "provider": {"description": "The source's provider.", "enum": list(schemas.PROVIDERS)},
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
        "summary": schemas.when(event),
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
