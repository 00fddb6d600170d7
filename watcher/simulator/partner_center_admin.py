"""Admin routes of the Partner Center simulator: shape the world over HTTP, without auth.

Tests and the demo drive the simulator through these rather than through Python objects, so
the same calls work against a simulator in another process (`order-watcher simulate`).

    POST  /_admin/customers/{customer}                        empty customer (201, 200 if known)
    POST  /_admin/customers/{customer}/orders                 partial Order -> stored (201)
    PATCH /_admin/customers/{customer}/orders/{order}         admin patch -> stored (200)
    PUT   /_admin/customers/{customer}/orders/{order}/provisioning
                                                              {"<line>": status | null} (200)
    POST  /_admin/tokens/revoke                               every issued access token dies
    POST  /_admin/advance                                     one scenario step -> changes

A partial order may carry `id`, `status`, `creationDate`, `billingCycle`, `listingLagS`
(seconds before it enters the collection; the state's lag by default, and none for a
creationDate older than the lag) and `lineItems`, each optionally with `provisioning`
(a line's provisioning status; by default prefulfillmentPending for a pending order,
fulfilled for a completed one, unfulfilled for a cancelled one; null for none). A patch may
set order fields, update `lineItems` by lineItemNumber (quantity, subscriptionId (null
removes it), provisioning, ...), add `addLines`, and set `listed` (false takes the order
out of the collection, true puts it back at once). Errors use Partner Center's error body:
404 for unknown customers and orders, 400 "invalid-request" for a body the simulator cannot
apply (nothing is changed then). Fault and request-log routes live with their owners.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from watcher.simulator import partner_center_scenario as scenario
from watcher.simulator import partner_center_world as world
from watcher.simulator.partner_center_orders import ApiError

Action = Callable[[world.PartnerCenterState], tuple[int, Any]]
_ORDERS = "/_admin/customers/{customer_id}/orders"


def routes() -> list[web.RouteDef]:
    """The admin routes over the state stored under `world.STATE`."""
    return [
        web.post("/_admin/customers/{customer_id}", _create_customer),
        web.post(_ORDERS, _create_order),
        web.patch(_ORDERS + "/{order_id}", _patch_order),
        web.put(_ORDERS + "/{order_id}/provisioning", _set_provisioning),
        web.post("/_admin/tokens/revoke", _revoke_tokens),
        web.post("/_admin/advance", _advance),
    ]


async def _create_customer(request: web.Request) -> web.Response:
    customer_id = request.match_info["customer_id"]

    def act(state: world.PartnerCenterState) -> tuple[int, Any]:
        created = state.add_customer(customer_id)
        return (201 if created else 200), {"customerId": customer_id}

    return _run(request, act)


async def _create_order(request: web.Request) -> web.Response:
    body = await _body(request)
    customer_id = request.match_info["customer_id"]
    return _run(request, lambda state: (201, state.create_order(customer_id, body)))


async def _patch_order(request: web.Request) -> web.Response:
    body = await _body(request)
    info = request.match_info
    return _run(
        request, lambda state: (200, state.patch_order(info["customer_id"], info["order_id"], body))
    )


async def _set_provisioning(request: web.Request) -> web.Response:
    body = await _body(request)
    info = request.match_info

    def act(state: world.PartnerCenterState) -> tuple[int, Any]:
        return 200, state.set_provisioning(info["customer_id"], info["order_id"], body)

    return _run(request, act)


async def _revoke_tokens(request: web.Request) -> web.Response:
    return _run(request, lambda state: (200, {"revoked": state.revoke_tokens()}))


async def _advance(request: web.Request) -> web.Response:
    def act(state: world.PartnerCenterState) -> tuple[int, Any]:
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
        status, payload = act(request.app[world.STATE])
    except ApiError as exc:
        status, payload = exc.status, exc.body()
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")
