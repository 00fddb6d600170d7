"""One JSON Schema per event type: the whole structured-mode CloudEvent, from the models.

Each schema is JSON Schema 2020-12 with every model it needs under `$defs`. What the event
models leave open is filled in from the code that fixes it:

    <event class>.model_json_schema  `data` of that type's CloudEvent (serialisation mode)
    models.Order, models.LineItem    `data.order` and `data.line`, declared there as plain
                                     dicts but always dumps of these models
    events.envelope                  the envelope fields, `type` and `specversion` consts
    vendors.NAMES                    the `provider` values
    settings.SourceSettings.name     the pattern of `source` ("order-watcher/<name>")

`WHEN` says when each event type is published; the AsyncAPI document reuses the sentences.
"""

from __future__ import annotations

from typing import Any

from watcher import settings, vendors
from watcher.core import events, models

SCHEMA_DIR = "schemas"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
DATA_CONTENT_TYPE = "application/json"
PROVIDERS: tuple[str, ...] = vendors.NAMES

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


def when(event: type[events.OrderEvent]) -> str:
    """When `event` is published; a new event type needs its sentence in WHEN first."""
    if event.type not in WHEN:
        raise LookupError(f"describe {event.type} in watcher.contract.schemas.WHEN")
    return WHEN[event.type]


def schema_path(event_type: str) -> str:
    """Where the schema of `event_type` lives, relative to docs/."""
    return f"{SCHEMA_DIR}/{event_type}.schema.json"


def schema_id(event_type: str) -> str:
    return f"urn:order-watcher:event-schema:{event_type}"


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
