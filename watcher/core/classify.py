"""Turn low-level diffs of two essences into the closed vocabulary of event types.

The mapping, by diff path:

    status, status_raw                        -> order.status_changed (one per order)
    payment, payment_raw                      -> order.payment_changed
    fulfilment, fulfilment_raw                -> order.provisioning_changed (line_key None)
    lines.<key> added / removed               -> order.line_item.added / .removed
    lines.<key>.quantity                      -> order.line_item.quantity_changed
    lines.<key>.status, .status_raw           -> order.line_item.status_changed (one per line)
    lines.<key>.provisioning(_raw),
    lines.<key>.subscription_id               -> order.provisioning_changed (one per line)

An order seen for the first time gives order.created, unless it belongs to the source's
baseline sync. Events come out in path order, so the same change always yields the same
list. Everything is pure: the caller passes the detection time, nothing reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from watcher.core import diff, essence, events
from watcher.core.models import Order

Kind = tuple[str, str | None]  # (event type, line key)
_ORDER_FIELDS: dict[str, str] = {
    "status": events.OrderStatusChanged.type,
    "status_raw": events.OrderStatusChanged.type,
    "payment": events.PaymentChanged.type,
    "payment_raw": events.PaymentChanged.type,
    "fulfilment": events.ProvisioningChanged.type,
    "fulfilment_raw": events.ProvisioningChanged.type,
}
_LINE_FIELDS: dict[str, str] = {
    "quantity": events.LineItemQuantityChanged.type,
    "status": events.LineItemStatusChanged.type,
    "status_raw": events.LineItemStatusChanged.type,
    "provisioning": events.ProvisioningChanged.type,
    "provisioning_raw": events.ProvisioningChanged.type,
    "subscription_id": events.ProvisioningChanged.type,
}


def kinds(diffs: tuple[diff.Diff, ...]) -> list[Kind]:
    """The distinct (event type, line key) pairs the diffs amount to, in path order."""
    found: dict[Kind, None] = {}
    for record in diffs:
        found.setdefault(_kind_of(record), None)
    return list(found)


def _kind_of(record: diff.Diff) -> Kind:
    path = record.path
    if path[0] != "lines":
        return _ORDER_FIELDS[path[0]], None
    if len(path) == 2:
        added = record.op == "add"
        return (events.LineItemAdded.type if added else events.LineItemRemoved.type), path[1]
    return _LINE_FIELDS[path[2]], path[1]


def changes(
    before: Order | None, after: Order, *, sequence: int, baseline: bool
) -> list[events.OrderEvent]:
    """The events that moving from `before` to `after` raises, numbered `sequence`."""
    if before is None:
        found: list[Kind] = [] if baseline else [(events.OrderCreated.type, None)]
    elif before == after:
        return []
    else:
        found = kinds(diff.compute(essence.of(before), essence.of(after)))
    if not found:
        return []
    common = {
        "provider": after.provider,
        "source": after.source,
        "customer_id": after.customer_id,
        "order_id": after.order_id,
        "sequence": sequence,
        "order": after.model_dump(mode="json"),
    }
    if before is None:
        return [events.OrderCreated(**common)]
    return [_BUILDERS[kind](before, after, line_key, common) for kind, line_key in found]


def _value(value: Any, raw: Any) -> events.Value:
    return events.Value(value=None if value is None else str(value), raw=raw)


def _field(order: Order, name: str) -> events.Value:
    """An order-level value and its raw twin (`status` and `status_raw`, ...)."""
    return _value(getattr(order, name), getattr(order, f"{name}_raw"))


def _status(
    before: Order, after: Order, _: str | None, common: dict[str, Any]
) -> events.OrderEvent:
    return events.OrderStatusChanged(
        before=_field(before, "status"), after=_field(after, "status"), **common
    )


def _payment(
    before: Order, after: Order, _: str | None, common: dict[str, Any]
) -> events.OrderEvent:
    return events.PaymentChanged(
        before=_field(before, "payment"), after=_field(after, "payment"), **common
    )


def _provisioning(
    before: Order, after: Order, key: str | None, common: dict[str, Any]
) -> events.OrderEvent:
    if key is None:
        return events.ProvisioningChanged(
            line_key=None,
            before=_field(before, "fulfilment"),
            after=_field(after, "fulfilment"),
            **common,
        )
    old, new = _lines(before, after, key)
    return events.ProvisioningChanged(
        line_key=key,
        before=_value(old["provisioning"], old["provisioning_raw"]),
        after=_value(new["provisioning"], new["provisioning_raw"]),
        subscription_id=new["subscription_id"],
        **common,
    )


def _added(_: Order, after: Order, key: str | None, common: dict[str, Any]) -> events.OrderEvent:
    assert key is not None
    return events.LineItemAdded(line_key=key, line=_line_dump(after, key), **common)


def _removed(before: Order, _: Order, key: str | None, common: dict[str, Any]) -> events.OrderEvent:
    assert key is not None
    return events.LineItemRemoved(line_key=key, line=_line_dump(before, key), **common)


def _quantity(
    before: Order, after: Order, key: str | None, common: dict[str, Any]
) -> events.OrderEvent:
    old, new = _lines(before, after, key)
    return events.LineItemQuantityChanged(
        line_key=key, before=old["quantity"], after=new["quantity"], **common
    )


def _line_status(
    before: Order, after: Order, key: str | None, common: dict[str, Any]
) -> events.OrderEvent:
    old, new = _lines(before, after, key)
    return events.LineItemStatusChanged(
        line_key=key,
        before=_value(old["status"], old["status_raw"]),
        after=_value(new["status"], new["status_raw"]),
        **common,
    )


def _lines(before: Order, after: Order, key: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    assert key is not None
    return _line_dump(before, key), _line_dump(after, key)


def _line_dump(order: Order, key: str) -> dict[str, Any]:
    item = order.line(key)
    assert item is not None, f"line {key} is not in order {order.order_id}"
    return item.model_dump(mode="json")


_Builder = Callable[[Order, Order, str | None, dict[str, Any]], events.OrderEvent]
_BUILDERS: dict[str, _Builder] = {
    events.OrderStatusChanged.type: _status,
    events.PaymentChanged.type: _payment,
    events.ProvisioningChanged.type: _provisioning,
    events.LineItemAdded.type: _added,
    events.LineItemRemoved.type: _removed,
    events.LineItemQuantityChanged.type: _quantity,
    events.LineItemStatusChanged.type: _line_status,
}
