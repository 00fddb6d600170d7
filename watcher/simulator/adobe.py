"""Adobe VIP Marketplace as one served vendor: its world, vendor and admin routes, scenario."""

from __future__ import annotations

import random
from datetime import datetime

from aiohttp import web

from watcher.simulator import adobe_admin, adobe_vip, scenario
from watcher.simulator.server import VendorApi

NAME = "adobe_vip"


def api(state: adobe_vip.AdobeVipState) -> VendorApi[adobe_vip.AdobeVipState]:
    def install(app: web.Application) -> None:
        app[adobe_vip.STATE] = state
        app.add_routes(adobe_vip.routes())
        app.add_routes(adobe_admin.routes())

    def advance(rng: random.Random, now: datetime) -> list[scenario.Change]:
        return scenario.advance(state, rng, now)

    return VendorApi(
        name=NAME,
        state=state,
        faults=state.faults,
        requests=state.requests,
        api_prefixes=adobe_vip.API_PREFIXES,
        token_path=adobe_vip.TOKEN_PATH,
        error_body=adobe_vip.fault_body,
        truncate=adobe_vip.truncate,
        install=install,
        clock=state.clock,
        advance=advance,
    )
