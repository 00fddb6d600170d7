"""The parts of Elastic Path's order replies the watcher reads.

Only what the watcher needs is modelled; everything else (addresses, display prices, links)
is ignored, so it never raises events. A listing page must have `data` and
`meta.results.total`; each order `id`, `status`, `payment` and `shipping`; each item `id`
and `quantity`. Anything less is a `MalformedReplyError` naming the fields, never quoting
their values. Item ids come from `relationships.items` (entries of type "item"; shipping
groups are not lines); their bodies from `included.items`, which the vendor puts at the top
level or, in some replies, inside the order. A store-wide listing reads whose order it is
from `relationships.customer` or `relationships.account`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from watcher.providers.reply import VendorReply, validate


class Item(VendorReply):
    id: str = Field(min_length=1)
    quantity: int
    sku: str | None = None
    product_id: str | None = None


class _Included(VendorReply):
    items: list[Item] = Field(default_factory=list)


class _Ref(VendorReply):
    type: str = ""
    id: str


class _Refs(VendorReply):
    data: list[_Ref] | None = None


class _OneRef(VendorReply):
    data: _Ref | None = None


class _Relationships(VendorReply):
    items: _Refs | None = None
    customer: _OneRef | None = None
    account: _OneRef | None = None


class _Timestamps(VendorReply):
    created_at: datetime | None = None
    updated_at: datetime | None = None


class _OrderMeta(VendorReply):
    timestamps: _Timestamps = Field(default_factory=_Timestamps)


class VendorOrder(VendorReply):
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

    def owner(self, kind: str) -> str | None:
        """The id of the order's `customer` or `account`, None when it has none."""
        ref = getattr(self.relationships, kind, None) if self.relationships else None
        return ref.data.id if ref is not None and ref.data is not None else None


class _Results(VendorReply):
    total: int = Field(ge=0)


class _ListMeta(VendorReply):
    results: _Results


class Page(VendorReply):
    data: list[VendorOrder]
    meta: _ListMeta
    included: _Included | None = None

    def included_items(self) -> dict[str, Item]:
        """Every item the page carries, top level and inside orders, by id."""
        found = list(self.included.items) if self.included else []
        for order in self.data:
            found += order.included.items if order.included else []
        return {item.id: item for item in found}


class ItemList(VendorReply):
    data: list[Item]


def parse_page(document: Any, *, what: str) -> Page:
    return validate(Page, document, what=what)


def parse_items(document: Any, *, what: str) -> list[Item]:
    return validate(ItemList, document, what=what).data
