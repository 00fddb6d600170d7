"""The parts of Partner Center's order replies the watcher reads, in its camelCase.

`GET .../orders` answers the whole collection `{items: [order]}`; an order has `id`,
`alternateId`, `status`, `creationDate`, `lineItems` (`lineItemNumber`, `offerId`,
`quantity`, `subscriptionId`) and `links.provisioningStatus` once there is one to read;
`GET .../orders/{id}/provisioningstatus` answers `{items: [{lineItemNumber, status}]}`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from watcher.providers.reply import CamelCaseReply, validate


class VendorLine(CamelCaseReply):
    line_item_number: int = Field(ge=0)
    offer_id: str
    quantity: int
    subscription_id: str | None = None


class _Link(CamelCaseReply):
    uri: str


class _OrderLinks(CamelCaseReply):
    provisioning_status: _Link | None = None


class VendorOrder(CamelCaseReply):
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


class _Collection(CamelCaseReply):
    items: list[VendorOrder]


class _LineProvisioning(CamelCaseReply):
    line_item_number: int
    status: str


class _ProvisioningCollection(CamelCaseReply):
    items: list[_LineProvisioning]


def parse_collection(document: Any, *, what: str) -> list[VendorOrder]:
    """A decoded order collection, or MalformedReplyError."""
    return validate(_Collection, document, what=what).items


def parse_order(document: Any, *, what: str) -> VendorOrder:
    return validate(VendorOrder, document, what=what)


def parse_provisioning(document: Any, *, what: str) -> dict[str, str]:
    """A decoded provisioningstatus collection as {line key: raw status}."""
    collection = validate(_ProvisioningCollection, document, what=what)
    return {str(item.line_item_number): item.status for item in collection.items}
