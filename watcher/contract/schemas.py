"""One JSON Schema per event type: the whole structured-mode CloudEvent, from the models.

Each schema is JSON Schema 2020-12 with every model it needs under `$defs`. What the event
models leave open is filled in from the code that fixes it:

    <event class>.model_json_schema  `data` of that type's CloudEvent (serialisation mode)
    models.Order, models.LineItem    `data.order` and `data.line`, declared there as plain
                                     dicts but always dumps of these models
    events.envelope                  the envelope fields, `type` and `specversion` consts
    events.dataschema                the schema's `$id`, its file (`schemas/<family>/v<N>.json`)
    vendors.NAMES                    the `provider` values
    settings.SourceSettings.name     the pattern of `source` ("order-watcher/<name>")

The published schemas are open: no object in them forbids fields it does not name, and a
provider is any lower-case word, so an event with a field or a vendor added later still
validates against the schema a consumer copied. `strict=True` gives the closed variant the
tests hold our own events to: every object closed, every envelope field required, the
providers enumerated. It is never published.

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
PROVIDER_PATTERN = "^[a-z][a-z0-9_]*$"
ADDED_LATER = ("dataschema",)  # envelope fields that events already in an outbox may lack

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
    return events.schema_file(event_type)


def schema_id(event_type: str) -> str:
    """The schema's `$id`: the `dataschema` its events carry."""
    return events.dataschema(event_type)


def resolve(dataschema: str) -> str:
    """The path relative to docs/ of the schema a `dataschema` names."""
    if not dataschema.startswith(events.SCHEMA_NAMESPACE):
        raise LookupError(f"{dataschema!r} names no schema of this contract")
    return dataschema.removeprefix(events.SCHEMA_NAMESPACE)


def event_schema(event: type[events.OrderEvent], *, strict: bool = False) -> dict[str, Any]:
    """The whole CloudEvent of `event`'s type, `data` described by its model; open to
    fields added later unless `strict` (see the module docstring)."""
    data = data_schema(event, strict=strict)
    defs: dict[str, Any] = {**data.pop("$defs", {}), **_snapshot_defs()}
    defs[event.__name__] = data
    properties = _envelope_properties(event, strict=strict)
    document = {
        "$schema": SCHEMA_DIALECT,
        "$id": schema_id(event.type),
        "title": f"{event.type} event",
        "description": f"{when(event)} A CloudEvents 1.0 event in structured JSON mode.",
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if strict or name not in ADDED_LATER],
        "$defs": defs,
    }
    shaped: dict[str, Any] = _closed(document) if strict else _opened(document)
    return shaped


def data_schema(event: type[events.OrderEvent], *, strict: bool = False) -> dict[str, Any]:
    """The event model's schema, with what the model leaves open filled in from the code."""
    schema = event.model_json_schema(mode="serialization", ref_template="#/$defs/{model}")
    properties: dict[str, Any] = schema["properties"]
    properties["provider"] = _provider(properties["provider"], strict=strict)
    properties["source"] = {**properties["source"], "pattern": _source_name_pattern()}
    properties["order"] = _ref("Order", "The order after the change, as stored in its snapshot.")
    if "line" in properties:
        properties["line"] = _ref("LineItem", "The line that was added or removed.")
    return schema


def _provider(field: dict[str, Any], *, strict: bool) -> dict[str, Any]:
    if strict:
        return {**field, "enum": list(PROVIDERS)}
    return {
        **field,
        "pattern": PROVIDER_PATTERN,
        "examples": list(PROVIDERS),
        "description": "The vendor; vendors added later appear here without a new version.",
    }


def _envelope_properties(event: type[events.OrderEvent], *, strict: bool) -> dict[str, Any]:
    providers = "|".join(PROVIDERS) if strict else PROVIDER_PATTERN.strip("^$")
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
        "dataschema": {
            **_const(schema_id(event.type), "This schema's `$id`; the event's major version."),
            "format": "uri",
        },
        "data": _ref(event.__name__, "The change, the order's identity and its snapshot."),
    }


def _opened(node: Any) -> Any:
    """`node` without any `additionalProperties: false`, at every depth."""
    if isinstance(node, list):
        return [_opened(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: _opened(value)
        for key, value in node.items()
        if not (key == "additionalProperties" and value is False)
    }


def _closed(node: Any) -> Any:
    """`node` with every object that names its properties closed to any other."""
    if isinstance(node, list):
        return [_closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    closed = {key: _closed(value) for key, value in node.items()}
    if node.get("type") == "object" and "properties" in node:
        closed["additionalProperties"] = False
    return closed


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
