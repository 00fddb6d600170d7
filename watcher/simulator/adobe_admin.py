"""Admin routes of the Adobe VIP simulator: shape the world over HTTP, without auth.

Tests and the demo drive the simulator through these rather than through Python objects, so
the same calls work against a simulator in another process (`order-watcher simulate`).

    POST  /_admin/customers/{customer_id}                      empty customer (201, 200 if known)
    POST  /_admin/customers/{customer_id}/orders               partial Order -> stored (201)
    PATCH /_admin/customers/{customer_id}/orders/{order_id}    admin patch -> stored (200)
    POST  /_admin/tokens/revoke                                every issued token dies
    POST  /_admin/advance                                      one scenario step -> changes

Creating an order for an unknown customer creates the customer. Errors use Adobe's error
body: 404 with 1116 or 2115 for unknown customers and orders, 400 "invalid-request" for a
body the simulator cannot apply (nothing is changed then). The generic fault and request
log routes live with their owners (`faults`, `requestlog`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from watcher.simulator import adobe_vip, scenario
from watcher.simulator.adobe_orders import ApiError

Action = Callable[[adobe_vip.AdobeVipState], tuple[int, Any]]


def routes() -> list[web.RouteDef]:
    """The admin routes over the state stored under `adobe_vip.STATE`."""
    orders = "/_admin/customers/{customer_id}/orders"
    return [
        web.post("/_admin/customers/{customer_id}", _create_customer),
        web.post(orders, _create_order),
        web.patch(orders + "/{order_id}", _patch_order),
        web.post("/_admin/tokens/revoke", _revoke_tokens),
        web.post("/_admin/advance", _advance),
    ]


async def _create_customer(request: web.Request) -> web.Response:
    customer_id = request.match_info["customer_id"]

    def act(state: adobe_vip.AdobeVipState) -> tuple[int, Any]:
        created = state.add_customer(customer_id)
        return (201 if created else 200), {"customerId": customer_id}

    return _run(request, act)


async def _create_order(request: web.Request) -> web.Response:
    body = await _body(request)

    def act(state: adobe_vip.AdobeVipState) -> tuple[int, Any]:
        return 201, state.create_order(request.match_info["customer_id"], body)

    return _run(request, act)


async def _patch_order(request: web.Request) -> web.Response:
    body = await _body(request)
    info = request.match_info

    def act(state: adobe_vip.AdobeVipState) -> tuple[int, Any]:
        return 200, state.patch_order(info["customer_id"], info["order_id"], body)

    return _run(request, act)


async def _revoke_tokens(request: web.Request) -> web.Response:
    return _run(request, lambda state: (200, {"revoked": state.revoke_tokens()}))


async def _advance(request: web.Request) -> web.Response:
    def act(state: adobe_vip.AdobeVipState) -> tuple[int, Any]:
        changes = scenario.advance(state, state.rng, state.clock())
        return 200, {"changes": [change.to_json() for change in changes]}

    return _run(request, act)


async def _body(request: web.Request) -> object:
    """The JSON body; None when unreadable, which every action rejects as not an object."""
    raw = await request.read()
    try:
        return orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        return None


def _run(request: web.Request, act: Action) -> web.Response:
    try:
        status, payload = act(request.app[adobe_vip.STATE])
    except ApiError as exc:
        status, payload = exc.status, exc.body()
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")
