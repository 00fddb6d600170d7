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

from watcher.simulator import lifecycle
from watcher.simulator.elastic_path import admin, routes, scenario
from watcher.simulator.elastic_path.world import CREDENTIALS, NAME, STATE, ElasticPathState

__all__ = ["CREDENTIALS", "NAME", "api", "seeded"]

PACKAGE = lifecycle.Package(NAME, STATE, routes, admin, scenario, ElasticPathState)
api = PACKAGE.api
seeded = PACKAGE.seeded
