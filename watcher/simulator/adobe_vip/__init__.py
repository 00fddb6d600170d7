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

import random
from datetime import datetime
from typing import Any

from watcher.simulator.adobe_vip import admin, routes, scenario
from watcher.simulator.adobe_vip.world import CREDENTIALS, NAME, STATE, AdobeVipState
from watcher.simulator.server import VendorApi

__all__ = ["CREDENTIALS", "NAME", "api", "seeded"]


def api(state: AdobeVipState) -> VendorApi[AdobeVipState]:
    """`state` served: Adobe's vendor and admin routes, and its scenario's step."""
    served = [*routes.routes(), *admin.routes()]
    return VendorApi(NAME, state, STATE, routes.WIRE, served, advance=scenario.advance)


def seeded(
    *, customers: int, orders_per_customer: int, now: datetime, rng: random.Random
) -> tuple[VendorApi[Any], list[str]]:
    """A fresh world on `rng` with the scenario seeded; the served API and the customer ids."""
    state = AdobeVipState(rng=rng)
    ids = scenario.seed(
        state, customers=customers, orders_per_customer=orders_per_customer, now=now
    )
    return api(state), ids
