"""Admin routes of the Adobe VIP simulator: shape the world over HTTP, without auth.

Tests and the demo drive the simulator through these rather than through Python objects, so
the same calls work against a simulator in another process (`order-watcher simulate`).

    POST  /_admin/customers/{customer_id}                      empty customer (201, 200 if known)
    POST  /_admin/customers/{customer_id}/orders               partial Order -> stored (201)
    PATCH /_admin/customers/{customer_id}/orders/{order_id}    admin patch -> stored (200)

Creating an order for an unknown customer creates the customer. Errors use Adobe's error
body: 404 with 1116 or 2115 for unknown customers and orders, 400 "invalid-request" for a
body the simulator cannot apply (nothing is changed then). The routes every world answers
alike (faults, the request log, token revocation, a scenario step) come with the server.
"""

from __future__ import annotations

from aiohttp import web

from watcher.simulator import admin
from watcher.simulator.adobe_vip.world import STATE

_ADMIN = admin.Admin(STATE)


def routes() -> list[web.RouteDef]:
    """The admin routes over the state stored under `world.STATE`."""
    return admin.customer_routes(_ADMIN)
