"""Admin routes of the Elastic Path simulator: shape the store over HTTP, without auth.

Tests and the demo drive the simulator through these, so the same calls work against a
simulator in another process (`order-watcher simulate`).

    POST  /_admin/orders                 admin create body -> the order as the API shows it (201)
    PATCH /_admin/orders/{order_id}      admin patch: status, payment, shipping, items... (200)
    POST  /_admin/tokens/revoke          every issued token dies
    POST  /_admin/advance                one scenario step -> {"changes": [...]}

The bodies are described in `elastic_path_orders`. Errors use the vendor's envelope: 404
for an unknown order, 400 for a body the simulator cannot apply (nothing changes then).
The generic fault and request-log routes live with their owners (`faults`, `requestlog`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from watcher.simulator import elastic_path_scenario as scenario
from watcher.simulator.elastic_path_orders import ApiError
from watcher.simulator.elastic_path_routes import STATE
from watcher.simulator.elastic_path_world import ElasticPathState

Action = Callable[[ElasticPathState], tuple[int, Any]]


def routes() -> list[web.RouteDef]:
    """The admin routes over the state stored under `elastic_path_routes.STATE`."""
    return [
        web.post("/_admin/orders", _create_order),
        web.patch("/_admin/orders/{order_id}", _patch_order),
        web.post("/_admin/tokens/revoke", _revoke_tokens),
        web.post("/_admin/advance", _advance),
    ]


async def _create_order(request: web.Request) -> web.Response:
    body = await _body(request)
    return _run(request, lambda state: (201, state.create_order(body)))


async def _patch_order(request: web.Request) -> web.Response:
    body = await _body(request)
    order_id = request.match_info["order_id"]
    return _run(request, lambda state: (200, state.patch_order(order_id, body)))


async def _revoke_tokens(request: web.Request) -> web.Response:
    return _run(request, lambda state: (200, {"revoked": state.revoke_tokens()}))


async def _advance(request: web.Request) -> web.Response:
    def act(state: ElasticPathState) -> tuple[int, Any]:
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
        status, payload = act(request.app[STATE])
    except ApiError as exc:
        status, payload = exc.status, exc.body()
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")
