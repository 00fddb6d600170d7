"""The admin plumbing every vendor simulator shares: run an action on the world, reply JSON.

A vendor's admin module says what each of its routes does to its world as an `Action`, a
function of the state that returns (status, JSON-ready payload). `Admin.run` applies it to
the state stored under the vendor's app key and serialises the reply with orjson; a
`VendorError` raised on the way becomes that vendor's own error body and status, so the
error shapes stay with the vendors (Adobe's code/message, Elastic Path's envelope, ...).

Two routes mean the same for every world and are built here: `POST /_admin/tokens/revoke`
(every issued token dies -> {"revoked": n}) and `POST /_admin/advance` (one step of the
vendor's scenario on the world's own clock and Random -> {"changes": [...]}).
Worlds keyed by customer (Adobe, Partner Center) also share `customer_routes`: create a
customer (201, 200 if known -> {"customerId": ...}), create an order from a partial one
(201), patch one (200); what a partial order or a patch may say is the vendor's.

A body that is not JSON reads as None (`body`), which every action rejects as not an object
with the vendor's 400, so a bad admin call never changes the world.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

import orjson
from aiohttp import web


class VendorError(Exception, abc.ABC):
    """A reply in a vendor's error shape: each vendor's `ApiError` says how the body looks."""

    status: int

    @abc.abstractmethod
    def body(self) -> Any:
        """The vendor's JSON error body for this error."""


class World(Protocol):
    """What the shared routes need of a vendor's state."""

    @property
    def rng(self) -> random.Random: ...

    def clock(self) -> datetime: ...

    def revoke_tokens(self) -> int: ...


class Change(Protocol):
    def to_json(self) -> Any: ...


class CustomerWorld(World, Protocol):
    """A world whose orders belong to customers the admin creates by id."""

    def add_customer(self, customer_id: str) -> bool: ...

    def create_order(self, customer_id: str, partial: object) -> dict[str, Any]: ...

    def patch_order(self, customer_id: str, order_id: str, patch: object) -> dict[str, Any]: ...


S = TypeVar("S", bound=World)
C = TypeVar("C", bound=CustomerWorld)
Action = Callable[[S], tuple[int, Any]]
Step = Callable[[S, random.Random, datetime], Sequence[Change]]


class Admin(Generic[S]):
    """The admin side of one vendor: where its state lives and how its scenario moves."""

    def __init__(self, key: web.AppKey[S], *, step: Step[S]) -> None:
        self._key = key
        self._step = step

    def routes(self) -> list[web.RouteDef]:
        """The routes every world answers alike: token revocation and a scenario step."""
        return [
            web.post("/_admin/tokens/revoke", self._revoke_tokens),
            web.post("/_admin/advance", self._advance),
        ]

    def run(self, request: web.Request, act: Action[S]) -> web.Response:
        """`act` on the request's world; a VendorError becomes the vendor's error reply."""
        try:
            status, payload = act(request.app[self._key])
        except VendorError as exc:
            status, payload = exc.status, exc.body()
        return reply(payload, status=status)

    async def _revoke_tokens(self, request: web.Request) -> web.Response:
        return self.run(request, lambda state: (200, {"revoked": state.revoke_tokens()}))

    async def _advance(self, request: web.Request) -> web.Response:
        def act(state: S) -> tuple[int, Any]:
            changes = self._step(state, state.rng, state.clock())
            return 200, {"changes": [change.to_json() for change in changes]}

        return self.run(request, act)


def customer_routes(admin: Admin[C]) -> list[web.RouteDef]:
    """Customer and order routes of a world keyed by customer id."""
    orders = "/_admin/customers/{customer_id}/orders"

    async def create_customer(request: web.Request) -> web.Response:
        customer_id = request.match_info["customer_id"]

        def act(state: C) -> tuple[int, Any]:
            created = state.add_customer(customer_id)
            return (201 if created else 200), {"customerId": customer_id}

        return admin.run(request, act)

    async def create_order(request: web.Request) -> web.Response:
        partial = await body(request)
        customer_id = request.match_info["customer_id"]
        return admin.run(request, lambda state: (201, state.create_order(customer_id, partial)))

    async def patch_order(request: web.Request) -> web.Response:
        patch = await body(request)
        info = request.match_info

        def act(state: C) -> tuple[int, Any]:
            return 200, state.patch_order(info["customer_id"], info["order_id"], patch)

        return admin.run(request, act)

    return [
        web.post("/_admin/customers/{customer_id}", create_customer),
        web.post(orders, create_order),
        web.patch(orders + "/{order_id}", patch_order),
    ]


async def body(request: web.Request) -> object:
    """The JSON body; None when unreadable, which every action rejects as not an object."""
    raw = await request.read()
    try:
        return orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        return None


def reply(payload: Any, *, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")
