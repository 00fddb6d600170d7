"""events: routing keys, the CloudEvents envelope, deterministic ids and encoding.

Events are built literally here (not through classify), so each case states exactly the
fields the wire contract is derived from. Ids of changes are pinned to their literal
values; order.stuck's id follows its episode (order, status, since), not the sequence.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from tests.orders import order
from watcher.core import events
from watcher.core.events import Value

DETECTED_AT = datetime(2024, 5, 2, 14, 3, 7, tzinfo=UTC)


def common(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "provider": "adobe_vip",
        "source": "adobe-prod",
        "customer_id": "9876543210",
        "order_id": "5123456789",
        "sequence": 3,
        "order": order().model_dump(mode="json"),
    }
    values.update(overrides)
    return values


def status_changed(after: str | None = "completed", **overrides: Any) -> events.OrderEvent:
    return events.OrderStatusChanged(
        before=Value(value="pending", raw="1002"),
        after=Value(value=after, raw="1000"),
        **common(**overrides),
    )


def quantity_changed(line_key: str = "1", **overrides: Any) -> events.OrderEvent:
    return events.LineItemQuantityChanged(
        line_key=line_key, before=10, after=12, **common(**overrides)
    )


def provisioning_changed(line_key: str | None = "1", **overrides: Any) -> events.OrderEvent:
    return events.ProvisioningChanged(
        line_key=line_key,
        before=Value(value="pending", raw="1002"),
        after=Value(value="provisioned", raw="1000"),
        subscription_id="a1b2c3",
        **common(**overrides),
    )


def payment_changed(after: str | None, **overrides: Any) -> events.OrderEvent:
    return events.PaymentChanged(
        before=Value(value=None, raw=None), after=Value(value=after, raw="X"), **common(**overrides)
    )


def order_stuck(
    since: datetime = datetime(2024, 5, 1, 9, 30, tzinfo=UTC),
    raw: str = "1002",
    **overrides: Any,
) -> events.OrderStuck:
    return events.OrderStuck(
        status=Value(value="pending", raw=raw),
        since=since,
        stuck_for_s=7230.0,
        threshold_s=7200.0,
        **common(**overrides),
    )


LINE = {"key": "2", "offer": "65322651CA01A12", "quantity": 1}

ROUTING: list[tuple[events.OrderEvent, str]] = [
    (events.OrderCreated(**common()), "adobe_vip.order.created"),
    (status_changed(), "adobe_vip.order.status_changed.completed"),
    (status_changed("failed"), "adobe_vip.order.status_changed.failed"),
    (status_changed(None), "adobe_vip.order.status_changed.unknown"),
    (events.LineItemAdded(line_key="2", line=LINE, **common()), "adobe_vip.order.line_item.added"),
    (
        events.LineItemRemoved(line_key="2", line=LINE, **common()),
        "adobe_vip.order.line_item.removed",
    ),
    (quantity_changed(), "adobe_vip.order.line_item.quantity_changed"),
    (
        events.LineItemStatusChanged(
            line_key="1",
            before=Value(value="pending", raw="1002"),
            after=Value(value="completed", raw="1000"),
            **common(),
        ),
        "adobe_vip.order.line_item.status_changed",
    ),
    (provisioning_changed(), "adobe_vip.order.provisioning_changed.provisioned"),
    (provisioning_changed(None), "adobe_vip.order.provisioning_changed.provisioned"),
    (payment_changed("paid"), "adobe_vip.order.payment_changed.paid"),
    (payment_changed(None), "adobe_vip.order.payment_changed.unknown"),
    (status_changed(provider="elastic_path"), "elastic_path.order.status_changed.completed"),
    (order_stuck(), "adobe_vip.order.stuck"),
    (order_stuck(provider="zuora"), "zuora.order.stuck"),
]


@pytest.mark.parametrize(("event", "expected"), ROUTING, ids=[expected for _, expected in ROUTING])
def test_routing_key(event: events.OrderEvent, expected: str) -> None:
    assert events.routing_key(event) == expected


def test_every_event_type_is_listed_once_with_its_contract_name() -> None:
    assert [kind.type for kind in events.EVENT_TYPES] == [
        "order.created",
        "order.status_changed",
        "order.line_item.added",
        "order.line_item.removed",
        "order.line_item.quantity_changed",
        "order.line_item.status_changed",
        "order.provisioning_changed",
        "order.payment_changed",
        "order.stuck",
    ]


def test_envelope() -> None:
    event = status_changed()
    envelope = events.envelope(event, detected_at=DETECTED_AT)
    assert envelope == {
        "specversion": "1.0",
        "id": events.event_id(event),
        "source": "order-watcher/adobe-prod",
        "type": "order.status_changed",
        "subject": "adobe_vip/9876543210/5123456789",
        "time": "2024-05-02T14:03:07Z",
        "datacontenttype": "application/json",
        "dataschema": "urn:order-watcher:schemas/order.status_changed/v1.json",
        "data": {
            "provider": "adobe_vip",
            "source": "adobe-prod",
            "customer_id": "9876543210",
            "order_id": "5123456789",
            "sequence": 3,
            "order": order().model_dump(mode="json"),
            "before": {"value": "pending", "raw": "1002"},
            "after": {"value": "completed", "raw": "1000"},
        },
    }


@pytest.mark.parametrize("kind", events.EVENT_TYPES, ids=lambda kind: kind.type)
def test_every_envelope_names_the_first_major_version_of_its_schema(
    kind: type[events.OrderEvent],
) -> None:
    assert events.dataschema(kind.type) == f"urn:order-watcher:schemas/{kind.type}/v1.json"


def test_envelope_data_of_a_line_event_names_the_line() -> None:
    data = events.envelope(provisioning_changed(), detected_at=DETECTED_AT)["data"]
    assert data["line_key"] == "1"
    assert data["subscription_id"] == "a1b2c3"
    assert data["after"] == {"value": "provisioned", "raw": "1000"}
    assert data["order"]["order_id"] == "5123456789"


@pytest.mark.parametrize(
    ("detected_at", "expected"),
    [
        (DETECTED_AT, "2024-05-02T14:03:07Z"),
        (
            datetime(2024, 5, 2, 16, 3, 7, tzinfo=timezone(timedelta(hours=2))),
            "2024-05-02T14:03:07Z",
        ),
        (datetime(2024, 5, 2, 14, 3, 7, 250000, tzinfo=UTC), "2024-05-02T14:03:07.250000Z"),
    ],
    ids=["utc", "converted to utc", "fractional seconds"],
)
def test_time_is_rfc3339_in_utc(detected_at: datetime, expected: str) -> None:
    assert events.envelope(status_changed(), detected_at=detected_at)["time"] == expected


def test_ids_are_deterministic() -> None:
    assert events.event_id(status_changed()) == events.event_id(status_changed())
    assert events.event_id(quantity_changed()) == events.event_id(quantity_changed())
    first = events.envelope(status_changed(), detected_at=DETECTED_AT)["id"]
    later = events.envelope(status_changed(), detected_at=DETECTED_AT + timedelta(hours=1))["id"]
    assert first == later


def test_an_id_does_not_depend_on_the_values_or_the_snapshot() -> None:
    # A sync repeated after a crash sees the same change of the same snapshot sequence.
    retried = status_changed(order=order(reference="other").model_dump(mode="json"))
    assert events.event_id(retried) == events.event_id(status_changed())


@pytest.mark.parametrize(
    "other",
    [
        status_changed(sequence=4),
        quantity_changed(),
        status_changed(source="adobe-test"),
        status_changed(order_id="5123456790"),
        events.PaymentChanged(
            before=Value(value="pending", raw="1002"),
            after=Value(value="completed", raw="1000"),
            **common(),
        ),
    ],
    ids=["sequence", "type", "source", "order", "type with the same values"],
)
def test_ids_differ_when_the_change_differs(other: events.OrderEvent) -> None:
    assert events.event_id(other) != events.event_id(status_changed())


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (quantity_changed("1"), quantity_changed("2")),
        (provisioning_changed("1"), provisioning_changed(None)),
        (quantity_changed("1", sequence=1), quantity_changed("1", sequence=2)),
        (quantity_changed("1", source="a"), quantity_changed("1", source="b")),
    ],
    ids=["line key", "line and order level", "sequence", "source"],
)
def test_ids_of_line_events_differ_when_the_change_differs(
    one: events.OrderEvent, other: events.OrderEvent
) -> None:
    assert events.event_id(one) != events.event_id(other)


def test_ids_are_uuids() -> None:
    identifier = events.event_id(status_changed())
    assert str(uuid.UUID(identifier)) == identifier


@pytest.mark.parametrize("event", [event for event, _ in ROUTING], ids=[key for _, key in ROUTING])
def test_encode_round_trips_through_json(event: events.OrderEvent) -> None:
    body = events.encode(event, detected_at=DETECTED_AT)
    assert isinstance(body, bytes)
    decoded = orjson.loads(body)
    assert decoded == events.envelope(event, detected_at=DETECTED_AT)
    assert type(event).model_validate(decoded["data"]) == event


def test_events_are_immutable_and_reject_unknown_fields() -> None:
    event = status_changed()
    with pytest.raises(ValueError, match="frozen"):
        event.sequence = 4  # type: ignore[misc]
    with pytest.raises(ValueError, match="extra"):
        events.OrderCreated.model_validate({**common(), "colour": "red"})


def test_ids_of_changes_are_pinned() -> None:
    assert events.event_id(status_changed()) == "79736d1b-9603-5789-b76c-58d0785a62bc"
    assert events.event_id(quantity_changed()) == "f07523b8-0bf1-5e7f-850f-f20a29419a06"


def test_envelope_of_order_stuck() -> None:
    event = order_stuck()
    envelope = events.envelope(event, detected_at=DETECTED_AT)
    assert envelope["id"] == events.event_id(event)
    assert envelope["type"] == "order.stuck"
    assert envelope["subject"] == "adobe_vip/9876543210/5123456789"
    assert envelope["data"] == {
        **common(),
        "status": {"value": "pending", "raw": "1002"},
        "since": "2024-05-01T09:30:00Z",
        "stuck_for_s": 7230.0,
        "threshold_s": 7200.0,
    }


def test_order_stuck_since_is_kept_in_utc_and_needs_a_timezone() -> None:
    local = datetime(2024, 5, 1, 11, 30, tzinfo=timezone(timedelta(hours=2)))
    assert order_stuck(since=local).since == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone"):
        order_stuck(since=datetime(2024, 5, 1, 9, 30))


@pytest.mark.parametrize(
    "same",
    [
        order_stuck(sequence=7),
        order_stuck(order=order(reference="other").model_dump(mode="json")),
        order_stuck(customer_id="other"),
        order_stuck(since=datetime(2024, 5, 1, 11, 30, tzinfo=timezone(timedelta(hours=2)))),
        order_stuck().model_copy(update={"stuck_for_s": 9000.0}),
    ],
    ids=["sequence", "snapshot", "customer", "since in another timezone", "duration"],
)
def test_an_episode_has_one_id(same: events.OrderEvent) -> None:
    assert events.event_id(same) == events.event_id(order_stuck())


@pytest.mark.parametrize(
    "other",
    [
        order_stuck(since=datetime(2024, 5, 1, 9, 30, 1, tzinfo=UTC)),
        order_stuck(raw="1003"),
        order_stuck(order_id="5123456790"),
        order_stuck(source="adobe-test"),
    ],
    ids=["since", "status", "order", "source"],
)
def test_another_episode_has_another_id(other: events.OrderEvent) -> None:
    assert events.event_id(other) != events.event_id(order_stuck())
