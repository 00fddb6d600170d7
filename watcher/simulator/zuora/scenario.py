"""Seeded worlds and scripted order lifecycles for the Zuora Quickstart simulator.

The shared `lifecycle.Lifecycle` drives both; this module says what is Zuora's own.
`seed` fills a state from its own `random.Random(rng_seed)`: the same arguments on a fresh
state give the same world. Accounts get ids `2c92c0f8` + 24 hex digits counting from 1.
Each order has one subscription with one or two subscription items and, one time in two,
a one-off order line item that needs fulfilment. About three orders in five are complete
(subscription active, items active, lines complete and fulfilled); the rest are pending
(subscription pending_activation, items inactive, lines pending). Orders are created
within the 20 days before `now`.

`advance` moves the world one step, drawing from the `rng` it is given in a fixed order
(accounts in creation order, each account's orders oldest first). A pending order
completes (ODDS.complete; its subscriptions pending_activation -> active, items active, lines
complete and fulfilled), is canceled (ODDS.cancel; subscriptions canceled) or fails (ODDS.fail);
any order that is not canceled or failed may get a subscription item's quantity changed
(ODDS.quantity); each account may get a new pending order (ODDS.new_order). Every change comes
back as a `Change`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal, Unpack

from watcher.simulator import admin, lifecycle
from watcher.simulator.lifecycle import Seeding
from watcher.simulator.zuora.orders import format_time
from watcher.simulator.zuora.world import ZuoraState

ODDS = lifecycle.Odds(
    settled=0.6, complete=0.4, cancel=0.05, fail=0.03, quantity=0.05, new_order=0.1
)
PRODUCTS = ("SKU-KIT-1", "SKU-SETUP-2", "SKU-TRAINING-3")
ChangeKind = Literal["created", "completed", "canceled", "failed", "quantity_changed"]
_KINDS: dict[str, ChangeKind] = {
    "complete": "completed",
    "canceled": "canceled",
    "failed": "failed",
}


class Change(admin.Change):
    """A step in Zuora's words: account_id, order_number, line."""

    __slots__ = ()
    KEYS = ("account_id", "order_number", "line")


def account_id(number: int) -> str:
    return f"2c92c0f8{number:024x}"


def new_order(rng: random.Random, created: datetime, *, complete: bool) -> dict[str, Any]:
    """A partial order: one subscription, sometimes a one-off line, pending or complete."""
    items = [
        {"quantity": rng.randint(1, 50), "state": "active" if complete else "inactive"}
        for _ in range(rng.randint(1, 2))
    ]
    order: dict[str, Any] = {
        "created_time": format_time(created),
        "state": "complete" if complete else "pending",
        "description": f"PO-{rng.randrange(10_000, 100_000)}",
        "subscriptions": [
            {
                "state": "active" if complete else "pending_activation",
                "subscription_items": items,
            }
        ],
    }
    if rng.random() < 0.5:
        quantity = rng.randint(1, 5)
        order["line_items"] = [
            {
                "product_code": rng.choice(PRODUCTS),
                "quantity": quantity,
                "quantity_fulfilled": quantity if complete else 0,
                "state": "complete" if complete else "pending",
            }
        ]
    return order


class _Script(lifecycle.Script[ZuoraState, str, dict[str, Any]]):
    def new_owners(self, count: int) -> list[str]:
        first = len(self.state.account_ids()) + 1
        return [account_id(first + n) for n in range(count)]

    def add_owner(self, owner: str) -> None:
        self.state.add_account(owner)

    def seed_order(self, owner: str, created_at: datetime, settled: bool) -> None:
        self.state.create_order(owner, new_order(self.rng, created_at, complete=settled))

    def rounds(self) -> Iterator[Round]:
        for account in self.state.account_ids():
            yield list(self.state.orders(account)), [account]

    def step(self, order: dict[str, Any]) -> list[Change]:
        return _step(self.state, order, self.rng)

    def open_order(self, owner: str, now: datetime) -> Change:
        created = self.state.create_order(owner, new_order(self.rng, now, complete=False))
        return Change("created", owner, created["order_number"], after="pending")


Round = lifecycle.Round[dict[str, Any], str]
LIFECYCLE = lifecycle.Lifecycle(_Script, ODDS)
advance = LIFECYCLE.advance


def seed(
    state: ZuoraState, *, accounts: int, orders_per_account: int, **seeding: Unpack[Seeding]
) -> list[str]:
    """Add `accounts` accounts with `orders_per_account` orders each; their ids."""
    # The driver counts owners as customers; Zuora's owners are accounts.
    return LIFECYCLE.seed(
        state, customers=accounts, orders_per_customer=orders_per_account, **seeding
    )


def _step(state: ZuoraState, order: dict[str, Any], rng: random.Random) -> list[Change]:
    changes: list[Change] = []
    if order["state"] in ("pending", "executing", "scheduled"):
        draw = rng.random()
        if draw < ODDS.fail:
            return [_settle(state, order, "failed")]
        if draw < ODDS.fail + ODDS.cancel:
            return [_settle(state, order, "canceled")]
        if draw < ODDS.fail + ODDS.cancel + ODDS.complete:
            changes.append(_settle(state, order, "complete"))
    if rng.random() < ODDS.quantity:
        changed = _change_quantity(state, order["order_number"], rng)
        changes.extend([changed] if changed else [])
    return changes


def _settle(state: ZuoraState, order: dict[str, Any], outcome: str) -> Change:
    patch: dict[str, Any] = {"state": outcome}
    if outcome == "complete":
        patch["subscriptions"] = [_activated(sub) for sub in order["subscriptions"]]
        patch["line_items"] = [
            {"id": line["id"], "state": "complete", "quantity_fulfilled": line["quantity"]}
            for line in order["line_items"]
        ]
    elif outcome == "canceled":
        patch["subscriptions"] = [
            {"subscription_number": sub["subscription_number"], "state": "canceled"}
            for sub in order["subscriptions"]
        ]
    state.patch_order(order["order_number"], patch)
    kind = _KINDS[outcome]
    return Change(
        kind, order["account_id"], order["order_number"], before=order["state"], after=outcome
    )


def _activated(sub: dict[str, Any]) -> dict[str, Any]:
    items = [item for plan in sub["subscription_plans"] for item in plan["subscription_items"]]
    return {
        "subscription_number": sub["subscription_number"],
        "state": "active",
        "subscription_items": [
            {"subscription_item_number": item["subscription_item_number"], "state": "active"}
            for item in items
        ],
    }


def _change_quantity(state: ZuoraState, order_number: str, rng: random.Random) -> Change | None:
    order = state.order(order_number)
    items = [
        (sub["subscription_number"], item)
        for sub in order["subscriptions"]
        for plan in sub["subscription_plans"]
        for item in plan["subscription_items"]
    ]
    if not items:
        return None
    subscription_number, item = rng.choice(items)
    before = item["quantity"]
    after = admin.bumped(rng, before)
    number = item["subscription_item_number"]
    change = {"subscription_item_number": number, "quantity": after}
    patch = {
        "subscriptions": [
            {"subscription_number": subscription_number, "subscription_items": [change]}
        ]
    }
    state.patch_order(order_number, patch)
    return Change("quantity_changed", order["account_id"], order_number, number, before, after)
