"""How the simulated Quickstart API lists and shows orders: filters, cursors, expansion.

Listing (`GET /v2/orders`) keeps the orders that pass every `filter[]` clause
(`field.OP:value`, clauses ANDed; account_id, order_number and state take EQ/NE/IN,
created_time and updated_time take EQ/GT/GE/LT/LE with ISO 8601 values), sorts them most
recently updated first (updated_time, then id, both descending) and serves `page_size`
(1..99, default 30) of them. `next_page` is a keyset cursor: base64 JSON naming the sort
fields and the last order's values, as in the sample cursor of Zuora's document, so an
order updated while a client pages moves ahead of the cursor, as on the real API.

`expand[]` decides what a reply holds: `line_items`, `subscriptions`,
`subscriptions.subscription_plans`, `subscriptions.subscription_plans.subscription_items`
(naming a nested path expands its parents too). Lists are shown in the document's
`{data, next_page}` shape, or as bare arrays (Zuora's published samples) when the world's
`list_shape` is "array". Expanded line items come `nested_page_size` at a time; their
`next_page` is continued with `GET /v2/orders/{order}?expand[]=line_items&cursor=...`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from watcher.simulator.zuora.orders import invalid

ListShape = Literal["object", "array"]
DEFAULT_PAGE_SIZE = 30
MAX_PAGE_SIZE = 99
_TEXT_FIELDS = frozenset({"account_id", "order_number", "state", "id"})
_TIME_FIELDS = frozenset({"created_time", "updated_time"})
_TEXT_OPS = frozenset({"EQ", "NE", "IN"})
_TIME_OPS = frozenset({"EQ", "GT", "GE", "LT", "LE"})
_SUBSCRIPTION_PLANS = "subscriptions.subscription_plans"
_SUBSCRIPTION_ITEMS = "subscriptions.subscription_plans.subscription_items"


@dataclass(frozen=True, slots=True)
class View:
    """What one reply shows of an order."""

    expand: frozenset[str]
    shape: ListShape
    nested_page_size: int


@dataclass(frozen=True, slots=True)
class Clause:
    field: str
    op: str
    value: str

    def accepts(self, order: Mapping[str, Any]) -> bool:
        if self.field in _TIME_FIELDS:
            return _compare(_parse_time(order[self.field]), self.op, _parse_time(self.value))
        actual = str(order.get(self.field, ""))
        if self.op == "IN":
            return actual in self.value.strip("[]").split(",")
        return (actual == self.value) == (self.op == "EQ")


def expansions(values: Iterable[str]) -> frozenset[str]:
    """The expand[] values with every parent of a nested path added."""
    found: set[str] = set()
    for value in values:
        parts = value.split(".")
        found.update(".".join(parts[: n + 1]) for n in range(len(parts)))
    return frozenset(found)


def clauses(values: Iterable[str]) -> list[Clause]:
    """The filter[] clauses, or a 400 invalid_parameter naming the one that is wrong."""
    return [_clause(value) for value in values]


def _clause(text: str) -> Clause:
    head, sep, value = text.partition(":")
    field, _, op = head.rpartition(".")
    allowed = _TIME_OPS if field in _TIME_FIELDS else _TEXT_OPS if field in _TEXT_FIELDS else None
    if not sep or allowed is None or op not in allowed:
        raise invalid(f"unsupported filter {text!r}", parameter="filter[]")
    if field in _TIME_FIELDS:
        _parse_time(value)
    return Clause(field, op, value)


def page_size(
    value: str | None, *, default: int = DEFAULT_PAGE_SIZE, page_limit: int | None = None
) -> int:
    """The page size asked for, cut to the tenant's `page_limit`; 400 outside 1..99."""
    if value is None:
        return min(default, page_limit or default)
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE_SIZE:
        raise invalid("page_size must be between 1 and 99", parameter="page_size")
    return min(int(value), page_limit or MAX_PAGE_SIZE)


def list_page(
    orders: Iterable[dict[str, Any]],
    *,
    where: list[Clause],
    size: int,
    cursor: str | None,
    view: View,
) -> dict[str, Any]:
    """One page of `GET /v2/orders`."""
    matches = sorted(
        (order for order in orders if all(clause.accepts(order) for clause in where)),
        key=_sort_key,
        reverse=True,
    )
    if cursor is not None:
        after = _decode_list_cursor(cursor)
        matches = [order for order in matches if _sort_key(order) < after]
    page, rest = matches[:size], matches[size:]
    return {
        "next_page": _encode_list_cursor(page[-1]) if rest else None,
        "data": [render(order, view) for order in page],
    }


def render(order: Mapping[str, Any], view: View, *, line_offset: int = 0) -> dict[str, Any]:
    """The order as a reply shows it under `view`, its lines from `line_offset`."""
    shown = {
        key: value for key, value in order.items() if key not in ("line_items", "subscriptions")
    }
    if "line_items" in view.expand:
        lines = order["line_items"]
        if view.shape == "array":
            shown["line_items"] = list(lines)
        else:
            end = line_offset + view.nested_page_size
            more = end < len(lines)
            shown["line_items"] = {
                "next_page": _encode_line_cursor(order["id"], end) if more else None,
                "data": lines[line_offset:end],
            }
    if "subscriptions" in view.expand:
        shown["subscriptions"] = [_subscription(sub, view) for sub in order["subscriptions"]]
    return shown


def line_offset(cursor: str, *, order_id: str) -> int:
    """Where a line-items cursor of order `order_id` continues; 400 when it is not one."""
    decoded = _decode(cursor)
    if not isinstance(decoded, dict) or decoded.get("id") != order_id:
        raise invalid("the cursor does not belong to this order", parameter="cursor")
    offset = decoded.get("line_items")
    if not isinstance(offset, int) or offset < 0:
        raise invalid("invalid cursor", parameter="cursor")
    return offset


def _subscription(sub: Mapping[str, Any], view: View) -> dict[str, Any]:
    shown = {key: value for key, value in sub.items() if key != "subscription_plans"}
    if _SUBSCRIPTION_PLANS in view.expand:
        plans = [_plan(plan, view) for plan in sub["subscription_plans"]]
        shown["subscription_plans"] = _listed(plans, view)
    return shown


def _plan(plan: Mapping[str, Any], view: View) -> dict[str, Any]:
    shown = {key: value for key, value in plan.items() if key != "subscription_items"}
    if _SUBSCRIPTION_ITEMS in view.expand:
        shown["subscription_items"] = _listed(list(plan["subscription_items"]), view)
    return shown


def _listed(values: list[Any], view: View) -> Any:
    return values if view.shape == "array" else {"next_page": None, "data": values}


def _sort_key(order: Mapping[str, Any]) -> tuple[datetime, str]:
    return (_parse_time(order["updated_time"]), str(order["id"]))


def _encode_list_cursor(order: Mapping[str, Any]) -> str:
    return _encode(
        [
            {"orderBy": {"field": "UpdatedDate", "order": "DESC"}, "value": order["updated_time"]},
            {"orderBy": {"field": "Id", "order": "DESC"}, "value": order["id"]},
        ]
    )


def _decode_list_cursor(cursor: str) -> tuple[datetime, str]:
    decoded = _decode(cursor)
    try:
        updated, order_id = (part["value"] for part in decoded)
        return (_parse_time(updated), str(order_id))
    except (TypeError, KeyError, ValueError) as exc:
        raise invalid("invalid cursor", parameter="cursor") from exc


def _encode_line_cursor(order_id: str, offset: int) -> str:
    return _encode({"id": order_id, "line_items": offset})


def _encode(value: Any) -> str:
    return base64.b64encode(orjson.dumps(value)).decode("ascii")


def _decode(cursor: str) -> Any:
    try:
        return orjson.loads(base64.b64decode(cursor, validate=True))
    except (binascii.Error, orjson.JSONDecodeError, ValueError) as exc:
        raise invalid("invalid cursor", parameter="cursor") from exc


def _parse_time(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise invalid(f"{value!r} is not an ISO 8601 time", parameter="filter[]") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _compare(actual: datetime, op: str, wanted: datetime) -> bool:
    return {
        "EQ": actual == wanted,
        "GT": actual > wanted,
        "GE": actual >= wanted,
        "LT": actual < wanted,
        "LE": actual <= wanted,
    }[op]
