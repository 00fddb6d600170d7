"""Admin edits of simulated Elastic Path orders: create bodies and patches, validated.

Admin bodies use the API's own field names where it has them:

    create: {id?, customer_id?, account_id?, status?, payment?, shipping?, external_ref?,
             order_number?, currency?, created_at?, items: [{id?, sku, product_id?, name?,
             quantity, unit_amount?}]}
    patch:  {status?, payment?, shipping?, external_ref?, order_number?,
             items: [{id, quantity}], add_items: [...], remove_items: [id, ...]}

Everything is validated before anything changes, so a body the simulator cannot apply
raises `ApiError` (400) and leaves the order as it was. Every applied patch moves the
order's `updated_at` forward.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from watcher.simulator.elastic_path.orders import (
    NewId,
    StoredItem,
    StoredOrder,
    invalid,
    parse_time,
)

ORDER_FIELDS = frozenset({"status", "payment", "shipping", "external_ref", "order_number"})
_CREATE_FIELDS = ORDER_FIELDS | {"id", "customer_id", "account_id", "currency", "created_at"}
_CREATE_FIELDS |= {"items"}
_PATCH_FIELDS = ORDER_FIELDS | {"items", "add_items", "remove_items"}
_ITEM_FIELDS = frozenset({"id", "sku", "product_id", "name", "quantity", "unit_amount"})


def build(partial: object, *, new_id: NewId, now: datetime) -> StoredOrder:
    """A new order from an admin create body."""
    body = _object(partial, allowed=_CREATE_FIELDS, what="order")
    created_at = _time(body.get("created_at"), default=now)
    order = StoredOrder(
        id=_text(body, "id") or new_id(), created_at=created_at, updated_at=created_at
    )
    order.customer_id = _text(body, "customer_id")
    order.account_id = _text(body, "account_id")
    order.currency = _text(body, "currency") or "USD"
    _apply_fields(order, body)
    order.items = [_item(spec, new_id=new_id, now=created_at) for spec in _list(body, "items")]
    return order


def patch(order: StoredOrder, patch_body: object, *, new_id: NewId, now: datetime) -> None:
    """Apply an admin patch; validate everything first so a bad patch changes nothing."""
    body = _object(patch_body, allowed=_PATCH_FIELDS, what="patch")
    quantities = {_item_id(spec): _quantity(spec) for spec in _list(body, "items")}
    removed = {str(item_id) for item_id in _list(body, "remove_items")}
    known = {item.id for item in order.items}
    if unknown := sorted((quantities.keys() | removed) - known):
        raise invalid(f"order {order.id} has no items {', '.join(unknown)}")
    added = [_item(spec, new_id=new_id, now=now) for spec in _list(body, "add_items")]
    _apply_fields(order, body)
    for item in order.items:
        if item.id in quantities and item.quantity != quantities[item.id]:
            item.quantity = quantities[item.id]
            item.updated_at = now
    order.items = [item for item in order.items if item.id not in removed] + added
    order.touch(now)


def _apply_fields(order: StoredOrder, body: Mapping[str, Any]) -> None:
    for name in sorted(ORDER_FIELDS & body.keys()):
        value = _text(body, name)
        if value is None and name in {"status", "payment", "shipping"}:
            raise invalid(f"{name} must be a string")
        setattr(order, name, value)


def _item(spec: object, *, new_id: NewId, now: datetime) -> StoredItem:
    body = _object(spec, allowed=_ITEM_FIELDS, what="item")
    sku = _text(body, "sku") or ""
    unit_amount = body.get("unit_amount", 1000)
    if isinstance(unit_amount, bool) or not isinstance(unit_amount, int):
        raise invalid("unit_amount must be an integer of minor units")
    return StoredItem(
        id=_text(body, "id") or new_id(),
        sku=sku,
        product_id=_text(body, "product_id") or new_id(),
        name=_text(body, "name") or sku or "Product",
        quantity=_quantity(body),
        unit_amount=unit_amount,
        created_at=now,
        updated_at=now,
    )


def _item_id(spec: object) -> str:
    body = _object(spec, allowed=frozenset({"id", "quantity"}), what="item quantity")
    item_id = _text(body, "id")
    if item_id is None:
        raise invalid("an item quantity change needs the item's id")
    return item_id


def _quantity(spec: object) -> int:
    quantity = spec.get("quantity", 1) if isinstance(spec, Mapping) else None
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise invalid(f"quantity must be a positive integer, not {quantity!r}")
    return quantity


def _object(value: object, *, allowed: frozenset[str], what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise invalid(f"the {what} must be a JSON object")
    if unknown := sorted(value.keys() - allowed):
        raise invalid(f"unknown {what} fields: {', '.join(unknown)}")
    return value


def _list(body: Mapping[str, Any], name: str) -> list[Any]:
    value = body.get(name, [])
    if not isinstance(value, list):
        raise invalid(f"{name} must be a list")
    return value


def _text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid(f"{name} must be a string")
    return value


def _time(value: object, *, default: datetime) -> datetime:
    if value is None:
        return default
    try:
        return parse_time(str(value))
    except ValueError as exc:
        raise invalid(f"{value!r} is not a UTC timestamp") from exc
