"""The simulator's HTTP server: an aiohttp application around a simulated world, and its life.

`build_app` composes the generic parts around the vendor's routes: the request log outermost
(so it sees the final status, faults included), then fault injection over the vendor's API
prefixes, then the vendor's routes and the admin routes. `running` serves that on a real
socket for as long as the `async with` block runs (port 0 picks a free port);
`serve_forever` is the loop behind `order-watcher simulate` and `demo`, and can also advance
the scenario every `tick_s` seconds.

Stopping first ends every pending slow fault, then closes the site, so shutting down never
waits on a stalled request its client already gave up on.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from watcher.simulator import adobe_admin, adobe_vip, faults, requestlog, scenario

log = logging.getLogger(__name__)
SHUTDOWN_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class Simulator:
    """A running simulator: where to reach it and the world it serves."""

    base_url: str
    state: adobe_vip.AdobeVipState

    @property
    def token_url(self) -> str:
        return self.base_url + adobe_vip.TOKEN_PATH


def build_app(state: adobe_vip.AdobeVipState, *, stopping: asyncio.Event) -> web.Application:
    """The application serving `state`; setting `stopping` cuts slow faults short."""
    fault_injection = faults.middleware(
        state.faults,
        prefixes=adobe_vip.API_PREFIXES,
        error_body=adobe_vip.fault_body,
        truncate=adobe_vip.truncate,
        stopping=stopping,
    )
    app = web.Application(middlewares=[requestlog.middleware(state.requests), fault_injection])
    app[adobe_vip.STATE] = state
    app[faults.BOOK] = state.faults
    app[requestlog.LOG] = state.requests
    app.add_routes(adobe_vip.routes())
    app.add_routes(adobe_admin.routes())
    app.add_routes(faults.routes())
    app.add_routes(requestlog.routes())
    return app


@asynccontextmanager
async def running(
    state: adobe_vip.AdobeVipState, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[Simulator]:
    """Serve `state` on `host`:`port` until the block ends."""
    stopping = asyncio.Event()
    runner = web.AppRunner(
        build_app(state, stopping=stopping), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        yield Simulator(base_url=_base_url(host, runner.addresses[0][1]), state=state)
    finally:
        stopping.set()
        await runner.cleanup()


async def serve_forever(
    state: adobe_vip.AdobeVipState,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tick_s: float | None = None,
    rng: random.Random | None = None,
    on_ready: Callable[[Simulator], None] | None = None,
    on_advance: Callable[[list[scenario.Change]], None] | None = None,
) -> None:
    """Serve until cancelled; with `tick_s`, run `scenario.advance` that often."""
    async with running(state, host=host, port=port) as sim:
        log.info("simulator listening on %s", sim.base_url)
        if on_ready is not None:
            on_ready(sim)
        if tick_s is None:
            await asyncio.Event().wait()
        else:
            ticks = rng if rng is not None else state.rng
            await _advance_forever(state, ticks, tick_s=tick_s, on_advance=on_advance)


async def _advance_forever(
    state: adobe_vip.AdobeVipState,
    rng: random.Random,
    *,
    tick_s: float,
    on_advance: Callable[[list[scenario.Change]], None] | None,
) -> None:
    while True:
        await asyncio.sleep(tick_s)
        changes = scenario.advance(state, rng, state.clock())
        log.info("simulator advanced: %d changes", len(changes))
        if on_advance is not None:
            on_advance(changes)


def _base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"
