"""The parts of Adobe VIP Marketplace's order listing the watcher reads, in its camelCase.

`GET /v3/customers/{id}/orders` answers `{items: [order], links: {next: {uri}}}`; an
order has `orderId`, `orderType`, `status`, `creationDate`, `externalReferenceId` and
`lineItems` (`extLineItemNumber`, `offerId`, `quantity`, `status`, `subscriptionId`).
Everything else is ignored, so it never raises events.

`GET /v3/resellers/{id}/customers` answers `{totalCount, count, offset, limit, accounts:
[customer]}`, the customers under `customers` in the documentation's field table and older
pages: either is read. A customer has `customerId`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, model_validator

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
    """A listing page whose orders are left as the vendor's JSON objects, to be digested
    before they are validated one by one (`VendorOrder`)."""

    items: list[dict[str, Any]]
    links: Links = Field(default_factory=Links)


class Customer(CamelCaseReply):
    customer_id: str = Field(min_length=1)


class CustomerPage(CamelCaseReply):
    total_count: int = Field(ge=0)
    accounts: list[Customer] | None = None
    customers: list[Customer] | None = None

    @model_validator(mode="after")
    def _listed(self) -> CustomerPage:
        if self.accounts is None and self.customers is None:
            raise ValueError("neither accounts nor customers is there")
        return self

    @property
    def ids(self) -> list[str]:
        listed = self.accounts if self.accounts is not None else self.customers or []
        return [customer.customer_id for customer in listed]
