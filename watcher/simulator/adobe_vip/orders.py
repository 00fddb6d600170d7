"""Adobe VIP order resources: errors, building orders from partial ones, and admin patches.

Orders are kept as the JSON-ready dicts the Commerce Partner API returns, with the fields in
the order of Adobe's samples, so serving one is a plain `orjson.dumps`. Everything here is
pure: no clock, no randomness, no I/O; callers pass ids and times in.

`build` fills a partial order (what a test or a scenario cares about) with Adobe's defaults.
`patched` returns a new order with an admin patch applied; the patch is validated in full
before anything is kept, so a rejected patch changes nothing. Patches are literal: setting
the order status does not touch the lines (`scenario.advance` does the cascades).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any

from watcher.simulator import admin

DEFAULT_OFFER = "65304578CA01A12"
DEFAULT_STATUS = "1002"
IMMUTABLE_FIELDS = frozenset({"orderId", "customerId", "creationDate", "links"})
LINE_OPERATIONS = ("removeLines", "lineItems", "addLines")
_LINE_TEXT_FIELDS = ("offerId", "status", "subscriptionId", "currencyCode")
_ORDER_TEXT_FIELDS = ("status", "externalReferenceId", "orderType", "source", "currencyCode")


class ApiError(admin.VendorError):
    """A reply in Adobe's error shape: HTTP `status`, CPAPI `code` and a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "additionalDetails": []}


def invalid(message: str) -> ApiError:
    """An admin request the simulator cannot apply."""
    return ApiError(400, "invalid-request", message)


_CHECKS = admin.Checks(invalid)
_text, _list, _mapping = _CHECKS.text, _CHECKS.items, _CHECKS.mapping


def format_time(moment: datetime) -> str:
    """Adobe's timestamp form: UTC, whole seconds, trailing Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    """`YYYY-MM-DD` (midnight UTC) or ISO-8601 with Z; ValueError otherwise."""
    if "T" not in value:
        return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
    if not value.endswith("Z"):
        raise ValueError(f"{value!r} is not in UTC (Z)")
    return datetime.fromisoformat(value).astimezone(UTC)


def self_link(uri: str) -> dict[str, Any]:
    return {"uri": uri, "method": "GET", "headers": []}


def order_path(customer_id: str, order_id: str) -> str:
    return f"/v3/customers/{customer_id}/orders/{order_id}"


def build(
    partial: Mapping[str, Any], *, customer_id: str, order_id: str, created_at: datetime
) -> dict[str, Any]:
    """A full Order from `partial`; fields it leaves out take Adobe's usual values."""
    status = _text(partial.get("status", DEFAULT_STATUS), "status")
    order: dict[str, Any] = {
        "externalReferenceId": "",
        "orderId": order_id,
        "customerId": customer_id,
        "orderType": "NEW",
        "referenceOrderId": "",
        "currencyCode": "USD",
        "creationDate": format_time(created_at),
        "status": status,
        "source": "API",
    }
    order.update(_order_fields(partial))
    order["lineItems"] = _lines(_list(partial.get("lineItems", [{}]), "lineItems"), status)
    order["links"] = {"self": self_link(order_path(customer_id, order_id))}
    return order


def build_line(partial: Mapping[str, Any], *, number: int, status: str) -> dict[str, Any]:
    """A full line item numbered `number`, its status defaulting to the order's."""
    line: dict[str, Any] = {
        "extLineItemNumber": number,
        "offerId": DEFAULT_OFFER,
        "quantity": 1,
        "subscriptionId": "",
        "status": status,
        "currencyCode": "USD",
    }
    line.update(_line_fields(partial))
    return line


def patched(order: Mapping[str, Any], patch: object) -> dict[str, Any]:
    """`order` with an admin patch applied: removeLines, then lineItems, then addLines."""
    if not isinstance(patch, Mapping):
        raise invalid("the patch must be a JSON object")
    if fixed := sorted(IMMUTABLE_FIELDS & patch.keys()):
        raise invalid(f"cannot change {', '.join(fixed)}")
    new = dict(order)
    new.update(_order_fields({k: v for k, v in patch.items() if k not in LINE_OPERATIONS}))
    lines = {line["extLineItemNumber"]: dict(line) for line in order["lineItems"]}
    for number in _list(patch.get("removeLines", []), "removeLines"):
        _known(lines, number)
        del lines[number]
    for update in _list(patch.get("lineItems", []), "lineItems"):
        _known(lines, _mapping(update).get("extLineItemNumber")).update(_line_fields(update))
    for addition in _list(patch.get("addLines", []), "addLines"):
        _add_line(lines, _mapping(addition), status=new["status"])
    new["lineItems"] = list(lines.values())
    return new


def _lines(partials: list[Any], status: str) -> list[dict[str, Any]]:
    lines: dict[int, dict[str, Any]] = {}
    for partial in partials:
        _add_line(lines, _mapping(partial), status=status)
    return list(lines.values())


def _add_line(lines: dict[int, dict[str, Any]], partial: Mapping[str, Any], *, status: str) -> None:
    number = partial.get("extLineItemNumber", max(lines, default=0) + 1)
    if number in lines:
        raise invalid(f"line {number} already exists")
    line = build_line(partial, number=_number(number), status=status)
    lines[line["extLineItemNumber"]] = line


def _known(lines: dict[int, dict[str, Any]], number: object) -> dict[str, Any]:
    if not isinstance(number, int) or number not in lines:
        raise invalid(f"no line {number!r} in this order")
    return lines[number]


def _order_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in fields.items() if k not in IMMUTABLE_FIELDS and k != "lineItems"}
    _CHECKS.texts(kept, _ORDER_TEXT_FIELDS)
    return kept


def _line_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in fields.items() if k != "extLineItemNumber"}
    _CHECKS.texts(kept, _LINE_TEXT_FIELDS)
    if "quantity" in kept:
        _quantity(kept["quantity"])
    return kept


def _number(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 999_999:
        raise invalid(f"extLineItemNumber must be an integer 0..999999, not {value!r}")
    return value


def _quantity(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid(f"quantity must be a non-negative integer, not {value!r}")
    return value
