"""Elastic Path Commerce Cloud in the simulator: the world behind its vendor routes.

`ElasticPathState` is one store: its orders (each with a customer or an account, or both)
besides what every world has (`server.World`: clock, Random, fault book, request log,
client-credentials tokens). Orders are kept sorted by (created_at, id) and found by id;
listing scans them, which is plenty for a simulated store.

Time comes only from the injected clock (token expiry, created_at and updated_at of new
and changed orders), ids only from the injected Random (uuid4-shaped), so a seeded world is
the same on every run. Every change moves the order's `updated_at` forward, by at least a
millisecond when the clock stands still, so incremental listings by `updated_at` always
see it.
"""

from __future__ import annotations

import random
import uuid
from bisect import insort
from datetime import datetime
from typing import Any, Unpack

from aiohttp import web

from watcher.simulator.elastic_path import edits, listing, orders
from watcher.simulator.elastic_path.orders import ApiError, StoredOrder
from watcher.simulator.server import Clock, Credentials, Tuning, World, utc_now

NAME = "elastic_path"
CLIENT_ID = "ep-sim-client"
CLIENT_SECRET = "ep-sim-secret"
CREDENTIALS = Credentials(CLIENT_ID, CLIENT_SECRET)


def _sort_key(order: StoredOrder) -> tuple[datetime, str]:
    return (order.created_at, order.id)


class ElasticPathState(World[str]):
    """One simulated store: its orders, besides what every world has."""

    ACCEPTS = CREDENTIALS
    TOKEN_TTL_S = 3600

    def __init__(
        self, clock: Clock = utc_now, rng: random.Random | None = None, **tuning: Unpack[Tuning]
    ) -> None:
        super().__init__(clock, rng, **tuning)
        self._orders: list[StoredOrder] = []
        self._by_id: dict[str, StoredOrder] = {}
        self.offset_cap = listing.OFFSET_CAP  # the deepest page[offset] served

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def issue_token(self, client_id: str, client_secret: str) -> dict[str, Any] | None:
        """A client-credentials token reply, None for any other credentials."""
        if not self.accepts(client_id, client_secret):
            return None
        token = f"{self.rng.getrandbits(160):040x}"
        expires_at = self.tokens.add(token, ttl_s=self.token_ttl_s, kind="bearer")
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.token_ttl_s,
            "expires": int(expires_at.timestamp()),
            "identifier": "client_credentials",
        }

    def create_order(self, partial: object) -> dict[str, Any]:
        """Store an order built from an admin body; the order as the API shows it."""
        order = edits.build(partial, new_id=self.new_id, now=self.clock())
        if order.id in self._by_id:
            raise orders.invalid(f"an order with id {order.id} exists")
        insort(self._orders, order, key=_sort_key)
        self._by_id[order.id] = order
        return orders.render_order(order)

    def patch_order(self, order_id: str, patch: object) -> dict[str, Any]:
        order = self.stored(order_id)
        edits.patch(order, patch, new_id=self.new_id, now=self.clock())
        return orders.render_order(order)

    def stored(self, order_id: str) -> StoredOrder:
        """The order record itself (for scenarios); ApiError 404 when there is none."""
        order = self._by_id.get(order_id)
        if order is None:
            raise ApiError(404, "Not Found", f"No order found with id {order_id}")
        return order

    def all_orders(self) -> list[StoredOrder]:
        """Every order, oldest first. Treat them as read-only; change them by patching."""
        return list(self._orders)

    def order(self, order_id: str) -> dict[str, Any]:
        return orders.render_order(self.stored(order_id))

    def items(self, order_id: str) -> list[dict[str, Any]]:
        order = self.stored(order_id)
        return [orders.render_item(item, currency=order.currency) for item in order.items]

    def owners(self, attribute: str) -> list[str]:
        """The distinct customer_id or account_id values, in order of first appearance."""
        seen: dict[str, None] = {}
        for order in self._orders:
            if (owner := getattr(order, attribute)) is not None:
                seen.setdefault(owner, None)
        return list(seen)

    def list_orders(self, query: listing.Query, *, url: str) -> dict[str, Any]:
        matches = listing.sorted_matches(self._orders, query, offset_cap=self.offset_cap)
        return listing.page(
            matches,
            query,
            url=url,
            render=orders.render_order,
            items=lambda order: self.items(order.id),
        )


STATE = web.AppKey("elastic_path_state", ElasticPathState)
