"""Elastic Path's vendor routes in the simulator: the token endpoint and the order reads.

    POST /oauth/access_token        form grant_type=client_credentials, client_id, secret
    GET  /v2/orders                 filter, sort, page[limit], page[offset], include=items
    GET  /v2/orders/{id}            include=items puts the items under `included.items`
    GET  /v2/orders/{id}/items

Every /v2 call needs `Authorization: Bearer <live token>`; otherwise 401 "Unable to
validate access token", as the vendor's errors guide shows. Errors use the vendor's
envelope `{"errors": [{"status", "title", "detail"}]}`, with an integer status on /v2 (the
errors guide) and a string one on the token endpoint (its OpenAPI document). A token reply
carries the fields the documentation lists at the top level; the authentication OpenAPI
document wraps them in `data`, which the live API and the vendor's own guide do not.

`WIRE` tells the generic parts where the API is, how this vendor's errors look
(`fault_body`) and what a cut-off reply leaves out (its `data`).
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web

from watcher.simulator import admin, tokens
from watcher.simulator.elastic_path import listing
from watcher.simulator.elastic_path.orders import ApiError
from watcher.simulator.elastic_path.world import STATE, ElasticPathState
from watcher.simulator.faults import without
from watcher.simulator.server import Wire

TOKEN_PATH = "/oauth/access_token"
API_PREFIXES = ("/v2/",)
_FAULT_TITLES = {401: "Unable to validate access token", 429: "Too Many Requests"}


def routes() -> list[web.RouteDef]:
    """The vendor routes over the state stored under `STATE`."""
    return [
        web.post(TOKEN_PATH, _token),
        web.get("/v2/orders", _list_orders),
        web.get("/v2/orders/{order_id}", _get_order),
        web.get("/v2/orders/{order_id}/items", _get_items),
    ]


def fault_body(status: int) -> dict[str, Any]:
    """The vendor's error body for an injected `status`."""
    if status in _FAULT_TITLES:
        return ApiError(status, _FAULT_TITLES[status]).body()
    if status >= 500:
        body = ApiError(status, "Internal Server Error", "There was an internal server error, "
                        "you can report with your request id.").body()  # fmt: skip
        body["errors"][0]["request_id"] = "sim-request-0001"
        return body
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    return ApiError(status, title).body()


# A truncated reply misses what a reader needs: the `data` of a list, order or item list.
WIRE = Wire(TOKEN_PATH, API_PREFIXES, error_body=fault_body, truncate=without("data"))


async def _token(request: web.Request) -> web.Response:
    form = await request.post()
    if form.get("grant_type") != "client_credentials":
        return _token_error(400, "Bad Request", "grant_type must be client_credentials")
    reply = request.app[STATE].issue_token(
        str(form.get("client_id", "")), str(form.get("client_secret", ""))
    )
    if reply is None:
        return _token_error(401, "Unauthorized", "Invalid client_id or client_secret")
    return admin.reply(reply)


async def _list_orders(request: web.Request) -> web.Response:
    url = str(request.url.with_query(None))

    def produce(state: ElasticPathState) -> Any:
        query = listing.parse(
            request.query, page_limit=state.page_limit, offset_cap=state.offset_cap
        )
        return state.list_orders(query, url=url)

    return _authorized(request, produce)


async def _get_order(request: web.Request) -> web.Response:
    order_id = request.match_info["order_id"]

    def produce(state: ElasticPathState) -> Any:
        document: dict[str, Any] = {"data": state.order(order_id)}
        if "items" in request.query.get("include", "").split(","):
            document["included"] = {"items": state.items(order_id)}
        return document

    return _authorized(request, produce)


async def _get_items(request: web.Request) -> web.Response:
    order_id = request.match_info["order_id"]
    return _authorized(request, lambda state: {"data": state.items(order_id)})


def _authorized(request: web.Request, produce: Callable[[ElasticPathState], Any]) -> web.Response:
    state = request.app[STATE]

    def checked() -> Any:
        token = tokens.bearer(request.headers.get("Authorization", ""))
        if token is None or not state.token_valid(token):
            raise ApiError(401, "Unable to validate access token")
        return produce(state)

    return admin.answer(checked)


def _token_error(status: int, title: str, detail: str) -> web.Response:
    error = {"title": title, "status": str(status), "detail": detail}
    return admin.reply({"errors": [error]}, status=status)
