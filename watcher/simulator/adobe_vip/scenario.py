"""Seeded worlds and scripted order lifecycles for the Adobe VIP simulator.

The shared `lifecycle.Lifecycle` drives both; this module says what is Adobe's own.
`seed` fills a state from its own `random.Random(rng_seed)`: the same arguments on a fresh
state always give the same world (customer and order ids, dates, offers, quantities,
subscription ids). Customers are numbered from 1000000001 (ten digits, like Adobe's);
order ids come from the state's counter. About four orders in five are complete ("1000",
every line provisioned with a subscription id); the rest are open ("1002", blank
subscription ids). Creation dates are spread over the 20 days before `now`.

`advance` moves the world one step, drawing from the `rng` it is given in a fixed order
(customers in creation order, each customer's orders oldest first), so a seeded world and
a seeded rng replay the same story. Per step, each open order completes (order and lines
-> "1000", subscription ids filled) with probability ODDS.complete or fails ("1004")
with ODDS.fail; any order that has not failed may have one line's quantity changed
(ODDS.quantity); each customer may get a new open order (ODDS.new_order). Every change
is returned as a `Change`, which the admin API and the demo show.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

from watcher.simulator import admin, lifecycle
from watcher.simulator.adobe_vip import orders as adobe_orders
from watcher.simulator.adobe_vip.world import AdobeVipState

FIRST_CUSTOMER = 1_000_000_001
OFFERS = ("65304578CA01A12", "65322651CA01A12", "65304921CA01A12", "80004567EA01A12")
ODDS = lifecycle.Odds(settled=0.8, complete=0.4, fail=0.03, quantity=0.05, new_order=0.1)
ChangeKind = Literal["created", "completed", "failed", "quantity_changed"]


class Change(admin.Change):
    """A step in Adobe's words: customerId, orderId, extLineItemNumber."""

    __slots__ = ()
    KEYS = ("customerId", "orderId", "extLineItemNumber")


class _Script(lifecycle.Script[AdobeVipState, str, dict[str, Any]]):
    def new_owners(self, count: int) -> list[str]:
        first = FIRST_CUSTOMER + len(self.state.customer_ids())
        return [f"{first + n:010d}" for n in range(count)]

    def add_owner(self, owner: str) -> None:
        self.state.add_customer(owner)

    def seed_order(self, owner: str, created_at: datetime, settled: bool) -> None:
        self.state.create_order(owner, _seeded_order(self.rng, created_at, complete=settled))

    def rounds(self) -> Iterator[Round]:
        # The world lists a customer's orders newest first; they step oldest first.
        for customer_id in self.state.customer_ids():
            yield reversed(self.state.orders(customer_id)), [customer_id]

    def step(self, order: dict[str, Any]) -> list[Change]:
        return _step(self.state, order, self.rng)

    def open_order(self, owner: str, now: datetime) -> Change:
        created = self.state.create_order(owner, _new_order(self.rng, now))
        return Change("created", owner, created["orderId"], after="1002")


Round = lifecycle.Round[dict[str, Any], str]
LIFECYCLE = lifecycle.Lifecycle(_Script, ODDS)
seed = LIFECYCLE.seed
advance = LIFECYCLE.advance


def _step(state: AdobeVipState, order: dict[str, Any], rng: random.Random) -> list[Change]:
    changes: list[Change] = []
    if order["status"] == "1002":
        draw = rng.random()
        if draw < ODDS.fail:
            return [_settle(state, order, status="1004", rng=rng)]
        if draw < ODDS.fail + ODDS.complete:
            changes.append(_settle(state, order, status="1000", rng=rng))
    if order["status"] != "1004" and rng.random() < ODDS.quantity:
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
