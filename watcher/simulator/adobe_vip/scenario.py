"""Seeded worlds and scripted order lifecycles for the Adobe VIP simulator.

`seed` fills a state from its own `random.Random(rng_seed)`: the same arguments on a fresh
state always give the same world (customer and order ids, dates, offers, quantities,
subscription ids). Customers are numbered from 1000000001 (ten digits, like Adobe's);
order ids come from the state's counter. About four orders in five are complete ("1000",
every line provisioned with a subscription id); the rest are open ("1002", blank
subscription ids). Creation dates are spread over the 20 days before `now`.

`advance` moves the world one step, drawing from the `rng` it is given in a fixed order
(customers in creation order, each customer's orders oldest first), so a seeded world and
a seeded rng replay the same story. Per step, each open order completes (order and lines
-> "1000", subscription ids filled) with probability COMPLETE_P or fails ("1004") with
FAIL_P; any order that has not failed may have one line's quantity changed (QUANTITY_P);
each customer may get a new open order (NEW_ORDER_P). Every change is returned as a
`Change`, which the admin API and the demo show.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any, Literal

from watcher.simulator import admin
from watcher.simulator.adobe_vip import orders as adobe_orders
from watcher.simulator.adobe_vip.world import AdobeVipState

FIRST_CUSTOMER = 1_000_000_001
OFFERS = ("65304578CA01A12", "65322651CA01A12", "65304921CA01A12", "80004567EA01A12")
COMPLETE_SHARE = 0.8
COMPLETE_P = 0.4
FAIL_P = 0.03
QUANTITY_P = 0.05
NEW_ORDER_P = 0.1
ChangeKind = Literal["created", "completed", "failed", "quantity_changed"]


class Change(admin.Change):
    """A step in Adobe's words: customerId, orderId, extLineItemNumber."""

    __slots__ = ()
    KEYS = ("customerId", "orderId", "extLineItemNumber")


def seed(
    state: AdobeVipState,
    *,
    customers: int,
    orders_per_customer: int,
    rng_seed: int = 7,
    now: datetime,
) -> list[str]:
    """Add `customers` customers with `orders_per_customer` orders each; their ids."""
    rng = random.Random(rng_seed)
    first = FIRST_CUSTOMER + len(state.customer_ids())
    customer_ids = [f"{first + n:010d}" for n in range(customers)]
    for customer_id in customer_ids:
        state.add_customer(customer_id)
        spread = admin.spread(rng, now=now, count=orders_per_customer, share=COMPLETE_SHARE)
        for created_at, complete in spread:
            state.create_order(customer_id, _seeded_order(rng, created_at, complete=complete))
    return customer_ids


def advance(state: AdobeVipState, rng: random.Random, now: datetime) -> list[Change]:
    """One step of every scripted lifecycle; what changed, in a deterministic order."""
    changes: list[Change] = []
    for customer_id in state.customer_ids():
        for order in reversed(state.orders(customer_id)):
            changes.extend(_step(state, order, rng))
        if rng.random() < NEW_ORDER_P:
            created = state.create_order(customer_id, _new_order(rng, now))
            changes.append(Change("created", customer_id, created["orderId"], after="1002"))
    return changes


def _step(state: AdobeVipState, order: dict[str, Any], rng: random.Random) -> list[Change]:
    changes: list[Change] = []
    if order["status"] == "1002":
        draw = rng.random()
        if draw < FAIL_P:
            return [_settle(state, order, status="1004", rng=rng)]
        if draw < FAIL_P + COMPLETE_P:
            changes.append(_settle(state, order, status="1000", rng=rng))
    if order["status"] != "1004" and rng.random() < QUANTITY_P:
        changes.append(_change_quantity(state, order, rng))
    return changes


def _settle(
    state: AdobeVipState, order: dict[str, Any], *, status: str, rng: random.Random
) -> Change:
    lines = [
        {"extLineItemNumber": line["extLineItemNumber"], "status": status}
        for line in order["lineItems"]
    ]
    if status == "1000":
        for patch, line in zip(lines, order["lineItems"], strict=True):
            patch["subscriptionId"] = line["subscriptionId"] or _subscription_id(rng)
    state.patch_order(order["customerId"], order["orderId"], {"status": status, "lineItems": lines})
    kind: ChangeKind = "completed" if status == "1000" else "failed"
    return Change(kind, order["customerId"], order["orderId"], before=order["status"], after=status)


def _change_quantity(state: AdobeVipState, order: dict[str, Any], rng: random.Random) -> Change:
    current = state.order(order["customerId"], order["orderId"])
    line = rng.choice(current["lineItems"])
    before = line["quantity"]
    after = admin.bumped(rng, before)
    patch = {"lineItems": [{"extLineItemNumber": line["extLineItemNumber"], "quantity": after}]}
    state.patch_order(order["customerId"], order["orderId"], patch)
    number = line["extLineItemNumber"]
    return Change("quantity_changed", order["customerId"], order["orderId"], number, before, after)


def _seeded_order(rng: random.Random, created_at: datetime, *, complete: bool) -> dict[str, Any]:
    status = "1000" if complete else "1002"
    order = _new_order(rng, created_at, status=status)
    for line in order["lineItems"]:
        line["subscriptionId"] = _subscription_id(rng) if complete else ""
    return order


def _new_order(rng: random.Random, created_at: datetime, *, status: str = "1002") -> dict[str, Any]:
    lines = [
        {"extLineItemNumber": number, "offerId": rng.choice(OFFERS), "quantity": rng.randint(1, 50)}
        for number in range(1, rng.randint(1, 3) + 1)
    ]
    return {
        "externalReferenceId": f"PO-{rng.randrange(10_000, 100_000)}",
        "creationDate": adobe_orders.format_time(created_at),
        "status": status,
        "lineItems": lines,
    }


def _subscription_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"
