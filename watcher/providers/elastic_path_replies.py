"""Elastic Path replies read into canonical Orders: the reply models and the mapping.

Only what the watcher needs is modelled; everything else (addresses, display prices, links)
is ignored, so it never raises events. A listing page must have `data` and
`meta.results.total`; each order `id`, `status`, `payment` and `shipping`; each item `id`
and `quantity`. Anything less is a `MalformedReplyError` naming the fields, never quoting
their values.

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
Item ids come from `relationships.items` (entries of type "item"; shipping groups are not
lines); their bodies from `included.items`, which the vendor puts at the top level or, in
some replies, inside the order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from watcher.core.models import LineItem, Order, OrderStatus, Provisioning
from watcher.providers import http

PROVIDER = "elastic_path"
_STATUSES = {
    "incomplete": OrderStatus.PENDING,
    "processing": OrderStatus.PROCESSING,
    "complete": OrderStatus.COMPLETED,
    "cancelled": OrderStatus.CANCELLED,
}
_FULFILMENT = {"unfulfilled": Provisioning.PENDING, "fulfilled": Provisioning.PROVISIONED}


class _Vendor(http.VendorReply):
    """A part of a reply."""


class Item(_Vendor):
    id: str = Field(min_length=1)
    quantity: int
    sku: str | None = None
    product_id: str | None = None


class _Included(_Vendor):
    items: list[Item] = Field(default_factory=list)


class _Ref(_Vendor):
    type: str = ""
    id: str


class _Refs(_Vendor):
    data: list[_Ref] | None = None


class _Relationships(_Vendor):
    items: _Refs | None = None


class _Timestamps(_Vendor):
    created_at: datetime | None = None
    updated_at: datetime | None = None


class _OrderMeta(_Vendor):
    timestamps: _Timestamps = Field(default_factory=_Timestamps)


class VendorOrder(_Vendor):
    id: str = Field(min_length=1)
    status: str
    payment: str
    shipping: str
    external_ref: str | None = None
    order_number: str | None = None
    meta: _OrderMeta = Field(default_factory=_OrderMeta)
    relationships: _Relationships | None = None
    included: _Included | None = None

    def item_ids(self) -> list[str] | None:
        """The ids of the order's items, or None when the reply does not say."""
        refs = self.relationships.items if self.relationships else None
        if refs is None or refs.data is None:
            return None
        return [ref.id for ref in refs.data if ref.type == "item"]


class _Results(_Vendor):
    total: int = Field(ge=0)


class _ListMeta(_Vendor):
    results: _Results


class Page(_Vendor):
    data: list[VendorOrder]
    meta: _ListMeta
    included: _Included | None = None

    def included_items(self) -> dict[str, Item]:
        """Every item the page carries, top level and inside orders, by id."""
        found = list(self.included.items) if self.included else []
        for order in self.data:
            found += order.included.items if order.included else []
        return {item.id: item for item in found}


class ItemList(_Vendor):
    data: list[Item]


def parse_page(document: Any, *, what: str) -> Page:
    return http.validate(Page, document, what=what)


def parse_items(document: Any, *, what: str) -> list[Item]:
    return http.validate(ItemList, document, what=what).data


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
