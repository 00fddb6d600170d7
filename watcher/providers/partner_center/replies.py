"""The parts of Partner Center's order replies the watcher reads, in its camelCase.

`GET .../orders` answers the whole collection `{items: [order]}`; an order has `id`,
`alternateId`, `status`, `creationDate`, `lineItems` (`lineItemNumber`, `offerId`,
`quantity`, `subscriptionId`) and `links.provisioningStatus` once there is one to read;
`GET .../orders/{id}/provisioningstatus` answers `{items: [{lineItemNumber, status}]}`.
`GET /v1/customers` answers a page `{items: [{id, companyProfile}], continuationToken?,
links: {next?: {uri, headers: [{key: MS-ContinuationToken, value}]}}}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import Field

from watcher.core.errors import MalformedReplyError
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


class _Header(CamelCaseReply):
    key: str
    value: str


class _NextLink(CamelCaseReply):
    uri: str
    headers: list[_Header] = Field(default_factory=list)


class _CustomerLinks(CamelCaseReply):
    next: _NextLink | None = None


class _Customer(CamelCaseReply):
    id: str = Field(min_length=1)


class _CustomerPage(CamelCaseReply):
    items: list[_Customer]
    continuation_token: str | None = None
    links: _CustomerLinks = Field(default_factory=_CustomerLinks)


@dataclass(frozen=True, slots=True)
class CustomerPage:
    """Customer ids, and where the next page is: its uri and continuation token."""

    ids: list[str]
    next_uri: str | None
    continuation: str | None


def parse_customers(document: Any, *, what: str) -> CustomerPage:
    """A decoded page of the partner's customers, or MalformedReplyError."""
    page = validate(_CustomerPage, document, what=what)
    link = page.links.next
    continuation = page.continuation_token
    if link is not None and continuation is None:
        continuation = next(
            (h.value for h in link.headers if h.key.lower() == "ms-continuationtoken"), None
        )
    if link is not None and not continuation:
        raise MalformedReplyError(f"{what}: links.next comes without a continuation token")
    return CustomerPage(
        ids=[item.id for item in page.items],
        next_uri=None if link is None else link.uri,
        continuation=continuation if link is not None else None,
    )
