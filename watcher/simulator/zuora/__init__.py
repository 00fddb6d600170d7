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

from watcher.simulator import lifecycle
from watcher.simulator.zuora import admin, routes, scenario
from watcher.simulator.zuora.world import CREDENTIALS, NAME, STATE, ZuoraState

__all__ = ["CREDENTIALS", "NAME", "api", "seeded"]

PACKAGE = lifecycle.Package(
    NAME, STATE, routes, admin, scenario.LIFECYCLE, ZuoraState, on_prepare=routes.on_prepare
)
api = PACKAGE.api
seeded = PACKAGE.seeded
