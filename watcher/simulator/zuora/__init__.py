"""Zuora Quickstart API v2 in the simulator, as one served vendor.

`world` holds accounts, their orders, the request budget and queued vendor errors,
`orders` builds orders as Quickstart's JSON, `edits` applies admin patches, `listing`
filters, pages and expands what a reply shows, `routes` serves the token endpoint and the
/v2 order reads with Zuora's reply headers, `admin` the admin routes that shape the
world, `scenario` seeds it and moves orders through their lifecycles.

    state = ZuoraState(clock, random.Random(1))
    scenario.seed(state, accounts=2, orders_per_account=5, now=clock())
    async with server.running(zuora.api(state)) as sim:
        ...  # sim.base_url (the REST host; the API is under /v2), sim.token_url
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from watcher.simulator.server import VendorApi
from watcher.simulator.zuora import admin, routes, scenario
from watcher.simulator.zuora.world import CREDENTIALS, NAME, STATE, ZuoraState

__all__ = ["CREDENTIALS", "NAME", "api", "seeded"]


def api(state: ZuoraState) -> VendorApi[ZuoraState]:
    """`state` served: Zuora's routes and reply headers, admin routes, its scenario's step."""
    served = [*routes.routes(), *admin.routes()]
    return VendorApi(
        NAME, state, STATE, routes.WIRE, served, scenario.advance, on_prepare=routes.on_prepare
    )


def seeded(
    *, customers: int, orders_per_customer: int, now: datetime, rng: random.Random
) -> tuple[VendorApi[Any], list[str]]:
    """A fresh world on `rng` with `customers` accounts seeded; the API and the account ids."""
    state = ZuoraState(rng=rng)
    ids = scenario.seed(state, accounts=customers, orders_per_account=orders_per_customer, now=now)
    return api(state), ids
