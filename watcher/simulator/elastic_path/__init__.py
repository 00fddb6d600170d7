"""Elastic Path Commerce Cloud in the simulator, as one served vendor.

`world` holds the store's orders, `orders` keeps them as records and renders them as
Elastic Path's JSON:API, `edits` applies admin create bodies and patches, `listing`
filters, sorts and pages `GET /v2/orders`, `routes` serves the token endpoint and the /v2
order reads, `admin` the admin routes that shape the store, `scenario` seeds it and moves
orders through their lifecycles.

    state = ElasticPathState(clock, random.Random(1))
    scenario.seed(state, customers=2, orders_per_customer=5, now=clock())
    async with server.running(elastic_path.api(state)) as sim:
        ...  # sim.base_url, sim.token_url (/oauth/access_token), sim.state
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from watcher.simulator.elastic_path import admin, routes, scenario
from watcher.simulator.elastic_path.world import CREDENTIALS, NAME, STATE, ElasticPathState
from watcher.simulator.server import VendorApi

__all__ = ["CREDENTIALS", "NAME", "api", "seeded"]


def api(state: ElasticPathState) -> VendorApi[ElasticPathState]:
    """`state` served: Elastic Path's vendor and admin routes, and its scenario's step."""
    served = [*routes.routes(), *admin.routes()]
    return VendorApi(NAME, state, STATE, routes.WIRE, served, advance=scenario.advance)


def seeded(
    *, customers: int, orders_per_customer: int, now: datetime, rng: random.Random
) -> tuple[VendorApi[Any], list[str]]:
    """A fresh store on `rng` with the scenario seeded; the served API and the customer ids."""
    state = ElasticPathState(rng=rng)
    ids = scenario.seed(
        state, customers=customers, orders_per_customer=orders_per_customer, now=now
    )
    return api(state), ids
