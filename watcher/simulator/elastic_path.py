"""Elastic Path Commerce Cloud as one served vendor: its store, vendor and admin routes, scenario.

    state = ElasticPathState(clock, random.Random(1))
    elastic_path_scenario.seed(state, customers=2, orders_per_customer=5, now=clock())
    async with server.running(elastic_path.api(state)) as sim:
        ...  # sim.base_url, sim.token_url (/oauth/access_token), sim.state

Demo credentials: `CLIENT_ID` / `CLIENT_SECRET` (client_credentials grant).
"""

from __future__ import annotations

import random
from datetime import datetime

from aiohttp import web

from watcher.simulator import elastic_path_admin, elastic_path_routes, elastic_path_scenario
from watcher.simulator.elastic_path_world import CLIENT_ID, CLIENT_SECRET, ElasticPathState
from watcher.simulator.server import VendorApi

NAME = "elastic_path"
__all__ = ["CLIENT_ID", "CLIENT_SECRET", "NAME", "ElasticPathState", "api"]


def api(state: ElasticPathState) -> VendorApi[ElasticPathState]:
    def install(app: web.Application) -> None:
        app[elastic_path_routes.STATE] = state
        app.add_routes(elastic_path_routes.routes())
        app.add_routes(elastic_path_admin.routes())

    def advance(rng: random.Random, now: datetime) -> list[elastic_path_scenario.Change]:
        return elastic_path_scenario.advance(state, rng, now)

    return VendorApi(
        name=NAME,
        state=state,
        faults=state.faults,
        requests=state.requests,
        api_prefixes=elastic_path_routes.API_PREFIXES,
        token_path=elastic_path_routes.TOKEN_PATH,
        error_body=elastic_path_routes.fault_body,
        truncate=elastic_path_routes.truncate,
        install=install,
        clock=state.clock,
        advance=advance,
    )
