"""Microsoft Partner Center in the simulator, as one served vendor.

`world` holds customer tenants, their orders and the listing lag, `orders` builds and
patches orders as Partner Center's JSON, `routes` serves the Entra ID token endpoint and
the /v1 order endpoints, `admin` the admin routes that shape the world, `scenario` seeds
it and moves orders through their lifecycles.

    state = PartnerCenterState(clock, random.Random(1))
    scenario.seed(state, customers=2, orders_per_customer=5, now=clock())
    async with server.running(partner_center.api(state)) as sim:
        ...  # sim.base_url, sim.token_url (the partner tenant's Entra ID endpoint)

`CREDENTIALS` carries the refresh token of the app+user grant; the resource is
`world.RESOURCE`.
"""

from __future__ import annotations

from watcher.simulator import lifecycle
from watcher.simulator.partner_center import admin, routes, scenario
from watcher.simulator.partner_center.world import CREDENTIALS, NAME, STATE, PartnerCenterState

__all__ = ["CREDENTIALS", "NAME", "api", "seeded"]
# The real Partner Center can take 15 minutes to list a new order; a seeded world, seconds.
SEEDED_TUNING = {"listing_lag_s": 5.0}

PACKAGE = lifecycle.Package(
    NAME, STATE, routes, admin, scenario.LIFECYCLE, PartnerCenterState, tuning=SEEDED_TUNING
)
api = PACKAGE.api
seeded = PACKAGE.seeded
