"""Adobe VIP Marketplace (Commerce Partner API v3): the simulated world and its vendor routes.

`AdobeVipState` is the world: customers and their orders, issued tokens and Adobe's
idempotency cache, plus the generic fault book and request log that the server wraps around
these routes (`faults`, `requestlog`). This module only says how an injected error looks in
Adobe's shape (`fault_body`) and what a truncated reply leaves out (`truncate`).

- Each customer's orders stay sorted by (creationDate, orderId); a list call bisects the
  date window and walks it backwards (newest first), so it costs that customer's orders,
  never the world's. Orders are the JSON-ready dicts the API returns (`adobe_orders`).
- Replies are serialised once with orjson. The idempotency cache keeps those bytes, so a
  later edit never leaks into a cached reply.
- Every /v3 call passes Adobe's checks in this order: Authorization missing (403 4117) or
  not a live token (401 4116: unknown, expired or revoked); X-Api-Key missing or not the
  client id (403 4115); X-Correlation-Id missing (400 4119); a correlation id seen before
  gets the earlier reply again, status and body; an X-Request-Id seen before with a new
  correlation id (400 4120). Only replies produced past these checks are cached
  (`adobe_idempotency`), so a caller that fixes its token may retry with the same
  correlation id.
- Time comes only from the injected clock (token expiry, the default date window, cache
  age, default creationDate); randomness only from the injected Random (tokens). Order ids
  come from a counter, so a seeded world is the same on every run.
"""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web

from watcher.simulator import (
    adobe_idempotency,
    adobe_listing,
    adobe_orders,
    faults,
    requestlog,
    tokens,
)
from watcher.simulator.adobe_orders import ApiError

CLIENT_ID = "sim-client"
CLIENT_SECRET = "sim-secret"
TOKEN_PATH = "/ims/token/v3"
API_PREFIXES = ("/v3/",)
DEFAULT_TOKEN_TTL_S = 86399
FIRST_ORDER_NUMBER = 5_120_000_001
Clock = Callable[[], datetime]
_FAULT_ERRORS = {
    401: ("4116", "Invalid token"),
    403: ("4115", "Invalid API Key"),
    429: ("4118", "Too many requests"),
}


def utc_now() -> datetime:
    return datetime.now(UTC)


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


class AdobeVipState:
    """Customers -> orders, issued tokens, the idempotency cache, faults and the request log."""

    def __init__(
        self,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
        *,
        token_ttl_s: int = DEFAULT_TOKEN_TTL_S,
        idempotency_max_entries: int = 10_000,
        request_log_max_entries: int = 10_000,
    ) -> None:
        self.clock = clock
        self.rng = rng if rng is not None else random.Random()
        self.token_ttl_s = token_ttl_s
        self.faults = faults.FaultBook()
        self.requests = requestlog.RequestLog(max_entries=request_log_max_entries)
        self._customers: dict[str, _Customer] = {}
        self.tokens: tokens.TokenBook[str] = tokens.TokenBook(clock)
        self.idempotency = adobe_idempotency.IdempotencyCache(
            clock=clock, max_entries=idempotency_max_entries
        )
        self._next_order_number = FIRST_ORDER_NUMBER

    def issue_token(self, client_id: str, client_secret: str) -> str | None:
        """A new bearer token for the simulator's client, None for any other credentials."""
        if (client_id, client_secret) != (CLIENT_ID, CLIENT_SECRET):
            return None
        token = f"{self.rng.getrandbits(128):032x}"
        self.tokens.add(token, ttl_s=self.token_ttl_s, kind="bearer")
        return token

    def token_valid(self, token: str) -> bool:
        return self.tokens.live(token)

    def revoke_tokens(self) -> int:
        return self.tokens.revoke_all()

    def add_customer(self, customer_id: str) -> bool:
        """Create an empty customer; False when it already exists."""
        if customer_id in self._customers:
            return False
        self._customers[customer_id] = _Customer()
        return True

    def customer_ids(self) -> list[str]:
        return list(self._customers)

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

    def list_orders(self, customer_id: str, query: adobe_listing.Query) -> dict[str, Any]:
        window = self._customer(customer_id).window(query.start, query.end)
        matches = [order for order in window if query.accepts(order)]
        path = f"/v3/customers/{customer_id}/orders"
        return adobe_listing.page(matches, query, path=path)

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


STATE = web.AppKey("adobe_vip_state", AdobeVipState)


def routes() -> list[web.RouteDef]:
    """Adobe's token and order routes over the state stored under `STATE`."""
    return [
        web.post(TOKEN_PATH, _token),
        web.get("/v3/customers/{customer_id}/orders", _list_orders),
        web.get("/v3/customers/{customer_id}/orders/{order_id}", _get_order),
    ]


def fault_body(status: int) -> dict[str, Any]:
    """Adobe's error body for an injected `status`."""
    if status in _FAULT_ERRORS:
        return ApiError(status, *_FAULT_ERRORS[status]).body()
    if status >= 500:
        return ApiError(status, "1124", "Internal Server Error").body()
    try:
        message = HTTPStatus(status).phrase
    except ValueError:
        message = "Error"
    return ApiError(status, str(status), message).body()


def truncate(payload: Any) -> Any:
    """A reply missing what a reader needs: a page without items, an order without lines."""
    if not isinstance(payload, dict):
        return payload
    drop = "items" if "items" in payload else "lineItems"
    return {key: value for key, value in payload.items() if key != drop}


async def _token(request: web.Request) -> web.Response:
    form = await request.post()
    state = request.app[STATE]
    if form.get("grant_type", "client_credentials") != "client_credentials":
        return _token_error("unsupported_grant_type", "only client_credentials is supported")
    token = state.issue_token(str(form.get("client_id", "")), str(form.get("client_secret", "")))
    if token is None:
        return _token_error("invalid_client", "invalid client_id or client_secret")
    reply = {"access_token": token, "token_type": "bearer", "expires_in": state.token_ttl_s}
    return _json(orjson.dumps(reply), status=200)


async def _list_orders(request: web.Request) -> web.Response:
    def produce(state: AdobeVipState) -> dict[str, Any]:
        query = adobe_listing.parse(request.query, now=state.clock())
        return state.list_orders(request.match_info["customer_id"], query)

    return _guarded(request, produce)


async def _get_order(request: web.Request) -> web.Response:
    def produce(state: AdobeVipState) -> dict[str, Any]:
        return state.order(request.match_info["customer_id"], request.match_info["order_id"])

    return _guarded(request, produce)


def _guarded(request: web.Request, produce: Callable[[AdobeVipState], Any]) -> web.Response:
    """Adobe's header checks and idempotency cache around one /v3 call."""
    state = request.app[STATE]
    try:
        correlation_id = _checked_headers(state, request)
    except ApiError as exc:
        return _json(orjson.dumps(exc.body()), status=exc.status)
    cached = state.idempotency.replay(correlation_id)
    if cached is not None:
        return _json(cached.body, status=cached.status)
    request_id = request.headers.get("X-Request-Id") or None
    if request_id and state.idempotency.request_id_reused(request_id, correlation_id):
        error = ApiError(400, "4120", "Duplicate X-Request-Id")
        return _json(orjson.dumps(error.body()), status=error.status)
    try:
        status, body = 200, orjson.dumps(produce(state))
    except ApiError as exc:
        status, body = exc.status, orjson.dumps(exc.body())
    state.idempotency.remember(correlation_id, request_id, status=status, body=body)
    return _json(body, status=status)


def _checked_headers(state: AdobeVipState, request: web.Request) -> str:
    """The correlation id of a request whose credentials hold; ApiError otherwise."""
    authorization = request.headers.get("Authorization")
    if not authorization:
        raise ApiError(403, "4117", "Token missing")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not state.token_valid(token.strip()):
        raise ApiError(401, "4116", "Invalid token")
    if request.headers.get("X-Api-Key") != CLIENT_ID:
        raise ApiError(403, "4115", "Invalid API Key")
    correlation_id = request.headers.get("X-Correlation-Id")
    if not correlation_id:
        raise ApiError(400, "4119", "X-Correlation-Id header is missing")
    return correlation_id


def _creation(value: object, *, default: datetime) -> datetime:
    if value is None:
        return default.replace(microsecond=0)
    try:
        return adobe_orders.parse_time(str(value))
    except ValueError as exc:
        raise adobe_orders.invalid(f"creationDate {value!r} is not a UTC timestamp") from exc


def _token_error(error: str, description: str) -> web.Response:
    body = orjson.dumps({"error": error, "error_description": description})
    return _json(body, status=400)


def _json(body: bytes, *, status: int) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")
