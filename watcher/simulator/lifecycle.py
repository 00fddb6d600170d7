"""The scenario driver every vendor simulator shares: seed a world, then step its orders.

A vendor's scenario is a `Lifecycle`: the driver owns the loops and the order in which
they draw from the Random, the vendor says only what is its own. Seeding draws the new
owners' ids (`new_owners`, which also adds them to the world), then for each owner, in
that order, spreads its orders over the 20 days before `now` (`admin.spread`) and creates
each one settled or open (`seed_order`). A step walks the world's rounds (`rounds`): a
round names the orders that step (`step`, oldest first) and then the owners that may each
get a new open order (`open_order`, with chance `Odds.new_order`). Worlds keyed by customer
have a round per customer; an Elastic Path store steps all its orders in one round.

Because every draw happens in this fixed order, the same seed gives the same world and a
seeded Random replays the same story; the vendors' tests pin both.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Generic, TypeVar

from watcher.simulator import admin

S = TypeVar("S")
W = TypeVar("W")
R = TypeVar("R")
Round = tuple[Iterable[R], Iterable[W]]


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


class Lifecycle(abc.ABC, Generic[S, W, R]):
    """How one vendor's orders are seeded and move, on a world `S` of owners `W`, orders `R`.

    ODDS are its chances; RNG_SEED the seed used when a caller names none.
    """

    ODDS: ClassVar[Odds]
    RNG_SEED: ClassVar[int] = 7

    @abc.abstractmethod
    def new_owners(self, state: S, rng: random.Random, count: int) -> list[W]:
        """`count` new owners, drawn before any of their orders and added to `state`."""

    @abc.abstractmethod
    def seed_order(
        self, state: S, owner: W, rng: random.Random, *, created_at: datetime, settled: bool
    ) -> None:
        """Create one seeded order of `owner`'s, settled or still open."""

    @abc.abstractmethod
    def rounds(self, state: S) -> Iterator[Round[R, W]]:
        """The step's rounds in order; each is read only when the one before has moved."""

    @abc.abstractmethod
    def step(self, state: S, order: R, rng: random.Random) -> Sequence[admin.Change]:
        """One order's move in this step, if any."""

    @abc.abstractmethod
    def open_order(self, state: S, owner: W, rng: random.Random, now: datetime) -> admin.Change:
        """Create a new open order for `owner`; its creation as a change."""

    def seed(
        self,
        state: S,
        *,
        customers: int,
        orders_per_customer: int,
        rng_seed: int | None = None,
        now: datetime,
    ) -> list[W]:
        """Add `customers` owners with `orders_per_customer` orders each; the owners."""
        rng = random.Random(self.RNG_SEED if rng_seed is None else rng_seed)
        owners = self.new_owners(state, rng, customers)
        for owner in owners:
            spread = admin.spread(rng, now=now, count=orders_per_customer, share=self.ODDS.settled)
            for created_at, settled in spread:
                self.seed_order(state, owner, rng, created_at=created_at, settled=settled)
        return owners

    def advance(self, state: S, rng: random.Random, now: datetime) -> list[admin.Change]:
        """One step of every scripted lifecycle; what changed, in a deterministic order."""
        changes: list[admin.Change] = []
        for orders, owners in self.rounds(state):
            for order in orders:
                changes.extend(self.step(state, order, rng))
            for owner in owners:
                if rng.random() < self.ODDS.new_order:
                    changes.append(self.open_order(state, owner, rng, now))
        return changes
