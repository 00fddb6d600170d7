"""Adobe VIP Marketplace (Commerce Partner API v3) in the simulator, as one served vendor.

`world` holds customers and orders, `orders` builds and patches them as Adobe's JSON,
`listing` reads the order list's query and pages it, `routes` serves the IMS token and
/v3 order endpoints, `admin` the admin routes that shape the world, `scenario` seeds it
and moves orders through their lifecycles.

    state = AdobeVipState(clock, random.Random(1))
    scenario.seed(state, customers=2, orders_per_customer=5, now=clock())
    async with server.running(adobe_vip.api(state)) as sim:
        ...  # sim.base_url, sim.token_url, sim.state
"""

from __future__ import annotations

from watcher.simulator import lifecycle
from watcher.simulator.adobe_vip import admin, routes, scenario
from watcher.simulator.adobe_vip.world import CREDENTIALS, NAME, STATE, AdobeVipState

__all__ = ["CREDENTIALS", "NAME", "api", "seeded"]

PACKAGE = lifecycle.Package(NAME, STATE, routes, admin, scenario.LIFECYCLE, AdobeVipState)
api = PACKAGE.api
seeded = PACKAGE.seeded
