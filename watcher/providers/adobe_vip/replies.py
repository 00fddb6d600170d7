"""The parts of Adobe VIP Marketplace's order listing the watcher reads, in its camelCase.

`GET /v3/customers/{id}/orders` answers `{items: [order], links: {next: {uri}}}`; an
order has `orderId`, `orderType`, `status`, `creationDate`, `externalReferenceId` and
`lineItems` (`extLineItemNumber`, `offerId`, `quantity`, `status`, `subscriptionId`).
Everything else is ignored, so it never raises events.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from watcher.providers.reply import CamelCaseReply


class Line(CamelCaseReply):
    ext_line_item_number: int
    offer_id: str
    quantity: int
    status: str
    subscription_id: str | None = None


class VendorOrder(CamelCaseReply):
    order_id: str = Field(min_length=1)
    order_type: str = ""
    status: str
    creation_date: datetime | None = None
    external_reference_id: str | None = None
    line_items: list[Line] = Field(default_factory=list)


class Link(CamelCaseReply):
    uri: str


class Links(CamelCaseReply):
    next: Link | None = None


class OrderPage(CamelCaseReply):
    items: list[VendorOrder]
    links: Links = Field(default_factory=Links)
