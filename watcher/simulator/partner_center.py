"""Microsoft Partner Center as one served vendor: its world, vendor and admin routes, scenario.

    state = PartnerCenterState(clock, random.Random(1))
    partner_center_scenario.seed(state, customers=2, orders_per_customer=5, now=clock())
    async with server.running(partner_center.api(state)) as sim:
        ...  # sim.base_url, sim.token_url (the partner tenant's Entra ID endpoint)

Demo credentials: `CLIENT_ID`, `CLIENT_SECRET`, `REFRESH_TOKEN` (app+user), `RESOURCE`.
"""

from __future__ import annotations

import random
from datetime import datetime

from aiohttp import web

from watcher.simulator import partner_center_admin, partner_center_routes, partner_center_scenario
from watcher.simulator import partner_center_world as world
from watcher.simulator.partner_center_world import (
    CLIENT_ID,
    CLIENT_SECRET,
    PARTNER_TENANT,
    REFRESH_TOKEN,
    RESOURCE,
    PartnerCenterState,
)
from watcher.simulator.server import VendorApi

NAME = "partner_center"
TOKEN_PATH = partner_center_routes.TOKEN_PATH

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "NAME",
    "PARTNER_TENANT",
    "REFRESH_TOKEN",
    "RESOURCE",
    "TOKEN_PATH",
    "PartnerCenterState",
    "api",
]


def api(state: PartnerCenterState) -> VendorApi[PartnerCenterState]:
    def install(app: web.Application) -> None:
        app[world.STATE] = state
        app.add_routes(partner_center_routes.routes())
        app.add_routes(partner_center_admin.routes())

    def advance(rng: random.Random, now: datetime) -> list[partner_center_scenario.Change]:
        return partner_center_scenario.advance(state, rng, now)

    return VendorApi(
        name=NAME,
        state=state,
        faults=state.faults,
        requests=state.requests,
        api_prefixes=partner_center_routes.API_PREFIXES,
        token_path=TOKEN_PATH,
        error_body=partner_center_routes.fault_body,
        truncate=partner_center_routes.truncate,
        install=install,
        clock=state.clock,
        advance=advance,
    )
