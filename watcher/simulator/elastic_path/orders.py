"""Elastic Path orders in the simulator: stored records, their JSON, and errors.

An order is kept as a `StoredOrder` (mutable, owned by the world) and rendered on every
read into the JSON:API shape of `GET /v2/orders/:id` (`render_order`), its items into the
shape of `GET /v2/orders/:id/items` (`render_item`). Rendering on read keeps `updated_at`,
the display prices and the item relationships consistent with whatever changed last.

Admin edits live in `edits`. Errors use
Elastic Path's JSON:API envelope `{"errors": [{"status", "title", "detail"}]}`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from watcher.simulator import admin

NewId = Callable[[], str]


class ApiError(admin.VendorError):
    """A reply in Elastic Path's error envelope."""

    def __init__(self, status: int, title: str, detail: str = "") -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"status": self.status, "title": self.title}
        if self.detail:
            error["detail"] = self.detail
        return {"errors": [error]}


def invalid(detail: str) -> ApiError:
    return ApiError(400, "Bad Request", detail)


def format_time(moment: datetime) -> str:
    """Elastic Path's timestamp form: UTC with milliseconds, e.g. 2018-04-16T10:11:59.715Z."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return moment.astimezone(UTC)


@dataclass(slots=True)
class StoredItem:
    id: str
    sku: str
    product_id: str
    name: str
    quantity: int
    unit_amount: int
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class StoredOrder:
    id: str
    created_at: datetime
    updated_at: datetime
    customer_id: str | None = None
    account_id: str | None = None
    status: str = "incomplete"
    payment: str = "unpaid"
    shipping: str = "unfulfilled"
    external_ref: str | None = None
    order_number: str | None = None
    currency: str = "USD"
    items: list[StoredItem] = field(default_factory=list)

    def total(self) -> int:
        return sum(item.unit_amount * item.quantity for item in self.items)

    def touch(self, now: datetime) -> None:
        """Move updated_at forward on every change, even when the clock stands still."""
        self.updated_at = max(now, self.updated_at + timedelta(milliseconds=1))


def render_order(order: StoredOrder) -> dict[str, Any]:
    """The order as `GET /v2/orders/:id` returns it (without `included`)."""
    document: dict[str, Any] = {
        "type": "order",
        "id": order.id,
        "status": order.status,
        "payment": order.payment,
        "shipping": order.shipping,
        "anonymized": False,
        "customer": {"name": "Andy Dwyer", "email": "andy@example.com"},
        "shipping_address": _address(shipping=True),
        "billing_address": _address(shipping=False),
        "links": {},
        "meta": {
            "display_price": _display_price(order),
            "timestamps": _timestamps(order.created_at, order.updated_at),
        },
        "relationships": _relationships(order),
    }
    for name in ("external_ref", "order_number"):
        if (value := getattr(order, name)) is not None:
            document[name] = value
    return document


def render_item(item: StoredItem, *, currency: str) -> dict[str, Any]:
    """One order item as `GET /v2/orders/:id/items` returns it."""
    amount = item.unit_amount * item.quantity
    unit = {"amount": item.unit_amount, "currency": currency, "includes_tax": True}
    value = unit | {"amount": amount}
    priced = {"unit": _money(item.unit_amount, currency), "value": _money(amount, currency)}
    nothing = {"unit": _money(0, currency), "value": _money(0, currency)}
    return {
        "type": "order_item",
        "id": item.id,
        "quantity": item.quantity,
        "product_id": item.product_id,
        "name": item.name,
        "sku": item.sku,
        "unit_price": unit,
        "value": value,
        "discounts": [],
        "links": {},
        "meta": {
            "display_price": {
                "with_tax": priced,
                "without_tax": priced,
                "tax": nothing,
                "discount": nothing,
                "without_discount": priced,
            },
            "timestamps": _timestamps(item.created_at, item.updated_at),
        },
        "relationships": {"cart_item": {"data": {"type": "cart_item", "id": item.id}}},
        "catalog_id": "default",
        "catalog_source": "pim",
    }


def _relationships(order: StoredOrder) -> dict[str, Any]:
    items = [{"type": "item", "id": item.id} for item in order.items]
    relationships: dict[str, Any] = {"items": {"data": items}}
    if order.customer_id is not None:
        relationships["customer"] = {"data": {"type": "customer", "id": order.customer_id}}
    if order.account_id is not None:
        relationships["account"] = {"data": {"type": "account", "id": order.account_id}}
    return relationships


def _display_price(order: StoredOrder) -> dict[str, Any]:
    total, currency = order.total(), order.currency
    paid = total if order.payment in {"paid", "refunded"} else 0
    authorized = total if order.payment == "authorized" else 0
    return {
        "with_tax": _money(total, currency),
        "without_tax": _money(total, currency),
        "tax": _money(0, currency),
        "discount": _money(0, currency),
        "balance_owing": _money(total - paid - authorized, currency),
        "paid": _money(paid, currency),
        "authorized": _money(authorized, currency),
        "without_discount": _money(total, currency),
        "shipping": _money(0, currency),
    }


def _money(amount: int, currency: str) -> dict[str, Any]:
    return {"amount": amount, "currency": currency, "formatted": f"${amount / 100:.2f}"}


def _timestamps(created_at: datetime, updated_at: datetime) -> dict[str, str]:
    return {"created_at": format_time(created_at), "updated_at": format_time(updated_at)}


def _address(*, shipping: bool) -> dict[str, str]:
    address = {
        "first_name": "Andy",
        "last_name": "Dwyer",
        "company_name": "Ron Swanson Enterprises",
        "line_1": "1 Sunny Street",
        "line_2": "",
        "city": "Anaheim",
        "postcode": "92802",
        "county": "Orange",
        "country": "US",
        "region": "CA",
    }
    return address | {"phone_number": "", "instructions": ""} if shipping else address
