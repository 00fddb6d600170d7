"""Adobe VIP Marketplace orders as canonical Orders.

Order and line `status` is a 4-digit string:

    1000 completed, 1002 pending, 1008 cancelled,
    1004 / 1020 / 1022 / 1024 / 1026 failed, anything else unknown (raw kept)

A line's provisioning: 1008 -> cancelled, a failure code -> failed, a subscriptionId ->
provisioned, otherwise pending; its raw value is the subscriptionId. PREVIEW* orders are
quotes Adobe never persists and are skipped.

An order's digest (`reply.digest`) is that of its item in the listing: when `known` gives
an order that digest, the item is not validated or mapped, only named in `Page.same`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from watcher.core.models import LineItem, Order, OrderStatus, Provisioning
from watcher.providers.adobe_vip import replies
from watcher.providers.reply import digest, validate

PROVIDER = "adobe_vip"
FULL_RELIST_START = datetime(2000, 1, 1, tzinfo=UTC)
FAILED_CODES = frozenset({"1004", "1020", "1022", "1024", "1026"})
_STATUSES = {
    "1000": OrderStatus.COMPLETED,
    "1002": OrderStatus.PENDING,
    "1008": OrderStatus.CANCELLED,
} | dict.fromkeys(FAILED_CODES, OrderStatus.FAILED)


@dataclass(frozen=True, slots=True)
class Page:
    """One listing page: its orders (previews skipped) and the next page's URI, if any;
    `same` names the orders listed with their known digest, `digests` those of `orders`."""

    orders: list[Order]
    next_uri: str | None
    same: list[str] = field(default_factory=list)
    digests: dict[str, str] = field(default_factory=dict)


def status(raw: str) -> OrderStatus:
    """The normalised status of an Adobe order or line status code."""
    return _STATUSES.get(raw.strip(), OrderStatus.UNKNOWN)


def provisioning(status_raw: str, subscription_id: str) -> Provisioning:
    """Provisioning of a line: Adobe shows it only as the status and the subscriptionId."""
    code = status_raw.strip()
    if code == "1008":
        return Provisioning.CANCELLED
    if code in FAILED_CODES:
        return Provisioning.FAILED
    return Provisioning.PROVISIONED if subscription_id else Provisioning.PENDING


def parse_page(
    document: Any,
    *,
    source: str,
    customer_id: str,
    what: str,
    known: Mapping[str, str] | None = None,
) -> Page:
    """A decoded listing reply as canonical orders, or MalformedReplyError. An item whose
    digest `known` gives its order id is only named in `same` (see the module docstring)."""
    page = validate(replies.OrderPage, document, what=what)
    found = Page(orders=[], next_uri=page.links.next.uri if page.links.next else None)
    for index, raw in enumerate(page.items):
        raw_digest = digest(raw)
        if known and known.get(str(raw.get("orderId"))) == raw_digest:
            found.same.append(str(raw["orderId"]))
            continue
        item = validate(replies.VendorOrder, raw, what=what, at=f"items.{index}")
        if not item.order_type.upper().startswith("PREVIEW"):
            found.orders.append(to_order(item, source=source, customer_id=customer_id))
            found.digests[item.order_id] = raw_digest
    return found


def to_order(item: replies.VendorOrder, *, source: str, customer_id: str) -> Order:
    return Order(
        provider=PROVIDER,
        source=source,
        customer_id=customer_id,
        order_id=item.order_id,
        status=status(item.status),
        status_raw=item.status,
        created_at=item.creation_date,
        reference=item.external_reference_id or None,
        line_items=tuple(_to_line(line) for line in item.line_items),
    )


def _to_line(line: replies.Line) -> LineItem:
    subscription_id = (line.subscription_id or "").strip()
    return LineItem(
        key=str(line.ext_line_item_number),
        offer=line.offer_id,
        quantity=line.quantity,
        status=status(line.status),
        status_raw=line.status,
        subscription_id=subscription_id or None,
        provisioning=provisioning(line.status, subscription_id),
        provisioning_raw=subscription_id,
    )


def start_date(since: datetime | None) -> str:
    """The start-date query value: `since` in UTC ('Z'), or the far past for a full re-list."""
    moment = FULL_RELIST_START if since is None else since
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
