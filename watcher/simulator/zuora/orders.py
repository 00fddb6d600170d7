"""Zuora Quickstart order resources: errors, building orders from partial ones, admin patches.

An order is kept as one JSON-ready dict in the field names of the published OpenAPI
document (`order`, `orderLineItem`, `postSubscriptionOrderResponse`, `subscriptionPlan`,
`subscriptionItem`), with its lists stored as plain lists: `line_items`, `subscriptions`,
each subscription's `subscription_plans`, each plan's `subscription_items`. How a reply
shows those lists (the spec's `{data, next_page}` or the bare arrays of Zuora's own
samples) and which of them it expands is decided when it is served (`listing`).

Everything here is pure: ids and times come in from the caller (`Ids`). `build_*` fill a
partial resource with Zuora's usual values; `patch_*` check a whole patch before changing
anything, so a rejected patch leaves the order as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from watcher.simulator import admin

ORDER_STATES = ("draft", "scheduled", "executing", "pending", "complete", "failed", "canceled")
LINE_STATES = ("pending", "booked", "sent_to_billing", "complete", "canceled")
SUBSCRIPTION_STATES = (
    "draft",
    "pending_activation",
    "pending_acceptance",
    "active",
    "expired",
    "canceled",
    "paused",
)
ITEM_STATES = ("inactive", "active", "expired")
USER_ID = "2c92c0946a6dffc0016a7faab604299b"


class ApiError(admin.VendorError):
    """A reply in Quickstart's shape: {type, errors: [{code, parameter, message}], retryable}."""

    def __init__(
        self,
        status: int,
        kind: str,
        *,
        code: str | None = None,
        message: str = "",
        parameter: str | None = None,
        retryable: bool | None = False,
    ) -> None:
        super().__init__(f"{status} {kind}: {message}")
        self.status = status
        self.kind = kind
        self.code = code
        self.message = message
        self.parameter = parameter
        self.retryable = retryable

    def body(self) -> dict[str, Any]:
        errors: list[dict[str, str]] = []
        if self.code is not None:
            error = {"code": self.code, "message": self.message}
            errors.append(error | ({"parameter": self.parameter} if self.parameter else {}))
        body: dict[str, Any] = {"type": self.kind, "errors": errors}
        return body if self.retryable is None else body | {"retryable": self.retryable}


def invalid(message: str, *, parameter: str | None = None) -> ApiError:
    """A request (admin or vendor) the simulator cannot apply: 400 invalid_parameter."""
    return ApiError(
        400, "bad_request", code="invalid_parameter", message=message, parameter=parameter
    )


def not_found(what: str, key: str) -> ApiError:
    return ApiError(
        404,
        "not_found",
        code="resource_not_found",
        message=f"{what} {key} could not be found",
        parameter="id",
    )


def format_time(moment: datetime) -> str:
    """Quickstart's timestamps: ISO 8601 with an offset, whole seconds."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class Ids:
    """Where new ids and the current time come from (the world's counters and clock)."""

    new_id: Callable[[], str]
    line_number: Callable[[], str]
    subscription_number: Callable[[], str]
    item_number: Callable[[], str]
    now: Callable[[], datetime]


def build_order(
    partial: Mapping[str, Any], *, account_id: str, order_number: str, ids: Ids
) -> dict[str, Any]:
    """A full order from `partial` (state, description, line_items, subscriptions...)."""
    created = _time(partial.get("created_time"), default=ids.now())
    order_id = ids.new_id()
    order: dict[str, Any] = {
        "id": order_id,
        "order_number": order_number,
        "order_date": created.date().isoformat(),
        "category": "sale",
        "state": expect_choice(partial.get("state", "pending"), ORDER_STATES, "state"),
        "account_id": account_id,
        "description": expect_text(partial.get("description", ""), "description"),
        "custom_fields": {},
    } | _stamps(created)
    lines = expect_list(partial.get("line_items", []), "line_items")
    subscriptions = expect_list(partial.get("subscriptions", []), "subscriptions")
    order["line_items"] = [
        build_line(line, order_id=order_id, ids=ids, at=created) for line in lines
    ]
    order["subscriptions"] = [
        build_subscription(sub, order=order, ids=ids, at=created) for sub in subscriptions
    ]
    return order


def build_line(
    partial: object, *, order_id: str, ids: Ids, at: datetime | None = None
) -> dict[str, Any]:
    line = expect_object(partial, "line item")
    quantity = expect_quantity(line.get("quantity", 1))
    fulfilled = expect_quantity(line.get("quantity_fulfilled", 0))
    return {
        "id": expect_text(line.get("id") or ids.new_id(), "id"),
        "item_number": ids.line_number(),
        "name": expect_text(line.get("name", "Onboarding kit"), "name"),
        "product_code": expect_text(line.get("product_code", "SKU-KIT-1"), "product_code"),
        "price_id": expect_text(
            line.get("price_id", "8ad08e0184ade9350184af5bf1f46007"), "price_id"
        ),
        "type": "product",
        "category": "sale",
        "quantity": quantity,
        "quantity_fulfilled": fulfilled,
        "quantity_pending_fulfillment": max(quantity - fulfilled, 0),
        "requires_fulfillment": bool(line.get("requires_fulfillment", True)),
        "state": expect_choice(line.get("state", "pending"), LINE_STATES, "state"),
        "unit_amount": 25.0,
        "order_id": order_id,
        "custom_fields": {},
    } | _stamps(at or ids.now())


def build_subscription(
    partial: object, *, order: Mapping[str, Any], ids: Ids, at: datetime | None = None
) -> dict[str, Any]:
    sub = expect_object(partial, "subscription")
    subscription_id = ids.new_id()
    start = order["order_date"]
    plan_id = ids.new_id()
    items = [
        build_item(item, plan_id=plan_id, start=start, ids=ids, at=at)
        for item in expect_list(sub.get("subscription_items", [{}]), "subscription_items")
    ]
    return {
        "id": subscription_id,
        "subscription_number": expect_text(
            sub.get("subscription_number") or ids.subscription_number(), "subscription_number"
        ),
        "state": expect_choice(
            sub.get("state", "pending_activation"), SUBSCRIPTION_STATES, "state"
        ),
        "version": 1,
        "latest_version": True,
        "account_id": order["account_id"],
        "invoice_owner_account_id": order["account_id"],
        "auto_renew": False,
        "initial_term": {"type": "termed", "interval_count": 1, "interval": "year"},
        "start_date": start,
        "contract_effective": start,
        "service_activation": start,
        "customer_acceptance": start,
        "invoice_separately": False,
        "order_number": order["order_number"],
        "custom_fields": {},
        "subscription_plans": [_plan(plan_id, subscription_id=subscription_id, items=items)],
    } | _stamps(at or ids.now())


def _plan(plan_id: str, *, subscription_id: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """The one recurring plan every simulated subscription has."""
    return {
        "id": plan_id,
        "plan_id": "8ad0877b83ac56660183ae82d4373c8b",
        "name": "Recurring Yearly Plan",
        "subscription_id": subscription_id,
        "subscription_items": items,
    }


def build_item(
    partial: object, *, plan_id: str, start: str, ids: Ids, at: datetime | None = None
) -> dict[str, Any]:
    item = expect_object(partial, "subscription item")
    state = expect_choice(item.get("state", "inactive"), ITEM_STATES, "state")
    return {
        "id": ids.new_id(),
        "subscription_item_number": expect_text(
            item.get("subscription_item_number") or ids.item_number(), "subscription_item_number"
        ),
        "name": expect_text(item.get("name", "Seats"), "name"),
        "price_id": expect_text(
            item.get("price_id", "8ad09bce8455cd0c01845e8d3c152199"), "price_id"
        ),
        "quantity": expect_quantity(item.get("quantity", 1)),
        "unit_of_measure": "License",
        "charge_model": "per_unit",
        "charge_type": "recurring",
        "unit_amount": 150.0,
        "start_event": "contract_effective",
        "start_date": start,
        "subscription_plan_id": plan_id,
        "active": state == "active",
        "state": state,
    } | _stamps(at or ids.now())


def touch(resource: dict[str, Any], now: datetime) -> None:
    resource["updated_time"] = format_time(now)


def _stamps(moment: datetime) -> dict[str, str]:
    stamp = format_time(moment)
    return {
        "created_time": stamp,
        "created_by_id": USER_ID,
        "updated_time": stamp,
        "updated_by_id": USER_ID,
    }


def _time(value: object, *, default: datetime) -> datetime:
    if value is None:
        return default.replace(microsecond=0)
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise invalid(f"{value!r} is not an ISO 8601 time", parameter="created_time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def expect_object(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise invalid(f"the {what} must be a JSON object")
    return value


def expect_list(value: object, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise invalid(f"{name} must be a list", parameter=name)
    return value


def expect_text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise invalid(f"{name} must be a string", parameter=name)
    return value


def expect_choice(value: object, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise invalid(f"{name} must be one of {', '.join(allowed)}", parameter=name)
    return str(value)


def expect_quantity(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise invalid(
            f"quantity must be a non-negative number, not {value!r}", parameter="quantity"
        )
    return value
