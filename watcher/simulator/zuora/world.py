"""Zuora Quickstart API v2: the simulated world.

`ZuoraState` holds accounts and their orders (JSON-ready dicts, `orders`), the tenant's
request budget (`RateBudget`), the vendor errors an admin queued
(`VendorErrors`: replies Zuora itself would give, such as a retryable 409, as opposed to
the generic faults in transit) and the `zuora-track-id` of every API call in arrival
order, besides what every world has (`server.World`: clock, Random, fault book, request
log, tokens).

Orders are found by order number or id, as `GET /v2/orders/{order_id}` accepts both.
Ids are 32 hex digits from the injected Random, numbers come from counters (O-00000001,
A-S00000001, C-00000001), time only from the injected clock, so a seeded world is the
same on every run.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from itertools import count
from typing import Any, Unpack

from aiohttp import web

from watcher.simulator.server import Clock, Credentials, Tuning, World, utc_now
from watcher.simulator.zuora import edits, listing
from watcher.simulator.zuora import orders as zuora_orders
from watcher.simulator.zuora.orders import ApiError, Ids

NAME = "zuora"
CLIENT_ID = "sim-zuora-client"
CLIENT_SECRET = "sim-zuora-secret"
CREDENTIALS = Credentials(CLIENT_ID, CLIENT_SECRET)
# The tenant's API limit: 50,000 requests a minute.
DEFAULT_RATE_LIMIT = 50_000
DEFAULT_RATE_WINDOW_S = 60


class RateBudget:
    """A fixed-window request budget; what RateLimit-Limit/Remaining/Reset report."""

    def __init__(self, clock: Clock, *, limit: int, window_s: int) -> None:
        self._clock = clock
        self.set(limit=limit, window_s=window_s)

    def set(self, *, limit: int, window_s: int, remaining: int | None = None) -> None:
        """Start a new window of `window_s` with `remaining` (default `limit`) requests left."""
        self.limit = limit
        self.window_s = window_s
        self._started = self._clock()
        self._used = limit - (limit if remaining is None else remaining)

    def take(self) -> bool:
        """Spend one request; False (nothing spent) when the window's budget is gone."""
        self._roll()
        if self._used >= self.limit:
            return False
        self._used += 1
        return True

    def remaining(self) -> int:
        self._roll()
        return max(self.limit - self._used, 0)

    def reset_s(self) -> int:
        self._roll()
        left = self._started + timedelta(seconds=self.window_s) - self._clock()
        return max(int(-(-left.total_seconds() // 1)), 0)

    def _roll(self) -> None:
        if self._clock() >= self._started + timedelta(seconds=self.window_s):
            self._started, self._used = self._clock(), 0


@dataclass(slots=True)
class _QueuedError:
    error: ApiError
    count: int
    path_contains: str | None


class VendorErrors:
    """Errors Zuora itself answers with, queued by an admin; first match wins."""

    def __init__(self) -> None:
        self._queued: list[_QueuedError] = []

    def add(self, error: ApiError, *, times: int = 1, path_contains: str | None = None) -> None:
        self._queued.append(_QueuedError(error, times, path_contains))

    def clear(self) -> int:
        cleared = len(self._queued)
        self._queued.clear()
        return cleared

    def take(self, path_qs: str) -> ApiError | None:
        for queued in self._queued:
            if queued.path_contains is None or queued.path_contains in path_qs:
                queued.count -= 1
                if queued.count == 0:
                    self._queued.remove(queued)
                return queued.error
        return None


class ZuoraState(World[str]):
    """Accounts -> orders, the rate budget, queued errors, track ids, besides the common."""

    ACCEPTS = CREDENTIALS
    TOKEN_TTL_S = 3599
    TRACE_HEADERS = ("zuora-track-id",)
    CREDENTIAL_HEADERS = ("Authorization",)

    def __init__(
        self,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
        *,
        rate_limit: int = DEFAULT_RATE_LIMIT,
        rate_window_s: int = DEFAULT_RATE_WINDOW_S,
        **tuning: Unpack[Tuning],
    ) -> None:
        super().__init__(clock, rng, **tuning)
        self.rate = RateBudget(clock, limit=rate_limit, window_s=rate_window_s)
        self.errors = VendorErrors()
        self.track_ids: deque[str | None] = deque(maxlen=self.requests.max_entries)
        self.list_shape: listing.ListShape = "object"
        self.nested_page_size = listing.DEFAULT_PAGE_SIZE
        self._accounts: dict[str, list[str]] = {}
        self._orders: dict[str, dict[str, Any]] = {}
        self._numbers_by_id: dict[str, str] = {}
        self._counters = {name: count(1) for name in ("order", "line", "sub", "item", "req")}
        self.ids = Ids(
            new_id=self._new_id,
            line_number=lambda: str(next(self._counters["line"])),
            subscription_number=lambda: f"A-S{next(self._counters['sub']):08d}",
            item_number=lambda: f"C-{next(self._counters['item']):08d}",
            now=clock,
        )

    def issue_token(self, client_id: str, client_secret: str) -> str | None:
        """A new bearer token for the simulator's client, None for any other credentials."""
        if not self.accepts(client_id, client_secret):
            return None
        token = self._new_id()
        self.tokens.add(token, ttl_s=self.token_ttl_s, kind="bearer")
        return token

    def next_request_id(self) -> str:
        return f"{next(self._counters['req']):08x}-{self._new_id()[:24]}"

    def view(self, expand: frozenset[str], *, nested_page_size: int | None = None) -> listing.View:
        return listing.View(
            expand=expand,
            shape=self.list_shape,
            nested_page_size=nested_page_size or self.nested_page_size,
        )

    def add_account(self, account_id: str) -> bool:
        """Create an account without orders; False when it already exists."""
        if account_id in self._accounts:
            return False
        self._accounts[account_id] = []
        return True

    def account_ids(self) -> list[str]:
        return list(self._accounts)

    def orders(self, account_id: str | None = None) -> list[dict[str, Any]]:
        """Orders (of one account, or all), oldest first. Treat them as read-only."""
        numbers = self._accounts.get(account_id, []) if account_id else list(self._orders)
        return [self._orders[number] for number in numbers]

    def order(self, key: str) -> dict[str, Any]:
        """The order with this order number or id; 404 not_found otherwise."""
        number = key if key in self._orders else self._numbers_by_id.get(key)
        if number is None:
            raise zuora_orders.not_found("Order", key)
        return self._orders[number]

    def create_order(self, account_id: str, partial: object) -> dict[str, Any]:
        """Store an order built from `partial`, creating the account if needed."""
        if not isinstance(partial, Mapping):
            raise zuora_orders.invalid("the order must be a JSON object")
        number = partial.get("order_number") or f"O-{next(self._counters['order']):08d}"
        if not isinstance(number, str) or number in self._orders:
            raise zuora_orders.invalid(
                f"order_number {number!r} is not new", parameter="order_number"
            )
        order = zuora_orders.build_order(
            partial, account_id=account_id, order_number=number, ids=self.ids
        )
        self.add_account(account_id)
        self._accounts[account_id].append(number)
        self._orders[number] = order
        self._numbers_by_id[order["id"]] = number
        return order

    def patch_order(self, key: str, patch: object) -> dict[str, Any]:
        order = self.order(key)
        updated = edits.patched(order, patch, ids=self.ids)
        self._orders[order["order_number"]] = updated
        return updated

    def _new_id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"


STATE = web.AppKey("zuora_state", ZuoraState)
