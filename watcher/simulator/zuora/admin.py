"""Admin routes of the Zuora simulator: shape the world over HTTP, without auth.

    POST   /_admin/accounts/{account_id}          empty account (201, 200 if known)
    POST   /_admin/accounts/{account_id}/orders   partial order -> stored order (201)
    PATCH  /_admin/orders/{order}                 patch (`edits`) -> stored order (200)
    POST   /_admin/errors                         queue a Zuora error reply: {status, type,
                                                  code, message, parameter, retryable,
                                                  count, path_contains}
    DELETE /_admin/errors                         drop queued errors
    POST   /_admin/rate-limit                     {limit, window_s, remaining}: a new window
    POST   /_admin/shape                          {list_shape: "object"|"array",
                                                  nested_page_size: 1..99}
    GET    /_admin/track-ids                      zuora-track-id of every /v2 call, in order
    DELETE /_admin/track-ids

`{order}` is an order number or id; orders are shown as stored (lists as plain lists).
Errors use Quickstart's error body; a body the simulator cannot apply is a 400 and changes
nothing. The routes every world answers alike (faults, the request log, token
revocation, a scenario step) come with the server.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from watcher.simulator import admin
from watcher.simulator.zuora.orders import ApiError, expect_object, expect_text, invalid
from watcher.simulator.zuora.world import STATE, ZuoraState

_ADMIN = admin.Admin(STATE)
_SHAPES = ("object", "array")


def routes() -> list[web.RouteDef]:
    """The admin routes over the state stored under `world.STATE`."""
    return [
        web.post("/_admin/accounts/{account_id}", _create_account),
        web.post("/_admin/accounts/{account_id}/orders", _create_order),
        web.patch("/_admin/orders/{order}", _patch_order),
        web.post("/_admin/errors", _queue_error),
        web.delete("/_admin/errors", _clear_errors),
        web.post("/_admin/rate-limit", _rate_limit),
        web.post("/_admin/shape", _shape),
        web.get("/_admin/track-ids", _track_ids),
        web.delete("/_admin/track-ids", _clear_track_ids),
    ]


async def _create_account(request: web.Request) -> web.Response:
    account_id = request.match_info["account_id"]

    def act(state: ZuoraState) -> tuple[int, Any]:
        return (201 if state.add_account(account_id) else 200), {"id": account_id}

    return _ADMIN.run(request, act)


async def _create_order(request: web.Request) -> web.Response:
    body = await admin.body(request)
    account_id = request.match_info["account_id"]
    return _ADMIN.run(request, lambda state: (201, state.create_order(account_id, body)))


async def _patch_order(request: web.Request) -> web.Response:
    body = await admin.body(request)
    key = request.match_info["order"]
    return _ADMIN.run(request, lambda state: (200, state.patch_order(key, body)))


async def _queue_error(request: web.Request) -> web.Response:
    raw = await admin.body(request)

    def act(state: ZuoraState) -> tuple[int, Any]:
        body = expect_object(raw, "body")
        status = _int(body.get("status", 400), "status", low=400, high=599)
        error = ApiError(
            status,
            expect_text(body.get("type", "bad_request"), "type"),
            code=expect_text(body.get("code", "invalid_request"), "code"),
            message=expect_text(
                body.get("message", "The request could not be processed"), "message"
            ),
            parameter=body.get("parameter"),
            retryable=bool(body.get("retryable", False)),
        )
        count = _int(body.get("count", 1), "count", low=-1, high=10_000)
        state.errors.add(error, times=count, path_contains=body.get("path_contains"))
        return 201, error.body()

    return _ADMIN.run(request, act)


async def _clear_errors(request: web.Request) -> web.Response:
    return _ADMIN.run(request, lambda state: (200, {"cleared": state.errors.clear()}))


async def _rate_limit(request: web.Request) -> web.Response:
    raw = await admin.body(request)

    def act(state: ZuoraState) -> tuple[int, Any]:
        body = expect_object(raw, "body")
        limit = _int(body.get("limit", state.rate.limit), "limit", low=0, high=10**9)
        window_s = _int(body.get("window_s", state.rate.window_s), "window_s", low=1, high=86_400)
        remaining = body.get("remaining")
        if remaining is not None:
            remaining = _int(remaining, "remaining", low=0, high=limit)
        state.rate.set(limit=limit, window_s=window_s, remaining=remaining)
        return 200, {"limit": limit, "window_s": window_s, "remaining": state.rate.remaining()}

    return _ADMIN.run(request, act)


async def _shape(request: web.Request) -> web.Response:
    raw = await admin.body(request)

    def act(state: ZuoraState) -> tuple[int, Any]:
        body = expect_object(raw, "body")
        shape = body.get("list_shape", state.list_shape)
        if shape not in _SHAPES:
            raise invalid("list_shape must be object or array", parameter="list_shape")
        size = body.get("nested_page_size", state.nested_page_size)
        size = _int(size, "nested_page_size", low=1, high=99)
        state.list_shape, state.nested_page_size = shape, size
        return 200, {"list_shape": shape, "nested_page_size": size}

    return _ADMIN.run(request, act)


async def _track_ids(request: web.Request) -> web.Response:
    return _ADMIN.run(request, lambda state: (200, list(state.track_ids)))


async def _clear_track_ids(request: web.Request) -> web.Response:
    def act(state: ZuoraState) -> tuple[int, Any]:
        cleared = len(state.track_ids)
        state.track_ids.clear()
        return 200, {"cleared": cleared}

    return _ADMIN.run(request, act)


def _int(value: object, name: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(f"{name} must be an integer from {low} to {high}", parameter=name)
    return value
