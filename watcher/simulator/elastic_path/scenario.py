"""Seeded stores and scripted order lifecycles for the Elastic Path simulator.

`seed` fills a state from its own `random.Random(rng_seed)`: customers and accounts get
uuid4-shaped ids from that Random, orders and items from the state's, so the same arguments
on a fresh state seeded alike always give the same store. Customers' orders carry
`customer_id`, accounts' carry `account_id`. About four orders in five are settled
(complete, paid, fulfilled); the rest are fresh checkouts (incomplete, unpaid,
unfulfilled). Creation dates are spread over the 20 days before `now`.

`advance` moves the store one step, drawing from the `rng` it is given in a fixed order
(orders oldest first, then owners in order of first appearance), so a seeded store and a
seeded rng replay the same story. Per step and order:

    incomplete + unpaid  -> cancelled (CANCEL_P), or paid and processing (PAY_P)
    processing + paid    -> fulfilled and complete (FULFIL_P)
    still unfulfilled    -> one item's quantity changes (QUANTITY_P)

and each owner may get a new incomplete order (NEW_ORDER_P). Each field moves in its own
patch, so every change has its own `updated_at`; each is returned as a `Change`.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime
from typing import Any, Literal

from watcher.simulator import admin
from watcher.simulator.elastic_path.orders import StoredOrder, format_time
from watcher.simulator.elastic_path.world import ElasticPathState

SKUS = ("EP-LIC-STD-1Y", "EP-LIC-PRO-1Y", "EP-SUPPORT-GOLD", "EP-SEAT-ADDON")
SETTLED_SHARE = 0.8
CANCEL_P = 0.03
PAY_P = 0.4
FULFIL_P = 0.4
QUANTITY_P = 0.05
NEW_ORDER_P = 0.1
ChangeKind = Literal["created", "status", "payment", "shipping", "quantity"]
Owner = tuple[str, str]  # ("customer_id" | "account_id", id)


class Change(admin.Change):
    """A step in Elastic Path's words: order_id and item_id; the store owns the orders."""

    __slots__ = ()
    KEYS = (None, "order_id", "item_id")


def seed(
    state: ElasticPathState,
    *,
    customers: int,
    orders_per_customer: int,
    accounts: int = 0,
    rng_seed: int = 7,
    now: datetime,
) -> list[str]:
    """Add customers and accounts with `orders_per_customer` orders each; their ids."""
    rng = random.Random(rng_seed)
    owners: list[Owner] = [("customer_id", _uuid(rng)) for _ in range(customers)]
    owners += [("account_id", _uuid(rng)) for _ in range(accounts)]
    for owner in owners:
        spread = admin.spread(rng, now=now, count=orders_per_customer, share=SETTLED_SHARE)
        for created_at, settled in spread:
            state.create_order(_new_order(rng, owner, created_at, settled=settled))
    return [owner_id for _, owner_id in owners]


def advance(state: ElasticPathState, rng: random.Random, now: datetime) -> list[Change]:
    """One step of every scripted lifecycle; what changed, in a deterministic order."""
    changes: list[Change] = []
    for order in state.all_orders():
        changes.extend(_step(state, order, rng))
    owners = [("customer_id", o) for o in state.owners("customer_id")]
    owners += [("account_id", o) for o in state.owners("account_id")]
    for owner in owners:
        if rng.random() < NEW_ORDER_P:
            created = state.create_order(_new_order(rng, owner, now, settled=False))
            changes.append(Change("created", None, created["id"], after="incomplete"))
    return changes


def _step(state: ElasticPathState, order: StoredOrder, rng: random.Random) -> list[Change]:
    changes: list[Change] = []
    if order.status == "incomplete" and order.payment == "unpaid":
        draw = rng.random()
        if draw < CANCEL_P:
            return [_move(state, order, "status", "cancelled")]
        if draw < CANCEL_P + PAY_P:
            changes += [_move(state, order, "payment", "paid")]
            changes += [_move(state, order, "status", "processing")]
    elif _fulfillable(order) and rng.random() < FULFIL_P:
        changes += [_move(state, order, "shipping", "fulfilled")]
        changes += [_move(state, order, "status", "complete")]
    if order.shipping == "unfulfilled" and order.items and rng.random() < QUANTITY_P:
        changes.append(_change_quantity(state, order, rng))
    return changes


def _fulfillable(order: StoredOrder) -> bool:
    return order.status == "processing" and order.shipping == "unfulfilled"


def _move(state: ElasticPathState, order: StoredOrder, kind: ChangeKind, after: str) -> Change:
    before = getattr(order, kind)
    state.patch_order(order.id, {kind: after})
    return Change(kind, None, order.id, before=before, after=after)


def _change_quantity(state: ElasticPathState, order: StoredOrder, rng: random.Random) -> Change:
    item = rng.choice(order.items)
    before = item.quantity
    after = admin.bumped(rng, before)
    state.patch_order(order.id, {"items": [{"id": item.id, "quantity": after}]})
    return Change("quantity", None, order.id, item.id, before, after)


def _new_order(
    rng: random.Random, owner: Owner, created_at: datetime, *, settled: bool
) -> dict[str, Any]:
    items = [
        {
            "sku": rng.choice(SKUS),
            "quantity": rng.randint(1, 50),
            "unit_amount": rng.choice((900, 2500, 12000)),
        }
        for _ in range(rng.randint(1, 3))
    ]
    order: dict[str, Any] = {
        owner[0]: owner[1],
        "external_ref": f"PO-{rng.randrange(10_000, 100_000)}",
        "created_at": format_time(created_at),
        "items": items,
    }
    if settled:
        order |= {"status": "complete", "payment": "paid", "shipping": "fulfilled"}
    return order


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
