"""Admin routes of the Partner Center simulator: shape the world over HTTP, without auth.

Tests and the demo drive the simulator through these rather than through Python objects, so
the same calls work against a simulator in another process (`order-watcher simulate`).

    POST  /_admin/customers/{customer}                        empty customer (201, 200 if known)
    POST  /_admin/customers/{customer}/orders                 partial Order -> stored (201)
    PATCH /_admin/customers/{customer}/orders/{order}         admin patch -> stored (200)
    PUT   /_admin/customers/{customer}/orders/{order}/provisioning
                                                              {"<line>": status | null} (200)

A partial order may carry `id`, `status`, `creationDate`, `billingCycle`, `listingLagS`
(seconds before it enters the collection; the state's lag by default, and none for a
creationDate older than the lag) and `lineItems`, each optionally with `provisioning`
(a line's provisioning status; by default prefulfillmentPending for a pending order,
fulfilled for a completed one, unfulfilled for a cancelled one; null for none). A patch may
set order fields, update `lineItems` by lineItemNumber (quantity, subscriptionId (null
removes it), provisioning, ...), add `addLines`, and set `listed` (false takes the order
out of the collection, true puts it back at once). Errors use Partner Center's error body:
404 for unknown customers and orders, 400 "invalid-request" for a body the simulator cannot
apply (nothing is changed then). The routes every world answers alike (faults, the
request log, token revocation, a scenario step) come with the server.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from watcher.simulator import admin
from watcher.simulator.partner_center import world

_ADMIN = admin.Admin(world.STATE)
_ORDERS = "/_admin/customers/{customer_id}/orders"


def routes() -> list[web.RouteDef]:
    """The admin routes over the state stored under `world.STATE`."""
    return [
        *admin.customer_routes(_ADMIN),
        web.put(_ORDERS + "/{order_id}/provisioning", _set_provisioning),
    ]


async def _set_provisioning(request: web.Request) -> web.Response:
    body = await admin.body(request)
    info = request.match_info

    def act(state: world.PartnerCenterState) -> tuple[int, Any]:
        return 200, state.set_provisioning(info["customer_id"], info["order_id"], body)

    return _ADMIN.run(request, act)
