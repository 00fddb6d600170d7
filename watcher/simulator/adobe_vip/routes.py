"""Adobe VIP Marketplace's vendor routes on the simulator: IMS tokens and the order reads.

    POST /ims/token/v3                                  form client_id, client_secret
    GET  /v3/resellers/{reseller_id}/customers          offset/limit (1..50) pages
    GET  /v3/customers/{customer_id}/orders             `listing`: window, filters, pages
    GET  /v3/customers/{customer_id}/orders/{order_id}

Every /v3 call passes Adobe's checks in this order: Authorization missing (403 4117) or
not a live token (401 4116: unknown, expired or revoked); X-Api-Key missing or not the
client id (403 4115); X-Correlation-Id missing (400 4119); a correlation id seen before
gets the earlier reply again, status and body; an X-Request-Id seen before with a new
correlation id (400 4120). Only replies produced past these checks are cached, so a
caller that fixes its token may retry with the same correlation id. Replies are
serialised once with orjson, and the cache keeps those bytes.

`WIRE` tells the generic parts where the API is, how an injected error looks in Adobe's
shape (`fault_body`) and what a truncated reply leaves out.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web

from watcher.simulator import tokens
from watcher.simulator.adobe_vip import listing
from watcher.simulator.adobe_vip.orders import ApiError
from watcher.simulator.adobe_vip.world import CLIENT_ID, STATE, AdobeVipState
from watcher.simulator.faults import without
from watcher.simulator.server import Wire

TOKEN_PATH = "/ims/token/v3"
API_PREFIXES = ("/v3/",)
_FAULT_ERRORS = {
    401: ("4116", "Invalid token"),
    403: ("4115", "Invalid API Key"),
    429: ("4118", "Too many requests"),
}


def routes() -> list[web.RouteDef]:
    """Adobe's token and order routes over the state stored under `STATE`."""
    orders = "/v3/customers/{customer_id}/orders"
    return [
        web.post(TOKEN_PATH, _token),
        web.get("/v3/resellers/{reseller_id}/customers", _list_customers),
        web.get(orders, _list_orders),
        web.get(orders + "/{order_id}", _get_order),
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


# A truncated reply misses what a reader needs: a page its items, an order its lines.
WIRE = Wire(TOKEN_PATH, API_PREFIXES, error_body=fault_body, truncate=without("items", "lineItems"))


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


async def _list_customers(request: web.Request) -> web.Response:
    def produce(state: AdobeVipState) -> dict[str, Any]:
        return state.list_customers(request.match_info["reseller_id"], request.query)

    return _guarded(request, produce)


async def _list_orders(request: web.Request) -> web.Response:
    def produce(state: AdobeVipState) -> dict[str, Any]:
        query = listing.parse(request.query, now=state.clock(), page_limit=state.page_limit)
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
    token = tokens.bearer(authorization)
    if token is None or not state.token_valid(token):
        raise ApiError(401, "4116", "Invalid token")
    if request.headers.get("X-Api-Key") != CLIENT_ID:
        raise ApiError(403, "4115", "Invalid API Key")
    correlation_id = request.headers.get("X-Correlation-Id")
    if not correlation_id:
        raise ApiError(400, "4119", "X-Correlation-Id header is missing")
    return correlation_id


def _token_error(error: str, description: str) -> web.Response:
    body = orjson.dumps({"error": error, "error_description": description})
    return _json(body, status=400)


def _json(body: bytes, *, status: int) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")
