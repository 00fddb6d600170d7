"""Partner Center orders as canonical Orders.

Pure: the adapter does the calls and keeps what it learnt, this module maps values:

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

from watcher.core.models import LineItem, Order, OrderStatus, Provisioning
from watcher.providers.partner_center.replies import VendorLine, VendorOrder

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


def status(raw: str) -> OrderStatus:
    """The normalised status of a Partner Center order status."""
    return _STATUSES.get(raw.strip().lower(), OrderStatus.UNKNOWN)


def provisioning(raw: str) -> Provisioning:
    """The normalised provisioning of a line's provisioningstatus value (any case)."""
    return _PROVISIONING.get(raw.strip().lower(), Provisioning.UNKNOWN)


def settled(raw: str) -> bool:
    """Whether a line's provisioning status is final (no reason to ask again)."""
    return raw.strip().lower() in TERMINAL_PROVISIONING


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
