"""Seeded worlds and scripted order lifecycles for the Partner Center simulator.

The shared `lifecycle.Lifecycle` drives both; this module says what is Partner Center's
own. `seed` fills a state from its own `random.Random(rng_seed)`: the same arguments on a fresh
state always give the same world. Customers are tenant GUIDs drawn from that Random; order
ids come from the state's counter. About four orders in five are completed, every line
fulfilled with a subscription id; the rest are pending, lines prefulfillmentPending and
without subscription ids. Creation dates are spread over the 20 days before `now`, so
seeded orders are already in the collection.

`advance` moves the world one step, drawing from the `rng` it is given in a fixed order
(customers in creation order, each customer's orders oldest first), so a seeded world and a
seeded rng replay the same story. Per step:

- a pending order is cancelled (ODDS.cancel: status cancelled, lines unfulfilled) or completes
  (ODDS.complete: status completed, subscription ids appear; lines stay prefulfillmentPending);
- a completed order with lines still prefulfillmentPending has them fulfilled (ODDS.fulfil);
- a completed order may have one line's quantity changed (ODDS.quantity);
- each customer may get a new pending order (ODDS.new_order), visible by id at once and in
  the collection only after the state's listing lag.

Every change is returned as a `Change`, which the admin API and the demo show.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

from watcher.simulator import admin, lifecycle
from watcher.simulator.partner_center import orders as pc_orders
from watcher.simulator.partner_center.world import PartnerCenterState, StoredOrder

OFFERS = (
    ("CFQ7TTC0LH18:0001:CFQ7TTC0K5DR", "Microsoft 365 Business Basic"),
    ("CFQ7TTC0LDPB:0001:CFQ7TTC0K8ZN", "Microsoft 365 Business Standard"),
    ("CFQ7TTC0LCHC:0002:CFQ7TTC0K9T6", "Microsoft 365 E3"),
    ("CFQ7TTC0LH16:0001:CFQ7TTC0KDCP", "Exchange Online (Plan 1)"),
)
ODDS = lifecycle.Odds(
    settled=0.8, complete=0.4, cancel=0.03, fulfil=0.5, quantity=0.05, new_order=0.1
)
ChangeKind = Literal["created", "completed", "cancelled", "fulfilled", "quantity_changed"]


class Change(admin.Change):
    """A step in Partner Center's words: customerId, orderId, lineItemNumber."""

    __slots__ = ()
    KEYS = ("customerId", "orderId", "lineItemNumber")


class _Script(lifecycle.Script[PartnerCenterState, str, tuple[str, StoredOrder]]):
    def new_owners(self, count: int) -> list[str]:
        return [_guid(self.rng) for _ in range(count)]

    def add_owner(self, owner: str) -> None:
        self.state.add_customer(owner)

    def seed_order(self, owner: str, created_at: datetime, settled: bool) -> None:
        self.state.create_order(owner, _seeded_order(self.rng, created_at, complete=settled))

    def rounds(self) -> Iterator[Round]:
        # A stored order does not name its tenant, so each goes with the tenant's id.
        for tenant in self.state.customer_ids():
            yield [(tenant, stored) for stored in self.state.stored(tenant)], [tenant]

    def step(self, order: tuple[str, StoredOrder]) -> list[Change]:
        return _step(self.state, *order, self.rng)

    def open_order(self, owner: str, now: datetime) -> Change:
        created = self.state.create_order(owner, _new_order(self.rng, now))
        return Change("created", owner, created["id"], after="pending")


Round = lifecycle.Round[tuple[str, StoredOrder], str]
LIFECYCLE = lifecycle.Lifecycle(_Script, ODDS, rng_seed=2)
seed = LIFECYCLE.seed
advance = LIFECYCLE.advance


def _step(
    state: PartnerCenterState, customer_id: str, stored: StoredOrder, rng: random.Random
) -> list[Change]:
    order_id, status = stored.payload["id"], stored.payload["status"]
    if status == "pending":
        draw = rng.random()
        if draw < ODDS.cancel:
            return [_cancel(state, customer_id, stored)]
        if draw < ODDS.cancel + ODDS.complete:
            return [_complete(state, customer_id, stored, rng)]
        return []
    if status != "completed":
        return []
    changes: list[Change] = []
    waiting = [n for n, s in stored.provisioning.items() if s == "prefulfillmentPending"]
    if waiting and rng.random() < ODDS.fulfil:
        state.set_provisioning(customer_id, order_id, {str(n): "fulfilled" for n in waiting})
        changes.extend(
            Change("fulfilled", customer_id, order_id, n, "prefulfillmentPending", "fulfilled")
            for n in waiting
        )
    if rng.random() < ODDS.quantity:
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
