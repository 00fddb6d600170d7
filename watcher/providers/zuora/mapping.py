"""Zuora Quickstart orders as canonical Orders: the status mapping (pure).

An order is keyed by its `order_number` (stable, human-readable, accepted by
`GET /v2/orders/{order_id}`), or its id when a reply has no number. Its lines are its
one-off order line items, then the subscription items of its subscriptions:

- an order line item is keyed by its `id`; quantity from `quantity`; status from its
  `state`; provisioning from fulfilment: canceled -> cancelled, fulfilled in full ->
  provisioned, otherwise pending (raw "<fulfilled>/<quantity> fulfilled"), unknown (raw "")
  when it needs no fulfilment;
- a subscription item is keyed by its `subscription_item_number`, because Zuora gives the
  item a new `id` with every subscription version (each amendment), so an id key would
  turn a quantity change into a removal and an addition. Its subscription id is the
  `subscription_number`, stable across versions for the same reason. Status from the
  item's `state`, provisioning from the subscription's `state` (raw kept).

Order `state` (the document's enum; v1's "cancelled"/"completed" spellings accepted too):

    draft, scheduled, pending -> pending      executing -> processing
    complete -> completed   failed -> failed   canceled -> cancelled
    missing (Zuora's own samples omit it) or anything else -> unknown, raw kept

Subscription `state` as line provisioning:

    active -> provisioned    draft, pending_activation, pending_acceptance -> pending
    canceled, expired -> cancelled    paused (v1: suspended) -> unknown    else unknown

A paused subscription is a customer's decision, not a failed provisioning, and it is
neither pending nor gone: "unknown" with the raw "paused" lets consumers route on it.

Expanded line items with a `next_page` are fetched by the adapter; nested
subscription plans or items with a `next_page` cannot be continued and make the reply
unusable (MalformedReplyError) rather than silently partial.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from watcher.core.errors import MalformedReplyError
from watcher.core.models import LineItem, Order, OrderStatus, Provisioning
from watcher.providers.zuora import replies

PROVIDER = "zuora"
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
_ORDER_STATES = {
    "draft": OrderStatus.PENDING,
    "scheduled": OrderStatus.PENDING,
    "pending": OrderStatus.PENDING,
    "executing": OrderStatus.PROCESSING,
    "complete": OrderStatus.COMPLETED,
    "completed": OrderStatus.COMPLETED,
    "failed": OrderStatus.FAILED,
    "canceled": OrderStatus.CANCELLED,
    "cancelled": OrderStatus.CANCELLED,
}
_LINE_STATES = {
    "pending": OrderStatus.PENDING,
    "booked": OrderStatus.PROCESSING,
    "sent_to_billing": OrderStatus.PROCESSING,
    "complete": OrderStatus.COMPLETED,
    "canceled": OrderStatus.CANCELLED,
    "cancelled": OrderStatus.CANCELLED,
}
_ITEM_STATES = {
    "inactive": OrderStatus.PENDING,
    "active": OrderStatus.COMPLETED,
    "expired": OrderStatus.CANCELLED,
}
_SUBSCRIPTION_STATES = {
    "active": Provisioning.PROVISIONED,
    "draft": Provisioning.PENDING,
    "pending_activation": Provisioning.PENDING,
    "pending_acceptance": Provisioning.PENDING,
    "canceled": Provisioning.CANCELLED,
    "cancelled": Provisioning.CANCELLED,
    "expired": Provisioning.CANCELLED,
    "paused": Provisioning.UNKNOWN,
    "suspended": Provisioning.UNKNOWN,
}


def order_status(raw: str | None) -> OrderStatus:
    return _ORDER_STATES.get((raw or "").strip().lower(), OrderStatus.UNKNOWN)


def line_status(raw: str) -> OrderStatus:
    return _LINE_STATES.get(raw.strip().lower(), OrderStatus.UNKNOWN)


def item_status(raw: str) -> OrderStatus:
    return _ITEM_STATES.get(raw.strip().lower(), OrderStatus.UNKNOWN)


def subscription_provisioning(raw: str) -> Provisioning:
    return _SUBSCRIPTION_STATES.get(raw.strip().lower(), Provisioning.UNKNOWN)


def line_provisioning(line: replies.VendorLine) -> tuple[Provisioning, str]:
    """Provisioning of a one-off line, from its fulfilment, with its raw form."""
    if line_status(line.state) is OrderStatus.CANCELLED:
        return Provisioning.CANCELLED, line.state
    if not line.requires_fulfillment:
        return Provisioning.UNKNOWN, ""
    fulfilled = line.quantity_fulfilled or 0.0
    raw = f"{fulfilled:g}/{line.quantity:g} fulfilled"
    done = fulfilled >= line.quantity > 0
    return (Provisioning.PROVISIONED if done else Provisioning.PENDING), raw


def first_lines(order: replies.VendorOrder) -> tuple[list[replies.VendorLine], str | None]:
    """The order's line items in this reply and the cursor of the rest, if any."""
    if order.line_items is None:
        return [], None
    if isinstance(order.line_items, replies.LinePage):
        return list(order.line_items.data), order.line_items.next_page
    return list(order.line_items), None


def to_order(
    order: replies.VendorOrder,
    *,
    lines: list[replies.VendorLine],
    source: str,
    customer_id: str,
    what: str,
) -> Order:
    """The canonical order, its line items being `lines` (every page of them)."""
    items = [_from_line(line) for line in lines]
    items += [
        _from_item(item, sub)
        for sub in order.subscriptions
        for item in _subscription_items(sub, what=what)
    ]
    unique: dict[str, LineItem] = {}
    for item in items:
        unique.setdefault(item.key, item)
    return Order(
        provider=PROVIDER,
        source=source,
        customer_id=customer_id,
        order_id=order.key,
        status=order_status(order.state),
        status_raw=order.state or "",
        created_at=order.created_time,
        line_items=tuple(unique.values()),
    )


def _subscription_items(sub: replies.VendorSubscription, *, what: str) -> list[replies.VendorItem]:
    where = f"{what}: subscription {sub.subscription_number}"
    plans = _whole(sub.subscription_plans, what=where, name="subscription_plans")
    for action in sub.actions:
        plans += _whole(action.subscription_plans, what=where, name="subscription_plans")
    return [
        item
        for plan in plans
        for item in _whole(plan.subscription_items, what=where, name="subscription_items")
    ]


class _Page(Protocol[T_co]):
    """A nested list in its `{data, next_page}` shape."""

    @property
    def data(self) -> Sequence[T_co]: ...

    @property
    def next_page(self) -> str | None: ...


def _whole(listed: list[T] | _Page[T] | None, *, what: str, name: str) -> list[T]:
    """A nested list in either shape; one with a next page cannot be read in full here."""
    if listed is None or isinstance(listed, list):
        return list(listed or [])
    if listed.next_page:
        raise MalformedReplyError(
            f"{what}: {name} has a next page, which the order reply cannot continue"
        )
    return list(listed.data)


def _from_line(line: replies.VendorLine) -> LineItem:
    provisioning, raw = line_provisioning(line)
    return LineItem(
        key=line.id,
        offer=line.product_code or line.price_id or line.name,
        quantity=round(line.quantity),
        status=line_status(line.state),
        status_raw=line.state,
        provisioning=provisioning,
        provisioning_raw=raw,
    )


def _from_item(item: replies.VendorItem, sub: replies.VendorSubscription) -> LineItem:
    return LineItem(
        key=item.subscription_item_number,
        offer=item.price_id or item.name,
        quantity=round(item.quantity or 0),
        status=item_status(item.state),
        status_raw=item.state,
        subscription_id=sub.subscription_number,
        provisioning=subscription_provisioning(sub.state),
        provisioning_raw=sub.state,
    )
