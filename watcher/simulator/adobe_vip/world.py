"""Adobe VIP Marketplace (Commerce Partner API v3): the simulated world.

`AdobeVipState` is the world: customers and their orders, issued tokens and Adobe's
idempotency cache, on top of what every world has (`server.World`: clock, Random, fault
book, request log, token book).

- Each customer's orders stay sorted by (creationDate, orderId); a list call bisects the
  date window and walks it backwards (newest first), so it costs that customer's orders,
  never the world's. Orders are the JSON-ready dicts the API returns (`orders`).
- The idempotency cache: once a reply was produced for an `X-Correlation-Id`, any later
  call with the same id gets that reply again, status and body, for 10 days; that is why
  a poller must send a fresh id on every call. An `X-Request-Id` names one call: seen
  again with a different correlation id, it is rejected (4120). Both memories are bounded
  to the newest `max_entries` and age on the injected clock. The cache keeps the reply's
  bytes, so a later edit never leaks into a cached reply.
- Time comes only from the injected clock (token expiry, the default date window, cache
  age, default creationDate); randomness only from the injected Random (tokens). Order ids
  come from a counter, so a seeded world is the same on every run.
"""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right, insort
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Unpack

from aiohttp import web
from multidict import MultiMapping

from watcher.simulator.adobe_vip import listing
from watcher.simulator.adobe_vip import orders as adobe_orders
from watcher.simulator.adobe_vip.orders import ApiError
from watcher.simulator.server import Clock, Credentials, Tuning, World, utc_now

NAME = "adobe_vip"
CLIENT_ID = "sim-client"
CLIENT_SECRET = "sim-secret"
CREDENTIALS = Credentials(CLIENT_ID, CLIENT_SECRET)
FIRST_ORDER_NUMBER = 5_120_000_001
RESELLER_ID = "1000404757"  # the one reseller whose customers the simulator lists
IDEMPOTENCY_TTL = timedelta(days=10)


@dataclass(slots=True)
class _Stored:
    created_at: datetime
    order_id: str
    payload: dict[str, Any]


def _sort_key(stored: _Stored) -> tuple[datetime, str]:
    return (stored.created_at, stored.order_id)


def _created_at(stored: _Stored) -> datetime:
    return stored.created_at


class _Customer:
    __slots__ = ("by_id", "orders")

    def __init__(self) -> None:
        self.orders: list[_Stored] = []
        self.by_id: dict[str, _Stored] = {}

    def add(self, stored: _Stored) -> None:
        insort(self.orders, stored, key=_sort_key)
        self.by_id[stored.order_id] = stored

    def window(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        low = bisect_left(self.orders, start, key=_created_at)
        high = bisect_right(self.orders, end, key=_created_at)
        return [stored.payload for stored in reversed(self.orders[low:high])]


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    at: datetime


class IdempotencyCache:
    """Replies by correlation id, and the correlation id each request id came with."""

    def __init__(self, *, clock: Clock, max_entries: int) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._replies: OrderedDict[str, Reply] = OrderedDict()
        self._request_ids: OrderedDict[str, str] = OrderedDict()

    def replay(self, correlation_id: str) -> Reply | None:
        """The reply already given for `correlation_id`, while younger than IDEMPOTENCY_TTL."""
        reply = self._replies.get(correlation_id)
        if reply is not None and self._clock() - reply.at >= IDEMPOTENCY_TTL:
            del self._replies[correlation_id]
            return None
        return reply

    def request_id_reused(self, request_id: str, correlation_id: str) -> bool:
        """Whether `request_id` was seen before with another correlation id."""
        seen_with = self._request_ids.get(request_id)
        return seen_with is not None and seen_with != correlation_id

    def remember(
        self, correlation_id: str, request_id: str | None, *, status: int, body: bytes
    ) -> None:
        self._replies[correlation_id] = Reply(status, body, self._clock())
        if request_id:
            self._request_ids[request_id] = correlation_id
        for memory in (self._replies, self._request_ids):
            while len(memory) > self._max_entries:
                memory.popitem(last=False)


class AdobeVipState(World[str]):
    """Customers -> orders and the idempotency cache, besides what every world has."""

    ACCEPTS = CREDENTIALS
    TOKEN_TTL_S = 86399

    def __init__(
        self,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
        *,
        idempotency_max_entries: int = 10_000,
        **tuning: Unpack[Tuning],
    ) -> None:
        super().__init__(clock, rng, **tuning)
        self._customers: dict[str, _Customer] = {}
        # Where a customer listing puts its customers: Adobe's sample and field table differ.
        self.customers_key = "accounts"
        self.idempotency = IdempotencyCache(clock=clock, max_entries=idempotency_max_entries)
        self._next_order_number = FIRST_ORDER_NUMBER

    def issue_token(self, client_id: str, client_secret: str) -> str | None:
        """A new bearer token for the simulator's client, None for any other credentials."""
        if not self.accepts(client_id, client_secret):
            return None
        token = f"{self.rng.getrandbits(128):032x}"
        self.tokens.add(token, ttl_s=self.token_ttl_s, kind="bearer")
        return token

    def add_customer(self, customer_id: str) -> bool:
        """Create an empty customer; False when it already exists."""
        if customer_id in self._customers:
            return False
        self._customers[customer_id] = _Customer()
        return True

    def remove_customer(self, customer_id: str) -> bool:
        """Take a customer and its orders away (it left the reseller); False if unknown."""
        return self._customers.pop(customer_id, None) is not None

    def customer_ids(self) -> list[str]:
        return list(self._customers)

    def list_customers(self, reseller_id: str, params: MultiMapping[str]) -> dict[str, Any]:
        """A page of the reseller's customers, in creation order; 404 1115 for another one."""
        if reseller_id != RESELLER_ID:
            raise ApiError(404, "1115", "Invalid Reseller")
        customers = [self._resource(customer_id) for customer_id in self._customers]
        return listing.customer_page(params, customers, key=self.customers_key)

    def _resource(self, customer_id: str) -> dict[str, Any]:
        return {
            "customerId": customer_id,
            "resellerId": RESELLER_ID,
            "companyProfile": {"companyName": f"Customer {customer_id}"},
            "status": "1000",
        }

    def orders(self, customer_id: str) -> list[dict[str, Any]]:
        """Every order of a customer, newest first. Treat them as read-only."""
        customer = self._customer(customer_id)
        return [stored.payload for stored in reversed(customer.orders)]

    def order(self, customer_id: str, order_id: str) -> dict[str, Any]:
        return self._stored(customer_id, order_id).payload

    def world(self) -> dict[str, list[dict[str, Any]]]:
        """Every customer's orders, newest first, in customer creation order."""
        return {customer_id: self.orders(customer_id) for customer_id in self._customers}

    def next_order_id(self) -> str:
        order_id = str(self._next_order_number)
        self._next_order_number += 1
        return order_id

    def create_order(self, customer_id: str, partial: object) -> dict[str, Any]:
        """Store an order built from `partial`, creating the customer if needed."""
        if not isinstance(partial, Mapping):
            raise adobe_orders.invalid("the order must be a JSON object")
        order_id = partial.get("orderId") or self.next_order_id()
        existing = self._customers.get(customer_id)
        if not isinstance(order_id, str) or (existing and order_id in existing.by_id):
            raise adobe_orders.invalid(f"orderId {order_id!r} is not a new string id")
        created_at = _creation(partial.get("creationDate"), default=self.clock())
        order = adobe_orders.build(
            partial, customer_id=customer_id, order_id=order_id, created_at=created_at
        )
        self.add_customer(customer_id)
        self._customers[customer_id].add(_Stored(created_at, order_id, order))
        return order

    def patch_order(self, customer_id: str, order_id: str, patch: object) -> dict[str, Any]:
        stored = self._stored(customer_id, order_id)
        stored.payload = adobe_orders.patched(stored.payload, patch)
        return stored.payload

    def list_orders(self, customer_id: str, query: listing.Query) -> dict[str, Any]:
        window = self._customer(customer_id).window(query.start, query.end)
        matches = [order for order in window if query.accepts(order)]
        path = f"/v3/customers/{customer_id}/orders"
        return listing.page(matches, query, path=path)

    def _customer(self, customer_id: str) -> _Customer:
        customer = self._customers.get(customer_id)
        if customer is None:
            raise ApiError(404, "1116", "Invalid Customer")
        return customer

    def _stored(self, customer_id: str, order_id: str) -> _Stored:
        stored = self._customer(customer_id).by_id.get(order_id)
        if stored is None:
            raise ApiError(404, "2115", "Invalid Customer or Order ID")
        return stored


def _creation(value: object, *, default: datetime) -> datetime:
    if value is None:
        return default.replace(microsecond=0)
    try:
        return adobe_orders.parse_time(str(value))
    except ValueError as exc:
        raise adobe_orders.invalid(f"creationDate {value!r} is not a UTC timestamp") from exc


STATE = web.AppKey("adobe_vip_state", AdobeVipState)
