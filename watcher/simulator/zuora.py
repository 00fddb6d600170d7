"""Zuora Quickstart API v2 as one served vendor: its world, vendor and admin routes, scenario.

state = ZuoraState(clock, random.Random(1))
zuora_scenario.seed(state, accounts=2, orders_per_account=5, now=clock())
async with server.running(zuora.api(state)) as sim:
    ...  # sim.base_url (the REST host; the API is under /v2), sim.token_url
"""

from __future__ import annotations

import random
from datetime import datetime

from aiohttp import web

from watcher.simulator import zuora_admin, zuora_routes, zuora_scenario
from watcher.simulator.server import VendorApi
from watcher.simulator.zuora_world import ZuoraState

NAME = "zuora"


def api(state: ZuoraState) -> VendorApi[ZuoraState]:
    def install(app: web.Application) -> None:
        app[zuora_routes.STATE] = state
        app.add_routes(zuora_routes.routes())
        app.add_routes(zuora_admin.routes())
        app.on_response_prepare.append(zuora_routes.on_prepare)

    def advance(rng: random.Random, now: datetime) -> list[zuora_scenario.Change]:
        return zuora_scenario.advance(state, rng, now)

    return VendorApi(
        name=NAME,
        state=state,
        faults=state.faults,
        requests=state.requests,
        api_prefixes=zuora_routes.API_PREFIXES,
        token_path=zuora_routes.TOKEN_PATH,
        error_body=zuora_routes.fault_body,
        truncate=zuora_routes.truncate,
        install=install,
        clock=state.clock,
        advance=advance,
    )
