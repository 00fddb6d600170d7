"""The event contract documents in docs/: in step with the code, complete, and true.

The checked-in JSON Schemas and AsyncAPI file must equal what `watcher.contract` generates
now; every event type has exactly one schema and one message; real events, built by
`sync.reconcile` from two snapshots of an order and read back from their wire bytes,
validate against their schema while broken ones do not; every event names its schema in
`dataschema`; the published schemas accept fields added later while the strict variant
holds our events to exactly the fields declared; and the AsyncAPI document states the
exchange, bindings and routing keys the publisher really uses.
"""

from __future__ import annotations

import json
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from tests.orders import line, order
from watcher import contract, settings, vendors
from watcher.bus import publisher
from watcher.contract import schemas
from watcher.core import events, sync
from watcher.core.models import OrderStatus, Provisioning
from watcher.core.ports import Snapshot

DOCS = Path(__file__).resolve().parent.parent / "docs"
NOW = datetime(2024, 5, 2, 14, 3, 7, tzinfo=UTC)
REGENERATE = "run `python -m watcher.contract` and commit docs/"


def changed_order_events() -> list[events.OrderEvent]:
    """Every change event, from one order moving between two snapshots."""
    before = order(
        line_items=(line("1"), line("2")),
        payment="unpaid",
        payment_raw="Unpaid",
        fulfilment=Provisioning.PENDING,
        fulfilment_raw="unfulfilled",
    )
    after = order(
        status=OrderStatus.COMPLETED,
        status_raw="1000",
        line_items=(
            line(
                "1",
                quantity=12,
                status=OrderStatus.COMPLETED,
                status_raw="1000",
                provisioning=Provisioning.PROVISIONED,
                provisioning_raw="1000",
                subscription_id="86756309",
            ),
            line("3"),
        ),
        payment="paid",
        payment_raw="Paid",
        fulfilment=Provisioning.PROVISIONED,
        fulfilment_raw="fulfilled",
    )
    stored = {before.order_id: Snapshot(order=before, sequence=1)}
    return sync.reconcile([after], stored, baseline=False, now=NOW).events


def new_order_events() -> list[events.OrderEvent]:
    return sync.reconcile([order(order_id="5123456790")], {}, baseline=False, now=NOW).events


def stuck_event() -> events.OrderEvent:
    pending = order()
    return events.OrderStuck(
        provider=pending.provider,
        source=pending.source,
        customer_id=pending.customer_id,
        order_id=pending.order_id,
        sequence=1,
        order=pending.model_dump(mode="json"),
        status=events.Value(value=pending.status.value, raw=pending.status_raw),
        since=NOW - timedelta(hours=3),
        stuck_for_s=10_800.0,
        threshold_s=7_200.0,
    )


SAMPLES: list[events.OrderEvent] = [*new_order_events(), *changed_order_events(), stuck_event()]
BY_TYPE: dict[str, events.OrderEvent] = {event.type: event for event in SAMPLES}


def sample_id(event: events.OrderEvent) -> str:
    line_key = event.affected_line()
    return event.type if line_key is None else f"{event.type}:{line_key}"


def wire(event: events.OrderEvent) -> dict[str, Any]:
    """The CloudEvent as a consumer receives it: the published bytes, decoded."""
    body: dict[str, Any] = json.loads(sync.record(event, now=NOW).body)
    return body


def schema(event_type: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DOCS / contract.schema_path(event_type)).read_text())
    return loaded


def validator(event_type: str) -> Draft202012Validator:
    return checking(schema(event_type))


def strict_validator(event: type[events.OrderEvent]) -> Draft202012Validator:
    return checking(schemas.event_schema(event, strict=True))


def checking(document: dict[str, Any]) -> Draft202012Validator:
    Draft202012Validator.check_schema(document)
    return Draft202012Validator(document, format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCS / contract.ASYNCAPI_FILE).read_text())
    return loaded


# The checked-in files are what the generator makes now ------------------------------------


@pytest.mark.parametrize("name", sorted(contract.documents()))
def test_checked_in_document_equals_the_generated_one(name: str) -> None:
    path = DOCS / name
    assert path.is_file(), f"docs/{name} is missing: {REGENERATE}"
    assert path.read_text() == contract.documents()[name], f"docs/{name} is stale: {REGENERATE}"


def test_no_schema_is_left_over_from_a_removed_event_type() -> None:
    left_over = contract.stale(DOCS, contract.documents())
    assert not left_over, f"{[str(path) for path in left_over]} belong to no event: {REGENERATE}"


def test_generation_is_deterministic() -> None:
    first, second = contract.documents(), contract.documents()
    assert first == second
    assert all(text.endswith("\n") and not text.endswith("\n\n") for text in first.values())


# One schema and one message per event type, and nothing else ------------------------------


def test_every_event_type_has_a_schema_and_nothing_else_does() -> None:
    expected = {contract.schema_path(event.type) for event in events.EVENT_TYPES}
    files = {path.relative_to(DOCS).as_posix() for path in (DOCS / "schemas").rglob("*")}
    folders = {path.rsplit("/", 1)[0] for path in expected}
    assert files == expected | folders
    assert len(expected) == len(events.EVENT_TYPES)


def test_a_schema_left_at_a_path_no_type_has_is_stale(tmp_path: Path) -> None:
    expected = contract.documents()
    for name, text in expected.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    old = tmp_path / "schemas" / "order.created.schema.json"
    old.write_text("{}")
    assert contract.stale(tmp_path, expected) == [old]
    assert contract.differing(tmp_path, expected) == []


def test_every_event_type_has_a_message_and_nothing_else_does(asyncapi: dict[str, Any]) -> None:
    types = {event.type for event in events.EVENT_TYPES}
    messages = asyncapi["components"]["messages"]
    assert {message["name"] for message in messages.values()} == types
    assert len(messages) == len(types)
    for channel in asyncapi["channels"].values():
        assert set(channel["messages"]) == set(messages)


def test_every_event_type_has_a_sample_here() -> None:
    assert set(BY_TYPE) == {event.type for event in events.EVENT_TYPES}


# Real events validate, broken ones do not ------------------------------------------------


@pytest.mark.parametrize("event", SAMPLES, ids=sample_id)
def test_a_published_event_validates_against_its_schema(event: events.OrderEvent) -> None:
    errors = [error.message for error in validator(event.type).iter_errors(wire(event))]
    assert errors == []


@pytest.mark.parametrize("event", SAMPLES, ids=sample_id)
def test_a_published_event_has_no_field_its_schema_does_not_declare(
    event: events.OrderEvent,
) -> None:
    errors = [error.message for error in strict_validator(type(event)).iter_errors(wire(event))]
    assert errors == []


def test_the_schema_describes_exactly_the_envelope_fields() -> None:
    for event in SAMPLES:
        document = schema(event.type)
        assert set(document["properties"]) == set(wire(event))
        assert set(document["required"]) == set(wire(event)) - {"dataschema"}


def test_the_schema_states_the_envelope_constants() -> None:
    for event in events.EVENT_TYPES:
        document = schema(event.type)
        properties = document["properties"]
        assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert document["$id"] == contract.schema_id(event.type)
        assert properties["type"]["const"] == event.type
        assert properties["specversion"]["const"] == "1.0"
        assert properties["datacontenttype"]["const"] == "application/json"
        assert properties["time"]["format"] == "date-time"


def without_order_id(body: dict[str, Any]) -> None:
    del body["data"]["order_id"]


def with_other_type(body: dict[str, Any]) -> None:
    body["type"] = "order.created"


def with_a_provider_that_is_no_vendor_name(body: dict[str, Any]) -> None:
    body["data"]["provider"] = "Adobe VIP"


def with_a_sequence_as_text(body: dict[str, Any]) -> None:
    body["data"]["sequence"] = "2"


def with_a_schema_of_another_version(body: dict[str, Any]) -> None:
    body["dataschema"] = events.dataschema("order.status_changed.v2")


def with_local_time(body: dict[str, Any]) -> None:
    body["time"] = "2024-05-02T16:03:07+02:00"


def with_a_time_that_is_no_time(body: dict[str, Any]) -> None:
    body["time"] = "yesterday"


def with_specversion_0_3(body: dict[str, Any]) -> None:
    body["specversion"] = "0.3"


@pytest.mark.parametrize(
    "breakage",
    [
        without_order_id,
        with_other_type,
        with_a_provider_that_is_no_vendor_name,
        with_a_sequence_as_text,
        with_a_schema_of_another_version,
        with_local_time,
        with_a_time_that_is_no_time,
        with_specversion_0_3,
    ],
)
def test_a_broken_event_is_rejected(breakage: typing.Callable[[dict[str, Any]], None]) -> None:
    body = wire(BY_TYPE[events.OrderStatusChanged.type])
    breakage(body)
    assert not validator(events.OrderStatusChanged.type).is_valid(body)


# Compatibility over time: dataschema, fields added later, required fields -----------------


@pytest.mark.parametrize("event", SAMPLES, ids=sample_id)
def test_every_event_names_its_schema_file_in_dataschema(event: events.OrderEvent) -> None:
    dataschema = wire(event)["dataschema"]
    path = DOCS / contract.resolve(dataschema)
    assert path.is_file(), f"{dataschema} names no file under docs/"
    assert path.relative_to(DOCS).parts[0] == schemas.SCHEMA_DIR
    assert json.loads(path.read_text())["$id"] == dataschema
    assert path.relative_to(DOCS).as_posix() == contract.schema_path(event.type)


def test_a_dataschema_of_another_contract_names_no_file() -> None:
    with pytest.raises(LookupError):
        contract.resolve("https://example.com/schemas/order.created/v1.json")


@pytest.mark.parametrize(
    ("event_type", "family", "major", "path"),
    [
        ("order.status_changed", "order.status_changed", 1, "schemas/order.status_changed/v1.json"),
        (
            "order.status_changed.v2",
            "order.status_changed",
            2,
            "schemas/order.status_changed/v2.json",
        ),
        ("order.line_item.added.v12", "order.line_item.added", 12, None),
        ("order.stuck", "order.stuck", 1, None),
    ],
)
def test_a_major_version_is_part_of_the_type_name(
    event_type: str, family: str, major: int, path: str | None
) -> None:
    assert events.schema_version(event_type) == (family, major)
    assert events.dataschema(event_type) == f"urn:order-watcher:schemas/{family}/v{major}.json"
    if path is not None:
        assert contract.schema_path(event_type) == path


def test_no_event_type_of_ours_is_named_as_a_later_major_version() -> None:
    assert {events.schema_version(event.type) for event in events.EVENT_TYPES} == {
        (event.type, 1) for event in events.EVENT_TYPES
    }


def closed_objects(node: Any, where: str = "") -> list[str]:
    """Where in a schema an object refuses fields it does not name."""
    if isinstance(node, list):
        return [found for i, item in enumerate(node) for found in closed_objects(item, where)]
    if not isinstance(node, dict):
        return []
    here = [where or "/"] if node.get("additionalProperties") is False else []
    return here + [
        found for key, value in node.items() for found in closed_objects(value, f"{where}/{key}")
    ]


@pytest.mark.parametrize("event", events.EVENT_TYPES, ids=lambda event: event.type)
def test_a_published_schema_closes_no_object(event: type[events.OrderEvent]) -> None:
    assert closed_objects(schema(event.type)) == []
    assert closed_objects(schemas.event_schema(event, strict=True)) != []


def with_extra_fields(body: dict[str, Any]) -> None:
    """What a later minor version may add: at the top, in data and in what data holds."""
    body["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    body["data"]["region"] = "emea"
    body["data"]["order"]["currency"] = "EUR"
    body["data"]["order"]["line_items"][0]["discount"] = {"percent": 5}
    for field in ("before", "after", "status"):
        if isinstance(body["data"].get(field), dict):
            body["data"][field]["label"] = "Completed"


@pytest.mark.parametrize("event", SAMPLES, ids=sample_id)
def test_an_event_with_fields_added_later_still_validates(event: events.OrderEvent) -> None:
    body = wire(event)
    with_extra_fields(body)
    errors = [error.message for error in validator(event.type).iter_errors(body)]
    assert errors == []
    assert not strict_validator(type(event)).is_valid(body)


def test_an_event_of_a_vendor_added_later_still_validates() -> None:
    body = wire(BY_TYPE[events.OrderCreated.type])
    body["data"]["provider"] = body["data"]["order"]["provider"] = "shopware"
    body["subject"] = "shopware/" + body["subject"].split("/", 1)[1]
    assert validator(events.OrderCreated.type).is_valid(body)
    assert not strict_validator(events.OrderCreated).is_valid(body)


def test_an_event_from_before_dataschema_still_validates() -> None:
    body = wire(BY_TYPE[events.OrderCreated.type])
    del body["dataschema"]
    assert validator(events.OrderCreated.type).is_valid(body)


def required_fields(event: events.OrderEvent) -> list[tuple[str, ...]]:
    """Every field the published schema requires: of the envelope and of `data`."""
    document = schema(event.type)
    data = document["$defs"][type(event).__name__]
    return [(name,) for name in document["required"]] + [
        ("data", name) for name in data["required"]
    ]


REQUIRED = [
    pytest.param(event, path, id=f"{sample_id(event)}-{'.'.join(path)}")
    for event in SAMPLES
    for path in required_fields(event)
]


@pytest.mark.parametrize(("event", "path"), REQUIRED)
def test_an_event_without_a_required_field_is_rejected(
    event: events.OrderEvent, path: tuple[str, ...]
) -> None:
    body = wire(event)
    holder = body
    for name in path[:-1]:
        holder = holder[name]
    del holder[path[-1]]
    assert not validator(event.type).is_valid(body)


def test_the_required_fields_include_the_identity_of_every_event() -> None:
    for event in SAMPLES:
        assert {("id",), ("type",), ("data", "order_id"), ("data", "sequence")} <= set(
            required_fields(event)
        )


# The AsyncAPI document states what the publisher does ------------------------------------


def test_asyncapi_names_the_broker_and_the_topic_exchange(asyncapi: dict[str, Any]) -> None:
    amqp = settings.AmqpSettings()
    channel = asyncapi["channels"][contract.CHANNEL]
    binding = channel["bindings"]["amqp"]
    assert asyncapi["asyncapi"] == "3.0.0"
    assert asyncapi["servers"]["broker"]["protocol"] == "amqp"
    assert asyncapi["defaultContentType"] == events.CONTENT_TYPE
    assert channel["address"] == "{provider}.{event}"
    assert set(channel["parameters"]) == {"provider", "event"}
    assert binding["is"] == "routingKey"
    assert binding["exchange"] == {
        "name": amqp.exchange,
        "type": "topic",
        "durable": True,
        "autoDelete": False,
        "vhost": "/",
    }


def test_asyncapi_names_the_alternate_exchange_and_unroutable_queue(
    asyncapi: dict[str, Any],
) -> None:
    amqp = settings.AmqpSettings()
    alternate = asyncapi["channels"][contract.CHANNEL]["x-alternate-exchange"]
    unroutable = asyncapi["channels"][contract.UNROUTABLE_CHANNEL]
    assert alternate["name"] == amqp.unroutable_exchange
    assert alternate["queue"] == amqp.unroutable_queue
    assert unroutable["address"] == amqp.unroutable_queue
    assert unroutable["bindings"]["amqp"]["is"] == "queue"
    assert unroutable["bindings"]["amqp"]["queue"]["name"] == amqp.unroutable_queue


def test_the_providers_are_those_a_source_may_name(asyncapi: dict[str, Any]) -> None:
    providers = list(vendors.NAMES)
    parameter = asyncapi["channels"][contract.CHANNEL]["parameters"]["provider"]
    assert parameter["enum"] == providers
    for event in events.EVENT_TYPES:
        published = schema(event.type)["$defs"][event.__name__]["properties"]["provider"]
        strict = schemas.event_schema(event, strict=True)["$defs"][event.__name__]
        assert published["examples"] == providers
        assert "enum" not in published, "a vendor added later must not fail old copies"
        assert strict["properties"]["provider"]["enum"] == providers


@pytest.mark.parametrize("event", events.EVENT_TYPES, ids=lambda event: event.type)
def test_each_message_carries_its_amqp_bindings(
    asyncapi: dict[str, Any], event: type[events.OrderEvent]
) -> None:
    message = asyncapi["components"]["messages"][event.__name__]
    operation = asyncapi["operations"][f"publish{event.__name__}"]
    assert message["contentType"] == events.CONTENT_TYPE
    assert message["bindings"]["amqp"]["messageType"] == event.type
    assert message["payload"]["schema"]["$ref"] == f"./{contract.schema_path(event.type)}"
    assert (DOCS / contract.schema_path(event.type)).is_file()
    assert operation["action"] == "send"
    assert operation["bindings"]["amqp"]["deliveryMode"] == 2
    assert operation["bindings"]["amqp"]["mandatory"] is True


@pytest.mark.parametrize("event", SAMPLES, ids=sample_id)
def test_the_documented_amqp_properties_are_the_published_ones(
    asyncapi: dict[str, Any], event: events.OrderEvent
) -> None:
    record = sync.record(event, now=NOW)
    sent = publisher._message(record)
    message = asyncapi["components"]["messages"][type(event).__name__]
    operation = asyncapi["operations"][f"publish{type(event).__name__}"]
    assert sent.content_type == message["contentType"]
    assert sent.type == message["bindings"]["amqp"]["messageType"]
    assert sent.delivery_mode == operation["bindings"]["amqp"]["deliveryMode"]
    assert sent.message_id == wire(event)["id"]


@pytest.mark.parametrize("provider", vendors.NAMES)
@pytest.mark.parametrize("event", SAMPLES, ids=sample_id)
def test_the_documented_routing_key_is_the_one_published(
    asyncapi: dict[str, Any], event: events.OrderEvent, provider: str
) -> None:
    event = event.model_copy(update={"provider": provider})
    template = asyncapi["components"]["messages"][type(event).__name__]["x-routing-key"]
    value = event.routing_value()
    assert ("{value}" in template) == (value is not None) == type(event).routed_by_value
    assert template.format(provider=provider, value=value) == events.routing_key(event)


def test_an_order_created_at_without_timezone_still_validates() -> None:
    naive = order(order_id="5123456791", created_at=datetime(2024, 5, 1, 9, 30))
    event = sync.reconcile([naive], {}, baseline=False, now=NOW).events[0]
    assert validator(event.type).is_valid(wire(event))
