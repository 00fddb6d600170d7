"""The scenario driver every vendor simulator shares: seed a world, then step its orders.

A vendor's scenario is a `Lifecycle`: the driver owns the loops and the order in which
they draw from the Random, the vendor's `Script` says only what is its own. Seeding draws
the new owners' ids (`new_owners`), then for each owner, in that order, adds it
(`add_owner`), spreads its orders over the 20 days before `now` (`admin.spread`) and creates
each one settled or open (`seed_order`). A step walks the world's rounds (`rounds`): a
round names the orders that step (`step`, oldest first) and then the owners that may each
get a new open order (`open_order`, with chance `Odds.new_order`). Worlds keyed by customer
have a round per customer; an Elastic Path store steps all its orders in one round.

A vendor package is put together the same way too (`Package`): its routes and admin
routes served with its scenario's step (`api`), and a fresh world seeded (`seeded`).

Because every draw happens in this fixed order, the same seed gives the same world and a
seeded Random replays the same story; the vendors' tests pin both.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, Required, TypedDict, TypeVar, Unpack

from aiohttp import web

from watcher.simulator import admin
from watcher.simulator.server import OnPrepare, VendorApi, Wire, World

S = TypeVar("S")
W = TypeVar("W")
R = TypeVar("R")
S_contra = TypeVar("S_contra", contravariant=True)
V = TypeVar("V", bound=World[Any])
Round = tuple[Iterable[R], Iterable[W]]


class Seeding(TypedDict, total=False):
    """When seeded orders are created (the 20 days before `now`) and the seed drawn from."""

    now: Required[datetime]
    rng_seed: int | None


@dataclass(frozen=True, slots=True)
class Odds:
    """A vendor's chances: of a seeded order being settled, and per step and order or owner.

    Each vendor reads the moves its orders make; a move a vendor does not have stays 0.
    """

    settled: float
    new_order: float
    quantity: float
    complete: float = 0.0
    cancel: float = 0.0
    fail: float = 0.0
    pay: float = 0.0
    fulfil: float = 0.0


class Script(abc.ABC, Generic[S, W, R]):
    """What is a vendor's own in a seeding or a step of world `S`: owners `W`, orders `R`.

    A script is made for one call, on the world and the Random that call draws from.
    """

    def __init__(self, state: S, rng: random.Random) -> None:
        self.state = state
        self.rng = rng

    @abc.abstractmethod
    def new_owners(self, count: int) -> list[W]:
        """The ids of `count` new owners, drawn before any of their orders."""

    def add_owner(self, owner: W) -> None:
        """Add a new owner to the world; a world whose orders name their owner has none."""

    @abc.abstractmethod
    def seed_order(self, owner: W, created_at: datetime, settled: bool) -> None:
        """Create one seeded order of `owner`'s, settled or still open."""

    @abc.abstractmethod
    def rounds(self) -> Iterator[Round[R, W]]:
        """The step's rounds in order; each is read only when the one before has moved."""

    @abc.abstractmethod
    def step(self, order: R) -> Sequence[admin.Change]:
        """One order's move in this step, if any."""

    @abc.abstractmethod
    def open_order(self, owner: W, now: datetime) -> admin.Change:
        """Create a new open order for `owner`; its creation as a change."""


@dataclass(frozen=True, slots=True)
class Lifecycle(Generic[S, W, R]):
    """One vendor's scenario: its script, its odds, and the seed used when none is named."""

    script: Callable[[S, random.Random], Script[S, W, R]]
    odds: Odds
    rng_seed: int = 7

    def seed(
        self, state: S, *, customers: int, orders_per_customer: int, **seeding: Unpack[Seeding]
    ) -> list[W]:
        """Add `customers` owners with `orders_per_customer` orders each; the owners."""
        now, rng_seed = seeding["now"], seeding.get("rng_seed")
        script = self.script(state, random.Random(self.rng_seed if rng_seed is None else rng_seed))
        owners = script.new_owners(customers)
        for owner in owners:
            script.add_owner(owner)
            spread = admin.spread(
                script.rng, now=now, count=orders_per_customer, share=self.odds.settled
            )
            for created_at, settled in spread:
                script.seed_order(owner, created_at, settled)
        return owners

    def advance(self, state: S, rng: random.Random, now: datetime) -> list[admin.Change]:
        """One step of every scripted lifecycle; what changed, in a deterministic order."""
        script = self.script(state, rng)
        changes: list[admin.Change] = []
        for orders, owners in script.rounds():
            for order in orders:
                changes.extend(script.step(order))
            for owner in owners:
                if rng.random() < self.odds.new_order:
                    changes.append(script.open_order(owner, now))
        return changes


class Scenario(Protocol[S_contra]):
    """A vendor's scenario as its package uses it: a seed counted in customers, and a step."""

    def seed(
        self, state: S_contra, /, *, customers: int, orders_per_customer: int, now: datetime
    ) -> list[str]: ...

    def advance(
        self, state: S_contra, rng: random.Random, now: datetime, /
    ) -> Sequence[admin.Change]: ...


class Routes(Protocol):
    """A vendor's `admin` module: the routes it serves."""

    def routes(self) -> list[web.RouteDef]: ...


class VendorRoutes(Routes, Protocol):
    """A vendor's `routes` module: its API's routes, and how the API looks on the wire."""

    WIRE: Wire


@dataclass(frozen=True, slots=True)
class Package(Generic[V]):
    """What a vendor package serves and seeds: every package offers `api` and `seeded`."""

    name: str
    key: web.AppKey[V]
    routes: VendorRoutes
    admin: Routes
    scenario: Scenario[V]
    world: Callable[..., V]
    # What a seeded world is made with besides its Random (Partner Center's listing lag).
    tuning: Mapping[str, Any] = field(default_factory=dict)
    on_prepare: OnPrepare | None = None

    def api(self, state: V) -> VendorApi[V]:
        """`state` served: the vendor's routes and admin routes, and its scenario's step."""
        return VendorApi(
            self.name,
            state,
            self.key,
            self.routes.WIRE,
            [*self.routes.routes(), *self.admin.routes()],
            self.scenario.advance,
            self.on_prepare,
        )

    def seeded(
        self, *, customers: int, orders_per_customer: int, now: datetime, rng: random.Random
    ) -> tuple[VendorApi[Any], list[str]]:
        """A fresh world on `rng` with the scenario seeded; the served API and the owner ids."""
        state = self.world(rng=rng, **self.tuning)
        ids = self.scenario.seed(
            state, customers=customers, orders_per_customer=orders_per_customer, now=now
        )
        return self.api(state), ids
