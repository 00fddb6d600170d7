"""Seeded worlds and scripted order lifecycles for the Partner Center simulator.

`seed` fills a state from its own `random.Random(rng_seed)`: the same arguments on a fresh
state always give the same world. Customers are tenant GUIDs drawn from that Random; order
ids come from the state's counter. About four orders in five are completed, every line
fulfilled with a subscription id; the rest are pending, lines prefulfillmentPending and
without subscription ids. Creation dates are spread over the 20 days before `now`, so
seeded orders are already in the collection.

`advance` moves the world one step, drawing from the `rng` it is given in a fixed order
(customers in creation order, each customer's orders oldest first), so a seeded world and a
seeded rng replay the same story. Per step:

- a pending order is cancelled (CANCEL_P: status cancelled, lines unfulfilled) or completes
  (COMPLETE_P: status completed, subscription ids appear; lines stay prefulfillmentPending);
- a completed order with lines still prefulfillmentPending has them fulfilled (FULFIL_P);
- a completed order may have one line's quantity changed (QUANTITY_P);
- each customer may get a new pending order (NEW_ORDER_P), visible by id at once and in
  the collection only after the state's listing lag.

Every change is returned as a `Change`, which the admin API and the demo show.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime
from typing import Any, Literal

from watcher.simulator import admin
from watcher.simulator.partner_center import orders as pc_orders
from watcher.simulator.partner_center.world import PartnerCenterState, StoredOrder

OFFERS = (
    ("CFQ7TTC0LH18:0001:CFQ7TTC0K5DR", "Microsoft 365 Business Basic"),
    ("CFQ7TTC0LDPB:0001:CFQ7TTC0K8ZN", "Microsoft 365 Business Standard"),
    ("CFQ7TTC0LCHC:0002:CFQ7TTC0K9T6", "Microsoft 365 E3"),
    ("CFQ7TTC0LH16:0001:CFQ7TTC0KDCP", "Exchange Online (Plan 1)"),
)
COMPLETE_SHARE = 0.8
COMPLETE_P = 0.4
CANCEL_P = 0.03
FULFIL_P = 0.5
QUANTITY_P = 0.05
NEW_ORDER_P = 0.1
ChangeKind = Literal["created", "completed", "cancelled", "fulfilled", "quantity_changed"]


class Change(admin.Change):
    """A step in Partner Center's words: customerId, orderId, lineItemNumber."""

    __slots__ = ()
    KEYS = ("customerId", "orderId", "lineItemNumber")


def seed(
    state: PartnerCenterState,
    *,
    customers: int,
    orders_per_customer: int,
    rng_seed: int = 2,
    now: datetime,
) -> list[str]:
    """Add `customers` customers with `orders_per_customer` orders each; their tenant ids."""
    rng = random.Random(rng_seed)
    customer_ids = [_guid(rng) for _ in range(customers)]
    for customer_id in customer_ids:
        state.add_customer(customer_id)
        spread = admin.spread(rng, now=now, count=orders_per_customer, share=COMPLETE_SHARE)
        for created_at, complete in spread:
            state.create_order(customer_id, _seeded_order(rng, created_at, complete=complete))
    return customer_ids


def advance(state: PartnerCenterState, rng: random.Random, now: datetime) -> list[Change]:
    """One step of every scripted lifecycle; what changed, in a deterministic order."""
    changes: list[Change] = []
    for customer_id in state.customer_ids():
        for stored in state.stored(customer_id):
            changes.extend(_step(state, customer_id, stored, rng))
        if rng.random() < NEW_ORDER_P:
            created = state.create_order(customer_id, _new_order(rng, now))
            changes.append(Change("created", customer_id, created["id"], after="pending"))
    return changes


def _step(
    state: PartnerCenterState, customer_id: str, stored: StoredOrder, rng: random.Random
) -> list[Change]:
    order_id, status = stored.payload["id"], stored.payload["status"]
    if status == "pending":
        draw = rng.random()
        if draw < CANCEL_P:
            return [_cancel(state, customer_id, stored)]
        if draw < CANCEL_P + COMPLETE_P:
            return [_complete(state, customer_id, stored, rng)]
        return []
    if status != "completed":
        return []
    changes: list[Change] = []
    waiting = [n for n, s in stored.provisioning.items() if s == "prefulfillmentPending"]
    if waiting and rng.random() < FULFIL_P:
        state.set_provisioning(customer_id, order_id, {str(n): "fulfilled" for n in waiting})
        changes.extend(
            Change("fulfilled", customer_id, order_id, n, "prefulfillmentPending", "fulfilled")
            for n in waiting
        )
    if rng.random() < QUANTITY_P:
        changes.append(_change_quantity(state, customer_id, stored, rng))
    return changes


def _cancel(state: PartnerCenterState, customer_id: str, stored: StoredOrder) -> Change:
    order_id = stored.payload["id"]
    lines = [line["lineItemNumber"] for line in stored.payload["lineItems"]]
    state.patch_order(customer_id, order_id, {"status": "cancelled"})
    state.set_provisioning(customer_id, order_id, {str(n): "unfulfilled" for n in lines})
    return Change("cancelled", customer_id, order_id, before="pending", after="cancelled")


def _complete(
    state: PartnerCenterState, customer_id: str, stored: StoredOrder, rng: random.Random
) -> Change:
    lines = [
        {"lineItemNumber": line["lineItemNumber"], "subscriptionId": _guid(rng)}
        for line in stored.payload["lineItems"]
        if not line.get("subscriptionId")
    ]
    state.patch_order(
        customer_id, stored.payload["id"], {"status": "completed", "lineItems": lines}
    )
    return Change(
        "completed", customer_id, stored.payload["id"], before="pending", after="completed"
    )


def _change_quantity(
    state: PartnerCenterState, customer_id: str, stored: StoredOrder, rng: random.Random
) -> Change:
    line = rng.choice(stored.payload["lineItems"])
    before = line["quantity"]
    after = admin.bumped(rng, before)
    number = line["lineItemNumber"]
    patch = {"lineItems": [{"lineItemNumber": number, "quantity": after}]}
    state.patch_order(customer_id, stored.payload["id"], patch)
    return Change("quantity_changed", customer_id, stored.payload["id"], number, before, after)


def _seeded_order(rng: random.Random, created_at: datetime, *, complete: bool) -> dict[str, Any]:
    order = _new_order(rng, created_at, status="completed" if complete else "pending")
    if complete:
        for line in order["lineItems"]:
            line["subscriptionId"] = _guid(rng)
    return order


def _new_order(
    rng: random.Random, created_at: datetime, *, status: str = "pending"
) -> dict[str, Any]:
    lines = []
    for number in range(rng.randint(1, 3)):
        offer, name = rng.choice(OFFERS)
        lines.append(
            {
                "lineItemNumber": number,
                "offerId": offer,
                "friendlyName": name,
                "quantity": rng.randint(1, 50),
                "termDuration": rng.choice(("P1M", "P1Y")),
            }
        )
    return {
        "creationDate": pc_orders.format_time(created_at),
        "status": status,
        "lineItems": lines,
    }


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
