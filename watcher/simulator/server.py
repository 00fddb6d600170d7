"""The simulator's HTTP servers: one aiohttp application per simulated vendor, and their life.

Each vendor is described by a `VendorApi`: its world (`state`), how it installs its vendor
and admin routes, the API prefixes faults apply to, and how its errors look. `build_app`
composes the generic parts around a vendor's routes: the request log outermost (so it sees
the final status, faults included), then fault injection over the vendor's API prefixes,
then the routes. Every vendor gets its own port, so its URLs look exactly like the real
ones (`links.next` paths, token endpoints) with only the host swapped.

`running` serves one vendor on a real socket for as long as the `async with` block runs
(port 0 picks a free port); `serve_forever` is the loop behind `order-watcher simulate` and
`demo`: it serves several vendors on consecutive ports and can advance each vendor's
scenario every `tick_s` seconds.

Stopping first ends every pending slow fault, then closes the site, so shutting down never
waits on a stalled request its client already gave up on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from aiohttp import web

from watcher.simulator import faults, requestlog
from watcher.simulator.faults import ErrorBody, FaultBook, Truncate
from watcher.simulator.requestlog import RequestLog

log = logging.getLogger(__name__)
SHUTDOWN_TIMEOUT_S = 1.0
S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class VendorApi(Generic[S]):
    """What the server needs to know to serve one simulated vendor."""

    name: str
    state: S
    faults: FaultBook
    requests: RequestLog
    api_prefixes: tuple[str, ...]
    token_path: str
    error_body: ErrorBody
    truncate: Truncate
    install: Callable[[web.Application], None]
    clock: Callable[[], datetime]
    advance: Callable[[random.Random, datetime], Sequence[Any]] | None = None


@dataclass(frozen=True, slots=True)
class Simulator(Generic[S]):
    """A running simulated vendor: where to reach it and the world it serves."""

    base_url: str
    api: VendorApi[S]

    @property
    def state(self) -> S:
        return self.api.state

    @property
    def token_url(self) -> str:
        return self.base_url + self.api.token_path


def build_app(api: VendorApi[Any], *, stopping: asyncio.Event) -> web.Application:
    """The application serving `api`; setting `stopping` cuts slow faults short."""
    fault_injection = faults.middleware(
        api.faults,
        prefixes=api.api_prefixes,
        error_body=api.error_body,
        truncate=api.truncate,
        stopping=stopping,
    )
    app = web.Application(middlewares=[requestlog.middleware(api.requests), fault_injection])
    app[faults.BOOK] = api.faults
    app[requestlog.LOG] = api.requests
    api.install(app)
    app.add_routes(faults.routes())
    app.add_routes(requestlog.routes())
    return app


@contextlib.asynccontextmanager
async def running(
    api: VendorApi[S], *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[Simulator[S]]:
    """Serve `api` on `host`:`port` until the block ends."""
    stopping = asyncio.Event()
    runner = web.AppRunner(
        build_app(api, stopping=stopping), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        yield Simulator(base_url=_base_url(host, runner.addresses[0][1]), api=api)
    finally:
        stopping.set()
        await runner.cleanup()


async def serve_forever(
    apis: Sequence[VendorApi[Any]],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tick_s: float | None = None,
    rng: random.Random | None = None,
    on_ready: Callable[[list[Simulator[Any]]], None] | None = None,
    on_advance: Callable[[str, Sequence[Any]], None] | None = None,
) -> None:
    """Serve every vendor until cancelled, on `port`, `port`+1, ... (or free ports for 0).

    With `tick_s`, each vendor's scenario advances that often.
    """
    async with contextlib.AsyncExitStack() as stack:
        sims = [
            await stack.enter_async_context(
                running(api, host=host, port=port + index if port else 0)
            )
            for index, api in enumerate(apis)
        ]
        for sim in sims:
            log.info("simulator: %s listening on %s", sim.api.name, sim.base_url)
        if on_ready is not None:
            on_ready(sims)
        if tick_s is None:
            await asyncio.Event().wait()
        await _advance_forever(apis, rng or random.Random(), tick_s=tick_s, on_advance=on_advance)


async def _advance_forever(
    apis: Sequence[VendorApi[Any]],
    rng: random.Random,
    *,
    tick_s: float | None,
    on_advance: Callable[[str, Sequence[Any]], None] | None,
) -> None:
    assert tick_s is not None
    while True:
        await asyncio.sleep(tick_s)
        for api in apis:
            if api.advance is None:
                continue
            changes = api.advance(rng, api.clock())
            log.debug("simulator: %s advanced, %d changes", api.name, len(changes))
            if on_advance is not None:
                on_advance(api.name, changes)


def _base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"
