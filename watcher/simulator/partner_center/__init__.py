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

import random
from datetime import datetime
from typing import Any

from watcher.simulator.partner_center import admin, routes, scenario
from watcher.simulator.partner_center.world import CREDENTIALS, NAME, STATE, PartnerCenterState
from watcher.simulator.server import VendorApi

__all__ = ["CREDENTIALS", "NAME", "api", "seeded"]
# The real Partner Center can take 15 minutes to list a new order; a seeded world, seconds.
SEEDED_LISTING_LAG_S = 5.0


def api(state: PartnerCenterState) -> VendorApi[PartnerCenterState]:
    """`state` served: Partner Center's vendor and admin routes, and its scenario's step."""
    served = [*routes.routes(), *admin.routes()]
    return VendorApi(NAME, state, STATE, routes.WIRE, served, advance=scenario.advance)


def seeded(
    *, customers: int, orders_per_customer: int, now: datetime, rng: random.Random
) -> tuple[VendorApi[Any], list[str]]:
    """A fresh world on `rng`, listing new orders after seconds, with the scenario seeded."""
    state = PartnerCenterState(rng=rng, listing_lag_s=SEEDED_LISTING_LAG_S)
    ids = scenario.seed(
        state, customers=customers, orders_per_customer=orders_per_customer, now=now
    )
    return api(state), ids
