"""Partner Center replies as canonical orders: the vendor's shapes and the status mapping.

Pure: the adapter (`partner_center`) does the calls and keeps what it learnt, this module
reads replies and maps values. Mapping:

    order status      pending -> pending, completed -> completed, cancelled -> cancelled,
                      unknown or anything else -> unknown (raw kept)
    line provisioning (from provisioningstatus, any case) fulfilled -> provisioned,
                      unfulfilled -> cancelled, prefulfillmentPending -> pending,
                      anything else -> unknown (raw kept)

A line's key is str(lineItemNumber). Partner Center has no status per line, so every line
carries the constant `LINE_STATUS` ("unknown", raw ""): mirroring the order's status would
turn one order status change into one more event per line saying the same thing. Line
progress travels as provisioning and subscriptionId. `alternateId` is the order's
reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import Field

from watcher.core.models import LineItem, Order, OrderStatus, Provisioning
from watcher.providers import http

PROVIDER = "partner_center"
LINE_STATUS = OrderStatus.UNKNOWN
TERMINAL_PROVISIONING = frozenset({"fulfilled", "unfulfilled"})
_STATUSES = {
    "pending": OrderStatus.PENDING,
    "completed": OrderStatus.COMPLETED,
    "cancelled": OrderStatus.CANCELLED,
}
_PROVISIONING = {
    "fulfilled": Provisioning.PROVISIONED,
    "unfulfilled": Provisioning.CANCELLED,
    "prefulfillmentpending": Provisioning.PENDING,
}


class _Vendor(http.CamelCaseReply):
    """A part of a reply, in the vendor's camelCase."""


class VendorLine(_Vendor):
    line_item_number: int = Field(ge=0)
    offer_id: str
    quantity: int
    subscription_id: str | None = None


class _Link(_Vendor):
    uri: str


class _OrderLinks(_Vendor):
    provisioning_status: _Link | None = None


class VendorOrder(_Vendor):
    id: str = Field(min_length=1)
    alternate_id: str | None = None
    status: str
    creation_date: datetime
    line_items: list[VendorLine]
    links: _OrderLinks = Field(default_factory=_OrderLinks)

    @property
    def provisioning_populated(self) -> bool:
        """Partner Center links provisioningStatus only once there is one to read."""
        return self.links.provisioning_status is not None


class _Collection(_Vendor):
    items: list[VendorOrder]


class _LineProvisioning(_Vendor):
    line_item_number: int
    status: str


class _ProvisioningCollection(_Vendor):
    items: list[_LineProvisioning]


def status(raw: str) -> OrderStatus:
    """The normalised status of a Partner Center order status."""
    return _STATUSES.get(raw.strip().lower(), OrderStatus.UNKNOWN)


def provisioning(raw: str) -> Provisioning:
    """The normalised provisioning of a line's provisioningstatus value (any case)."""
    return _PROVISIONING.get(raw.strip().lower(), Provisioning.UNKNOWN)


def settled(raw: str) -> bool:
    """Whether a line's provisioning status is final (no reason to ask again)."""
    return raw.strip().lower() in TERMINAL_PROVISIONING


def parse_collection(document: Any, *, what: str) -> list[VendorOrder]:
    """A decoded order collection, or MalformedReplyError."""
    return http.validate(_Collection, document, what=what).items


def parse_order(document: Any, *, what: str) -> VendorOrder:
    return http.validate(VendorOrder, document, what=what)


def parse_provisioning(document: Any, *, what: str) -> dict[str, str]:
    """A decoded provisioningstatus collection as {line key: raw status}."""
    collection = http.validate(_ProvisioningCollection, document, what=what)
    return {str(item.line_item_number): item.status for item in collection.items}


def to_order(
    item: VendorOrder, *, source: str, customer_id: str, provisioning_raw: Mapping[str, str]
) -> Order:
    """The canonical order; `provisioning_raw` holds each line's known raw provisioning."""
    return Order(
        provider=PROVIDER,
        source=source,
        customer_id=customer_id,
        order_id=item.id,
        status=status(item.status),
        status_raw=item.status,
        created_at=item.creation_date,
        reference=item.alternate_id or None,
        line_items=tuple(_to_line(line, provisioning_raw) for line in item.line_items),
    )


def _to_line(line: VendorLine, provisioning_raw: Mapping[str, str]) -> LineItem:
    key = str(line.line_item_number)
    raw = provisioning_raw.get(key, "")
    subscription_id = (line.subscription_id or "").strip()
    return LineItem(
        key=key,
        offer=line.offer_id,
        quantity=line.quantity,
        status=LINE_STATUS,
        status_raw="",
        subscription_id=subscription_id or None,
        provisioning=provisioning(raw) if raw else Provisioning.PENDING,
        provisioning_raw=raw,
    )
