"""Partner Center order resources: errors, orders built from partial ones, admin patches.

Orders are kept as the JSON-ready dicts the REST API returns (Order and OrderLineItem, field
names and order as in Microsoft's samples), without the parts that depend on the moment they
are served: `links.provisioningStatus` appears only once a line has a provisioning status
("when populated"), so the state adds the links when it serves an order. Each line's
provisioning status (fulfilled, unfulfilled, prefulfillmentPending) is kept apart from the
order, in `Provisioning`, because the vendor serves it from its own endpoint.

Everything here is pure: callers pass ids and times in. A patch is validated in full before
anything is kept, so a rejected patch changes nothing. Patches are literal: setting the
order's status does not touch lines or provisioning (the scenario does the cascades).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from watcher.simulator import admin

DEFAULT_OFFER = "CFQ7TTC0LH18:0001:CFQ7TTC0K5DR"
DEFAULT_NAME = "Microsoft 365 Business Basic"
STATUSES = frozenset({"pending", "completed", "cancelled", "unknown"})
PROVISIONING_STATUSES = frozenset({"fulfilled", "unfulfilled", "prefulfillmentPending"})
DEFAULT_PROVISIONING = {
    "pending": "prefulfillmentPending",
    "completed": "fulfilled",
    "cancelled": "unfulfilled",
}
IMMUTABLE_FIELDS = frozenset({"id", "referenceCustomerId", "creationDate", "links", "attributes"})
_ORDER_TEXT_FIELDS = ("alternateId", "billingCycle", "transactionType", "currencyCode")
_LINE_TEXT_FIELDS = ("offerId", "friendlyName", "termDuration", "transactionType")
Provisioning = dict[int, str]


class ApiError(admin.VendorError):
    """A reply in Partner Center's error shape: HTTP `status`, its `code` and a description."""

    def __init__(self, status: int, code: int | str, description: str) -> None:
        super().__init__(f"{status} {code}: {description}")
        self.status = status
        self.code = code
        self.description = description

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "description": self.description,
            "data": [],
            "source": "PartnerFD",
        }


def error_for(status: int) -> ApiError:
    """The error an injected `status` stands for."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return ApiError(status, status, phrase)


def invalid(message: str) -> ApiError:
    """An admin request the simulator cannot apply."""
    return ApiError(400, "invalid-request", message)


_CHECKS = admin.Checks(invalid)
_text, _list, _mapping = _CHECKS.text, _CHECKS.items, _CHECKS.mapping


def format_time(moment: datetime) -> str:
    """Partner Center's timestamp form: UTC with seven fractional digits and a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def parse_time(value: object) -> datetime:
    if not isinstance(value, str) or not value.endswith("Z"):
        raise invalid(f"creationDate {value!r} is not a UTC timestamp ending in Z")
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except ValueError as exc:
        raise invalid(f"creationDate {value!r} is not a timestamp") from exc


def link(uri: str) -> dict[str, Any]:
    return {"uri": uri, "method": "GET", "headers": []}


def order_path(customer_id: str, order_id: str) -> str:
    """A link path as Partner Center writes it: relative to /v1."""
    return f"/customers/{customer_id}/orders/{order_id}"


def build(
    partial: Mapping[str, Any],
    *,
    customer_id: str,
    order_id: str,
    alternate_id: str,
    created_at: datetime,
) -> tuple[dict[str, Any], Provisioning]:
    """A full Order from `partial` and its lines' provisioning; defaults fill the rest."""
    status = _status(partial.get("status", "pending"))
    order: dict[str, Any] = {
        "id": order_id,
        "alternateId": alternate_id,
        "referenceCustomerId": customer_id,
        "billingCycle": "monthly",
        "transactionType": "UserPurchase",
        "currencyCode": "USD",
        "currencySymbol": "$",
        "lineItems": [],
        "creationDate": format_time(created_at),
        "status": status,
    }
    order.update(_order_fields(partial))
    provisioning: Provisioning = {}
    for line_partial in _list(partial.get("lineItems", [{}]), "lineItems"):
        _add_line(order, provisioning, _mapping(line_partial))
    return order, provisioning


def patched(
    order: Mapping[str, Any], provisioning: Provisioning, patch: object
) -> tuple[dict[str, Any], Provisioning]:
    """`order` with an admin patch applied: order fields, `lineItems` updates, `addLines`."""
    patch = _mapping(patch)
    if fixed := sorted(IMMUTABLE_FIELDS & patch.keys()):
        raise invalid(f"cannot change {', '.join(fixed)}")
    new = dict(order)
    new.update(_order_fields({k: v for k, v in patch.items() if k not in ("addLines", "listed")}))
    new["lineItems"] = [dict(line) for line in order["lineItems"]]
    new_provisioning = dict(provisioning)
    for update in _list(patch.get("lineItems", []), "lineItems"):
        _update_line(new, new_provisioning, _mapping(update))
    for addition in _list(patch.get("addLines", []), "addLines"):
        _add_line(new, new_provisioning, _mapping(addition))
    return new, new_provisioning


def with_provisioning(
    order: Mapping[str, Any], provisioning: Provisioning, statuses: object
) -> Provisioning:
    """`provisioning` with {"<lineItemNumber>": status or null} applied."""
    numbers = {line["lineItemNumber"] for line in order["lineItems"]}
    new = dict(provisioning)
    for key, value in _mapping(statuses).items():
        number = int(key) if isinstance(key, str) and key.isdigit() else -1
        if number not in numbers:
            raise invalid(f"no line {key!r} in this order")
        _set_provisioning(new, number, value)
    return new


def _add_line(
    order: dict[str, Any], provisioning: Provisioning, partial: Mapping[str, Any]
) -> None:
    lines: list[dict[str, Any]] = order["lineItems"]
    number = partial.get("lineItemNumber", len(lines))
    if not isinstance(number, int) or isinstance(number, bool) or number < 0:
        raise invalid(f"lineItemNumber must be a non-negative integer, not {number!r}")
    if any(line["lineItemNumber"] == number for line in lines):
        raise invalid(f"line {number} already exists")
    line: dict[str, Any] = {
        "lineItemNumber": number,
        "offerId": DEFAULT_OFFER,
        "friendlyName": DEFAULT_NAME,
        "quantity": 1,
        "termDuration": "P1M",
        "transactionType": "New",
        "partnerIdOnRecord": "",
    }
    line.update(_line_fields(partial))
    product, _, rest = str(line["offerId"]).partition(":")
    line["links"] = {"sku": link(f"/products/{product}/skus/{rest.partition(':')[0]}?country=US")}
    lines.append(line)
    default = DEFAULT_PROVISIONING.get(order["status"])
    _set_provisioning(provisioning, number, partial.get("provisioning", default))


def _update_line(
    order: dict[str, Any], provisioning: Provisioning, update: Mapping[str, Any]
) -> None:
    number = update.get("lineItemNumber")
    line = next((x for x in order["lineItems"] if x["lineItemNumber"] == number), None)
    if line is None or not isinstance(number, int):
        raise invalid(f"no line {number!r} in this order")
    line.update(_line_fields(update))
    if line.get("subscriptionId") is None:
        line.pop("subscriptionId", None)
    if "provisioning" in update:
        _set_provisioning(provisioning, number, update["provisioning"])


def _set_provisioning(provisioning: Provisioning, number: int, value: object) -> None:
    if value is None:
        provisioning.pop(number, None)
    elif isinstance(value, str) and value:
        provisioning[number] = value
    else:
        raise invalid(f"provisioning must be a status such as 'fulfilled', not {value!r}")


def _order_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    skip = IMMUTABLE_FIELDS | {"lineItems", "listingLagS"}
    kept = {k: v for k, v in fields.items() if k not in skip}
    _CHECKS.texts(kept, _ORDER_TEXT_FIELDS)
    if "status" in kept:
        _status(kept["status"])
    return kept


def _line_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in fields.items() if k not in ("lineItemNumber", "provisioning")}
    _CHECKS.texts(kept, _LINE_TEXT_FIELDS)
    if kept.get("subscriptionId") is not None:
        _text(kept["subscriptionId"], "subscriptionId")
    quantity = kept.get("quantity", 0)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
        raise invalid(f"quantity must be a non-negative integer, not {quantity!r}")
    return kept


def _status(value: object) -> str:
    # Any text is accepted so tests can serve values the documentation does not list.
    return _text(value, "status")
