"""Admin routes of the Elastic Path simulator: shape the store over HTTP, without auth.

Tests and the demo drive the simulator through these, so the same calls work against a
simulator in another process (`order-watcher simulate`).

    POST  /_admin/orders                 admin create body -> the order as the API shows it (201)
    PATCH /_admin/orders/{order_id}      admin patch: status, payment, shipping, items... (200)

The bodies are described in `edits`. Errors use the vendor's envelope: 404
for an unknown order, 400 for a body the simulator cannot apply (nothing changes then).
The routes every world answers alike (faults, the request log, token revocation, a
scenario step) come with the server.
"""

from __future__ import annotations

from aiohttp import web

from watcher.simulator import admin
from watcher.simulator.elastic_path.world import STATE

_ADMIN = admin.Admin(STATE)


def routes() -> list[web.RouteDef]:
    """The admin routes over the state stored under `world.STATE`."""
    return [
        web.post("/_admin/orders", _create_order),
        web.patch("/_admin/orders/{order_id}", _patch_order),
    ]


async def _create_order(request: web.Request) -> web.Response:
    body = await admin.body(request)
    return _ADMIN.run(request, lambda state: (201, state.create_order(body)))


async def _patch_order(request: web.Request) -> web.Response:
    body = await admin.body(request)
    order_id = request.match_info["order_id"]
    return _ADMIN.run(request, lambda state: (200, state.patch_order(order_id, body)))
