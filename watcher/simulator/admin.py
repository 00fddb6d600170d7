"""The admin plumbing every vendor simulator shares: run an action on the world, reply JSON.

A vendor's admin module says what each of its routes does to its world as an `Action`, a
function of the state that returns (status, JSON-ready payload). `Admin.run` applies it to
the state stored under the vendor's app key and serialises the reply with orjson; a
`VendorError` raised on the way becomes that vendor's own error body and status, so the
error shapes stay with the vendors (Adobe's code/message, Elastic Path's envelope, ...).
Vendor routes answer the same way (`answer`): what they produce, or the vendor's error.

The routes that mean the same for every world (token revocation, a scenario step) are
built by the server around every vendor. Worlds keyed by customer (Adobe, Partner
Center) also share `customer_routes`: create a customer (201, 200 if known ->
{"customerId": ...}), remove one with its orders (200, 404 if unknown), create an order from
a partial one (201), patch one (200); what a partial order or a patch may say is the
vendor's.

Admin bodies are checked alike where vendors word their refusals alike (`Checks`, raising
the vendor's own 400). The scenarios share their `Change` (each vendor names its fields)
and their arithmetic: `spread` draws seeded orders' creation times and whether each is
settled, `bumped` a line's changed quantity, both in a fixed order from the Random they
are given, so seeded worlds replay the same story.

A body that is not JSON reads as None (`body`), which every action rejects as not an object
with the vendor's 400, so a bad admin call never changes the world.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import orjson
from aiohttp import web

SPREAD_S = int(timedelta(days=20).total_seconds())


class VendorError(Exception, abc.ABC):
    """A reply in a vendor's error shape: each vendor's `ApiError` says how the body looks."""

    status: int

    @abc.abstractmethod
    def body(self) -> Any:
        """The vendor's JSON error body for this error."""


@dataclass(frozen=True, slots=True)
class Change:
    """One scenario step on one order, as the admin API and the demo show it.

    Each vendor names the fields its own way in `KEYS` (owner, order, line); an owner key
    of None leaves the owner out (an Elastic Path order is the store's).
    """

    KEYS: ClassVar[tuple[str | None, str, str]] = ("owner", "order", "line")
    kind: str
    owner: str | None
    order: str
    line: int | str | None = None
    before: Any = None
    after: Any = None

    def to_json(self) -> dict[str, Any]:
        owner, order, line = self.KEYS
        named = {} if owner is None else {owner: self.owner}
        ends = {"before": self.before, "after": self.after}
        return {"kind": self.kind, **named, order: self.order, line: self.line, **ends}


class CustomerWorld(Protocol):
    """A world whose orders belong to customers the admin creates by id."""

    def add_customer(self, customer_id: str) -> bool: ...

    def remove_customer(self, customer_id: str) -> bool: ...

    def create_order(self, customer_id: str, partial: object) -> dict[str, Any]: ...

    def patch_order(self, customer_id: str, order_id: str, patch: object) -> dict[str, Any]: ...


S = TypeVar("S")
C = TypeVar("C", bound=CustomerWorld)
Action = Callable[[S], tuple[int, Any]]
Settled = tuple[datetime, bool]


class Admin(Generic[S]):
    """The admin side of one vendor: where its state lives."""

    def __init__(self, key: web.AppKey[S]) -> None:
        self._key = key

    def run(self, request: web.Request, act: Action[S]) -> web.Response:
        """`act` on the request's world; a VendorError becomes the vendor's error reply."""
        try:
            status, payload = act(request.app[self._key])
        except VendorError as exc:
            status, payload = exc.status, exc.body()
        return reply(payload, status=status)


def customer_routes(admin: Admin[C]) -> list[web.RouteDef]:
    """Customer and order routes of a world keyed by customer id."""
    orders = "/_admin/customers/{customer_id}/orders"

    async def create_customer(request: web.Request) -> web.Response:
        customer_id = request.match_info["customer_id"]

        def act(state: C) -> tuple[int, Any]:
            created = state.add_customer(customer_id)
            return (201 if created else 200), {"customerId": customer_id}

        return admin.run(request, act)

    async def remove_customer(request: web.Request) -> web.Response:
        customer_id = request.match_info["customer_id"]

        def act(state: C) -> tuple[int, Any]:
            removed = state.remove_customer(customer_id)
            return (200 if removed else 404), {"customerId": customer_id, "removed": removed}

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
        web.delete("/_admin/customers/{customer_id}", remove_customer),
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


class Checks:
    """The checks of an admin body that vendors word alike, each failing with its 400."""

    def __init__(self, invalid: Callable[[str], VendorError]) -> None:
        self._invalid = invalid

    def text(self, value: object, name: str) -> str:
        if not isinstance(value, str):
            raise self._invalid(f"{name} must be a string, not {value!r}")
        return value

    def texts(self, fields: Mapping[str, Any], names: Iterable[str]) -> None:
        """Each of `names` that `fields` has is a string."""
        for name in names:
            if name in fields:
                self.text(fields[name], name)

    def items(self, value: object, name: str) -> list[Any]:
        if not isinstance(value, list):
            raise self._invalid(f"{name} must be a list")
        return value

    def mapping(self, value: object) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self._invalid(f"expected a JSON object, got {value!r}")
        return value


def answer(produce: Callable[[], Any], *, headers: Mapping[str, str] | None = None) -> web.Response:
    """200 with what `produce` makes; a VendorError on the way becomes the vendor's reply."""
    try:
        return reply(produce(), headers=headers)
    except VendorError as exc:
        return reply(exc.body(), status=exc.status, headers=headers)


def reply(
    payload: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON reply, serialised with orjson."""
    return web.Response(
        body=orjson.dumps(payload), status=status, headers=headers, content_type="application/json"
    )


def spread(rng: random.Random, *, now: datetime, count: int, share: float) -> Iterator[Settled]:
    """`count` creation times in the 20 days before `now`, each settled with chance `share`."""
    for _ in range(count):
        created_at = now - timedelta(seconds=rng.randrange(SPREAD_S))
        yield created_at, rng.random() < share


def bumped(rng: random.Random, before: int) -> int:
    """A changed quantity: a small step up or down, never below 1 and never the same."""
    after = max(1, before + rng.choice((-2, -1, 1, 2, 5)))
    return before + 1 if after == before else after
