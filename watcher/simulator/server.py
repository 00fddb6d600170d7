"""The simulator's HTTP servers: one aiohttp application per simulated vendor, and their life.

Every vendor's world is a `World`: the injected clock and Random, the demo `Credentials`
it accepts, and the generic fault book, request log and token book; a vendor adds its
customers and orders, and a test may tune any world's token lifetime and log size
(`Tuning`). A vendor is served as a `VendorApi`: its world, the app key its
routes find the world under, its vendor and admin routes, how it looks on the wire to the
generic parts (`Wire`: token path, API prefixes faults apply to, error body, truncation)
and its scenario's step. `build_app` composes the generic parts around a vendor's routes:
the request log outermost (so it sees the final status, faults included), then fault
injection over the vendor's API prefixes, then the routes; the admin routes every world
answers alike (faults, the request log, token revocation, a scenario step) come from here
too. Every vendor gets its own port, so its URLs look exactly like the real ones
(`links.next` paths, token endpoints) with only the host swapped.

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
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypedDict, TypeVar, Unpack

from aiohttp import web

from watcher.simulator import admin, faults, requestlog
from watcher.simulator.faults import ErrorBody, FaultBook, Truncate
from watcher.simulator.requestlog import RequestLog
from watcher.simulator.tokens import TokenBook

log = logging.getLogger(__name__)
SHUTDOWN_TIMEOUT_S = 1.0
Clock = Callable[[], datetime]
K = TypeVar("K")
S = TypeVar("S", bound="World[Any]")
Step = Callable[[S, random.Random, datetime], Sequence[admin.Change]]
OnPrepare = Callable[[web.Request, web.StreamResponse], Awaitable[None]]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Credentials:
    """The demo credentials a simulated world accepts (Partner Center adds a refresh token)."""

    client_id: str
    client_secret: str
    refresh_token: str | None = None


class Tuning(TypedDict, total=False):
    """What a test may tune on any world: token lifetime, request log size."""

    token_ttl_s: int
    request_log_max_entries: int


class World(Generic[K]):
    """What every simulated world has; `K` is the kind of the tokens it issues.

    A vendor's world says on its class which credentials it accepts, how long its tokens
    live by default, and which headers its request log records by value (trace ids) and
    by presence only (credentials).
    """

    ACCEPTS: ClassVar[Credentials]
    TOKEN_TTL_S: ClassVar[int] = 3600
    TRACE_HEADERS: ClassVar[tuple[str, ...]] = ("X-Request-Id", "X-Correlation-Id")
    CREDENTIAL_HEADERS: ClassVar[tuple[str, ...]] = ("X-Api-Key", "Authorization")

    def __init__(
        self, clock: Clock = utc_now, rng: random.Random | None = None, **tuning: Unpack[Tuning]
    ) -> None:
        self.clock = clock
        self.rng = rng if rng is not None else random.Random()
        self.token_ttl_s = tuning.get("token_ttl_s", self.TOKEN_TTL_S)
        self.faults = FaultBook()
        self.requests = RequestLog(
            max_entries=tuning.get("request_log_max_entries", 10_000),
            trace_headers=self.TRACE_HEADERS,
            credential_headers=self.CREDENTIAL_HEADERS,
        )
        self.tokens: TokenBook[K] = TokenBook(clock)
        # The most orders a listing page holds here, whatever is asked: a store or tenant
        # configured below the API's own maximum. None: the API's maximum.
        self.page_limit: int | None = None

    def accepts(self, client_id: object, client_secret: object) -> bool:
        """Whether a token request names this world's client and its secret."""
        expected = (self.ACCEPTS.client_id, self.ACCEPTS.client_secret)
        return (client_id, client_secret) == expected

    def token_valid(self, token: str) -> bool:
        return self.tokens.live(token)

    def issued_tokens(self) -> list[str]:
        """Every access token issued and not revoked, live or expired."""
        return self.tokens.issued()

    def revoke_tokens(self) -> int:
        return self.tokens.revoke_all()


@dataclass(frozen=True, slots=True)
class Wire:
    """How a vendor's API looks to the generic parts: where it is and how its errors look."""

    token_path: str
    api_prefixes: tuple[str, ...]
    error_body: ErrorBody
    truncate: Truncate


@dataclass(frozen=True, slots=True)
class VendorApi(Generic[S]):
    """What the server needs to know to serve one simulated vendor."""

    name: str
    state: S
    key: web.AppKey[S]
    wire: Wire
    routes: Sequence[web.RouteDef]
    advance: Step[S] | None = None
    on_prepare: OnPrepare | None = None

    @property
    def faults(self) -> FaultBook:
        return self.state.faults

    @property
    def requests(self) -> RequestLog:
        return self.state.requests

    def step(self, rng: random.Random, now: datetime) -> Sequence[admin.Change]:
        """One step of the vendor's scenario; no changes for a vendor without one."""
        return () if self.advance is None else self.advance(self.state, rng, now)


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
        return self.base_url + self.api.wire.token_path


def build_app(api: VendorApi[Any], *, stopping: asyncio.Event) -> web.Application:
    """The application serving `api`; setting `stopping` cuts slow faults short."""
    wire = api.wire
    fault_injection = faults.middleware(
        api.faults,
        prefixes=wire.api_prefixes,
        error_body=wire.error_body,
        truncate=wire.truncate,
        stopping=stopping,
    )
    app = web.Application(middlewares=[requestlog.middleware(api.requests), fault_injection])
    app[faults.BOOK] = api.faults
    app[requestlog.LOG] = api.requests
    app[api.key] = api.state
    if api.on_prepare is not None:
        app.on_response_prepare.append(api.on_prepare)
    app.add_routes(api.routes)
    app.add_routes(_world_routes(api))
    app.add_routes(faults.routes())
    app.add_routes(requestlog.routes())
    return app


def _world_routes(api: VendorApi[Any]) -> list[web.RouteDef]:
    """`POST /_admin/tokens/revoke` -> {"revoked": n}; `POST /_admin/advance`: one step
    of the scenario on the world's own clock and Random -> {"changes": [...]};
    `POST /_admin/paging {"page_limit": n | null}`: the most orders a listing page holds."""

    async def revoke(request: web.Request) -> web.Response:
        return admin.answer(lambda: {"revoked": api.state.revoke_tokens()})

    async def advance(request: web.Request) -> web.Response:
        def changes() -> dict[str, Any]:
            steps = api.step(api.state.rng, api.state.clock())
            return {"changes": [change.to_json() for change in steps]}

        return admin.answer(changes)

    async def paging(request: web.Request) -> web.Response:
        body = await admin.body(request)
        value = body.get("page_limit") if isinstance(body, dict) else 0
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            return admin.reply(
                {"error": "page_limit must be a positive integer or null"}, status=400
            )
        api.state.page_limit = value
        return admin.reply({"page_limit": value})

    return [
        web.post("/_admin/tokens/revoke", revoke),
        web.post("/_admin/advance", advance),
        web.post("/_admin/paging", paging),
    ]


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
            changes = api.step(rng, api.state.clock())
            log.debug("simulator: %s advanced, %d changes", api.name, len(changes))
            if on_advance is not None:
                on_advance(api.name, changes)


def _base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"
