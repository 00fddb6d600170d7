"""Partner Center's vendor routes on the simulator: Entra ID tokens and the order endpoints.

    POST /{tenant}/oauth2/token                                   Entra ID (v1 endpoint)
    GET  /v1/customers?size=N                                     the first page of customers
    GET  /v1/customers?seekOperation=Next                         the next, by MS-ContinuationToken
    GET  /v1/customers/{customer}/orders                          the whole collection
    GET  /v1/customers/{customer}/orders/{order}                  one order (no listing lag)
    GET  /v1/customers/{customer}/orders/{order}/provisioningstatus   app+user tokens only

The token endpoint serves the simulator's partner tenant with both grants: client
credentials (app-only) and refresh_token (app+user); both need the client secret and the
Partner Center `resource`. Replies look like Entra ID's v1 endpoint, `expires_in` a string
included; refusals are OAuth errors with AADSTS codes (401 invalid_client, 400 otherwise).

Every /v1 call: no bearer token or a dead one is 401; an app-only token on
provisioningstatus is 403, as Partner Center refuses it. Error bodies have Partner Center's
shape {code, description, data, source}; the codes are the simulator's own (the HTTP
status). Replies echo MS-RequestId and MS-CorrelationId (a new GUID when the caller sent
none) and add MS-CV and MS-ServerId. An injected 429 has the throttling body
{statusCode, message} and a Retry-After header, as the real gateway sends.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from watcher.simulator import admin, tokens
from watcher.simulator.faults import without
from watcher.simulator.partner_center import orders as pc_orders
from watcher.simulator.partner_center import world
from watcher.simulator.partner_center.orders import ApiError
from watcher.simulator.server import Wire

TOKEN_PATH = f"/{world.PARTNER_TENANT}/oauth2/token"
API_PREFIXES = ("/v1/",)
_ORDER = "/v1/customers/{customer_id}/orders/{order_id}"
Produce = Callable[[world.PartnerCenterState], Any]


def routes() -> list[web.RouteDef]:
    """The token and order routes over the state stored under `world.STATE`."""
    return [
        web.post("/{tenant}/oauth2/token", _token),
        web.get("/v1/customers", _list_customers),
        web.get("/v1/customers/{customer_id}/orders", _list_orders),
        web.get(_ORDER, _get_order),
        web.get(_ORDER + "/provisioningstatus", _provisioning_status),
    ]


def fault_body(status: int) -> dict[str, Any]:
    """Partner Center's error body for an injected `status`."""
    if status == 429:
        return {"statusCode": 429, "message": "Rate limit is exceeded. Try again later."}
    return pc_orders.error_for(status).body()


# A truncated reply misses what a reader needs: a collection its items, an order its lines.
WIRE = Wire(TOKEN_PATH, API_PREFIXES, error_body=fault_body, truncate=without("items", "lineItems"))


async def _token(request: web.Request) -> web.Response:
    form = await request.post()
    state = request.app[world.STATE]
    refusal = _token_refusal(state, request.match_info["tenant"], form)
    if refusal is not None:
        return refusal
    kind: world.TokenKind = "user" if form.get("grant_type") == "refresh_token" else "app"
    token, ttl_s = state.issue_token(kind)
    issued = int(state.clock().timestamp())
    reply: dict[str, Any] = {
        "token_type": "Bearer",
        "expires_in": str(ttl_s),
        "ext_expires_in": str(ttl_s),
        "expires_on": str(issued + ttl_s),
        "not_before": str(issued),
        "resource": world.RESOURCE,
        "access_token": token,
    }
    if kind == "user":
        reply |= {"scope": "user_impersonation", "refresh_token": world.REFRESH_TOKEN}
    return admin.reply(reply, status=200)


def _token_refusal(
    state: world.PartnerCenterState, tenant: str, form: Mapping[str, Any]
) -> web.Response | None:
    grant = form.get("grant_type")
    if tenant != world.PARTNER_TENANT:
        return _oauth_error(400, "invalid_request", "AADSTS90002: Tenant not found.")
    if grant not in ("client_credentials", "refresh_token"):
        return _oauth_error(400, "unsupported_grant_type", "AADSTS70003: unsupported grant.")
    if not state.accepts(form.get("client_id"), form.get("client_secret")):
        return _oauth_error(401, "invalid_client", "AADSTS7000215: Invalid client secret.")
    if form.get("resource") != world.RESOURCE:
        return _oauth_error(400, "invalid_resource", "AADSTS500011: resource not found.")
    if grant == "refresh_token" and form.get("refresh_token") != world.REFRESH_TOKEN:
        return _oauth_error(400, "invalid_grant", "AADSTS70000: The refresh token is invalid.")
    return None


async def _list_customers(request: web.Request) -> web.Response:
    continuation = None
    if request.query.get("seekOperation") == "Next":
        continuation = request.headers.get("MS-ContinuationToken", "")
    size = request.query.get("size")
    return _guarded(
        request, lambda s: s.list_customers(size=_size(size), continuation=continuation)
    )


def _size(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise ApiError(400, 400, f"size must be a positive whole number, not {raw!r}")
    return int(raw)


async def _list_orders(request: web.Request) -> web.Response:
    billing_type = request.query.get("billingType")
    customer_id = request.match_info["customer_id"]
    return _guarded(request, lambda s: s.list_orders(customer_id, billing_type=billing_type))


async def _get_order(request: web.Request) -> web.Response:
    info = request.match_info
    return _guarded(request, lambda s: s.order(info["customer_id"], info["order_id"]))


async def _provisioning_status(request: web.Request) -> web.Response:
    info = request.match_info
    return _guarded(
        request,
        lambda s: s.provisioning_status(info["customer_id"], info["order_id"]),
        needs_user=True,
    )


def _guarded(request: web.Request, produce: Produce, *, needs_user: bool = False) -> web.Response:
    """Token checks, then `produce`, with Partner Center's trace headers on the reply."""
    state = request.app[world.STATE]

    def checked() -> Any:
        _check_token(state, request, needs_user=needs_user)
        return produce(state)

    return admin.answer(checked, headers=_trace_headers(request))


def _check_token(
    state: world.PartnerCenterState, request: web.Request, *, needs_user: bool
) -> None:
    token = tokens.bearer(request.headers.get("Authorization", ""))
    kind = None if token is None else state.token_kind(token)
    if kind is None:
        raise ApiError(401, 401, "Unauthorized: the access token is missing, invalid or expired.")
    if needs_user and kind != "user":
        raise ApiError(403, 403, "This operation requires App+User authentication.")


def _trace_headers(request: web.Request) -> dict[str, str]:
    return {
        "MS-RequestId": request.headers.get("MS-RequestId") or str(uuid.uuid4()),
        "MS-CorrelationId": request.headers.get("MS-CorrelationId") or str(uuid.uuid4()),
        "MS-CV": "sim.0",
        "MS-ServerId": "sim-partner-center",
    }


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    body = {"error": error, "error_description": description, "error_codes": [], "timestamp": ""}
    return admin.reply(body, status=status)
