"""Elastic Path orders as canonical Orders.

Mapping:

    status     incomplete -> pending, processing -> processing, complete -> completed,
               cancelled -> cancelled, anything else -> unknown           (status_raw kept)
    payment    the vendor's value, trimmed and lower-cased (unpaid, authorized,
               partially_authorized, paid, partially_paid, refunded...)  (payment_raw kept)
    shipping   order-level fulfilment: unfulfilled -> pending, fulfilled -> provisioned,
               anything else -> unknown                                  (fulfilment_raw kept)

Lines are the order's items, keyed by item id; the offer is the item's sku, else its
product id. Elastic Path has no per-item status, so a line's status is unknown with an
empty raw value (copying the order's status onto each line would repeat every
order.status_changed as one order.line_item.status_changed per line), and no per-item
fulfilment, so a line's provisioning stays unknown: shipping is the order's.
"""

from __future__ import annotations

from watcher.core.models import LineItem, Order, OrderStatus, Provisioning
from watcher.providers.elastic_path.replies import Item, VendorOrder

PROVIDER = "elastic_path"
_STATUSES = {
    "incomplete": OrderStatus.PENDING,
    "processing": OrderStatus.PROCESSING,
    "complete": OrderStatus.COMPLETED,
    "cancelled": OrderStatus.CANCELLED,
}
_FULFILMENT = {"unfulfilled": Provisioning.PENDING, "fulfilled": Provisioning.PROVISIONED}


def status(raw: str) -> OrderStatus:
    """The normalised status of an Elastic Path order status."""
    return _STATUSES.get(raw.strip().lower(), OrderStatus.UNKNOWN)


def fulfilment(raw: str) -> Provisioning:
    """The order-level fulfilment of an Elastic Path `shipping` value."""
    return _FULFILMENT.get(raw.strip().lower(), Provisioning.UNKNOWN)


def payment(raw: str) -> str | None:
    """The normalised payment status: the vendor's value trimmed and lower-cased."""
    return raw.strip().lower() or None


def to_order(vendor: VendorOrder, items: list[Item], *, source: str, customer_id: str) -> Order:
    return Order(
        provider=PROVIDER,
        source=source,
        customer_id=customer_id,
        order_id=vendor.id,
        status=status(vendor.status),
        status_raw=vendor.status,
        created_at=vendor.meta.timestamps.created_at,
        reference=vendor.external_ref or vendor.order_number or None,
        line_items=tuple(_to_line(item) for item in items),
        payment=payment(vendor.payment),
        payment_raw=vendor.payment,
        fulfilment=fulfilment(vendor.shipping),
        fulfilment_raw=vendor.shipping,
    )


def _to_line(item: Item) -> LineItem:
    return LineItem(
        key=item.id,
        offer=item.sku or item.product_id or "",
        quantity=item.quantity,
        status=OrderStatus.UNKNOWN,
        status_raw="",
    )
