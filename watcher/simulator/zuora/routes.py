"""Zuora Quickstart API v2: the simulated vendor routes and reply headers.

    POST /oauth/token            form grant_type=client_credentials, client_id, client_secret
    GET  /v2/orders              filter[], expand[], page_size, cursor (`listing`)
    GET  /v2/orders/{order_id}   order number or id; expand[], page_size (of expanded
                                 lists), cursor (continues the expanded line items)

Every /v2 call is checked in this order: the request budget (429 too_many_requests when
the window's budget is spent), the bearer token (401 unauthorized: missing, unknown,
expired or revoked), then an error an admin queued for it. Errors use Quickstart's
`{type, errors: [{code, parameter, message}], retryable}`.

Every reply, faults included, carries `RateLimit-Limit`, `RateLimit-Remaining`,
`RateLimit-Reset` (seconds), a fresh `zuora-request-id`, and the caller's
`zuora-track-id` echoed back; the track id of each /v2 call is kept in
`ZuoraState.track_ids` so tests can check that every call had its own.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web

from watcher.simulator import admin, tokens
from watcher.simulator.faults import without
from watcher.simulator.server import Wire
from watcher.simulator.zuora import listing
from watcher.simulator.zuora.orders import ApiError
from watcher.simulator.zuora.world import STATE, ZuoraState

TOKEN_PATH = "/oauth/token"
API_PREFIXES = ("/v2/",)
TRACK_ID = "zuora-track-id"
REQUEST_ID = "zuora-request-id"
_FAULT_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    429: "too_many_requests",
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


def routes() -> list[web.RouteDef]:
    """Zuora's token and order routes over the state stored under `STATE`."""
    return [
        web.post(TOKEN_PATH, _token),
        web.get("/v2/orders", _list_orders),
        web.get("/v2/orders/{order_id}", _get_order),
    ]


def fault_body(status: int) -> dict[str, Any]:
    """Quickstart's error body for an injected `status` (the shapes of the document's examples)."""
    kind = _FAULT_TYPES.get(status) or _phrase(status)
    retryable = None if status == 429 or status >= 500 else False
    return ApiError(status, kind, retryable=retryable).body()


# A truncated reply misses what a reader needs: a list its data, an order its lines.
WIRE = Wire(TOKEN_PATH, API_PREFIXES, error_body=fault_body, truncate=without("data", "line_items"))


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """The headers Zuora puts on every reply; the track id of each API call is recorded."""
    if not request.path.startswith((*API_PREFIXES, TOKEN_PATH)):
        return
    state = request.app[STATE]
    track_id = request.headers.get(TRACK_ID)
    if request.path.startswith(API_PREFIXES):
        state.track_ids.append(track_id)
    response.headers["RateLimit-Limit"] = str(state.rate.limit)
    response.headers["RateLimit-Remaining"] = str(state.rate.remaining())
    response.headers["RateLimit-Reset"] = str(state.rate.reset_s())
    response.headers[REQUEST_ID] = state.next_request_id()
    if track_id is not None:
        response.headers[TRACK_ID] = track_id


async def _token(request: web.Request) -> web.Response:
    form = await request.post()
    state = request.app[STATE]
    if form.get("grant_type") != "client_credentials":
        error = ApiError(
            400,
            "bad_request",
            code="unsupported_grant_type",
            message="only client_credentials is supported",
            parameter="grant_type",
        )
        return _error(error)
    token = state.issue_token(str(form.get("client_id", "")), str(form.get("client_secret", "")))
    if token is None:
        error = ApiError(
            401, "unauthorized", code="invalid_client", message="invalid client_id or client_secret"
        )
        return _error(error)
    reply = {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": state.token_ttl_s,
        "scope": "entity.sim platform.read service.orders.read",
        "jti": token[:16],
    }
    return admin.reply(reply)


async def _list_orders(request: web.Request) -> web.Response:
    def produce(state: ZuoraState) -> dict[str, Any]:
        query = request.query
        view = state.view(listing.expansions(query.getall("expand[]", [])))
        return listing.list_page(
            state.orders(),
            where=listing.clauses(query.getall("filter[]", [])),
            size=listing.page_size(query.get("page_size"), page_limit=state.page_limit),
            cursor=query.get("cursor"),
            view=view,
        )

    return _guarded(request, produce)


async def _get_order(request: web.Request) -> web.Response:
    def produce(state: ZuoraState) -> dict[str, Any]:
        query = request.query
        order = state.order(request.match_info["order_id"])
        size = listing.page_size(query.get("page_size"), default=state.nested_page_size)
        view = state.view(listing.expansions(query.getall("expand[]", [])), nested_page_size=size)
        cursor = query.get("cursor")
        offset = 0 if cursor is None else listing.line_offset(cursor, order_id=order["id"])
        return listing.render(order, view, line_offset=offset)

    return _guarded(request, produce)


def _guarded(request: web.Request, produce: Callable[[ZuoraState], Any]) -> web.Response:
    state = request.app[STATE]

    def checked() -> Any:
        if not state.rate.take():
            raise ApiError(429, "too_many_requests", retryable=None)
        _check_token(state, request)
        queued = state.errors.take(request.path_qs)
        if queued is not None:
            raise queued
        return produce(state)

    return admin.answer(checked)


def _check_token(state: ZuoraState, request: web.Request) -> None:
    token = tokens.bearer(request.headers.get("Authorization", ""))
    if token is None or not state.token_valid(token):
        raise ApiError(401, "unauthorized")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_")
    except ValueError:
        return "error"


def _error(error: ApiError) -> web.Response:
    return admin.reply(error.body(), status=error.status)
