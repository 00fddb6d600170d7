"""The service's own HTTP endpoints: /metrics, /healthz and /readyz.

    GET /metrics   the Prometheus exposition of the injected registry
    GET /healthz   200 {"status": "ok"} while the process runs
    GET /readyz    200 when ready, 503 otherwise:
                   {"ready": bool, "replica": {"id", "store", "leases"?},
                    "checks": {"store": {"ok", "detail"},
                    "broker": {...}, "sources": {"<name>": {...}}}}

`Readiness` holds what the rules need and the composition root keeps it current: the store
was read successfully the last time (`store_read`/`store_failed`), the relay's connection
(`broker_connected`, read on each request) and each source's last successful customer sync
(`source_polled`). Ready means all of:

- store: the last read of the outbox succeeded;
- broker: the relay is connected, or the outbox backlog is below `backlog_bound` (events
  wait safely in the outbox for a while; a growing backlog without a broker does not);
- sources: each had a successful sync within its `stale_after_s` (three poll intervals,
  jitter included); a source that has not succeeded yet counts as ready for that long
  after start. In a fleet (`leases_held`), a source this replica holds no lease of is the
  other replicas' to poll, and does not count against it.

`replica` names this process and its store backend; in a fleet it also gives the leases held
by source (`watcher.fleet`).

`serving(listen, ...)` is the async context manager the composition root enters: it binds
"host:port" (port 0 picks a free one) and yields the bound `Address`. Access logs are off:
scrapes and probes every few seconds would drown the log.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from watcher.core.errors import ConfigError

log = logging.getLogger(__name__)
BACKLOG_BOUND = 10_000
STALE_INTERVALS = 3


class Address(NamedTuple):
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail}


def stale_after_s(poll_interval_s: float, poll_jitter_s: float) -> float:
    """How long a source may go without a successful sync and still count as ready."""
    return STALE_INTERVALS * (poll_interval_s + poll_jitter_s)


class Readiness:
    """The readiness rules over the service's current state; see the module docstring."""

    def __init__(
        self,
        *,
        stale_after_s: Mapping[str, float],
        broker_connected: Callable[[], bool],
        backlog_bound: int = BACKLOG_BOUND,
        clock: Callable[[], float] = time.monotonic,
        replica: str = "",
        store: str = "",
        leases_held: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self._replica = {"id": replica, "store": store}
        self._leases_held = leases_held
        self._stale_after_s = dict(stale_after_s)
        self._broker_connected = broker_connected
        self._bound = backlog_bound
        self._clock = clock
        self._started = clock()
        self._last_success: dict[str, float] = {}
        self._store = Check(False, "the outbox has not been read yet")
        self._backlog = 0

    def source_polled(self, source: str) -> None:
        """A customer sync of `source` succeeded just now."""
        self._last_success[source] = self._clock()

    def store_read(self, backlog: int) -> None:
        self._store = Check(True, f"open; {backlog} event(s) waiting in the outbox")
        self._backlog = backlog

    def store_failed(self, detail: str) -> None:
        self._store = Check(False, detail)

    def report(self) -> dict[str, Any]:
        """The /readyz body."""
        broker = self._broker()
        sources = {name: self._source(name) for name in self._stale_after_s}
        checks = [self._store, broker, *sources.values()]
        replica: dict[str, Any] = dict(self._replica)
        if self._leases_held is not None:
            replica["leases"] = dict(self._leases_held())
        return {
            "ready": all(check.ok for check in checks),
            "replica": replica,
            "checks": {
                "store": self._store.to_json(),
                "broker": broker.to_json(),
                "sources": {name: check.to_json() for name, check in sources.items()},
            },
        }

    def _broker(self) -> Check:
        if self._broker_connected():
            return Check(True, "connected")
        waiting = f"{self._backlog} event(s) waiting in the outbox"
        if self._backlog < self._bound:
            return Check(True, f"not connected; {waiting}, below the bound of {self._bound}")
        return Check(False, f"not connected and {waiting}, the bound is {self._bound}")

    def _source(self, name: str) -> Check:
        if self._leases_held is not None and not self._leases_held().get(name, 0):
            return Check(True, "this replica holds none of its leases: the others poll it")
        allowed_s = self._stale_after_s[name]
        last = self._last_success.get(name)
        age_s = self._clock() - (self._started if last is None else last)
        if last is None:
            since = f"no successful poll in the {age_s:.1f}s since start"
        else:
            since = f"last successful poll {age_s:.1f}s ago"
        return Check(age_s <= allowed_s, f"{since} (allowed: {allowed_s:g}s)")


def parse_listen(listen: str) -> Address:
    """'host:port' or '[ipv6]:port' as an Address; a ConfigError naming http.listen if not."""
    host, colon, port = listen.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise ConfigError("http.listen", f"{listen!r} is not host:port, e.g. 127.0.0.1:9108")
    return Address(host.removeprefix("[").removesuffix("]"), int(port))


@contextlib.asynccontextmanager
async def serving(
    listen: str, *, registry: CollectorRegistry, readiness: Readiness
) -> AsyncIterator[Address]:
    """Serve the three endpoints on `listen` until the block ends; yield the bound address."""
    wanted = parse_listen(listen)
    runner = web.AppRunner(application(registry, readiness), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, wanted.host or None, wanted.port)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError("http.listen", f"cannot listen on {listen}: {exc.strerror}") from exc
        host, port = runner.addresses[0][:2]
        log.info("serving /metrics /healthz /readyz on %s:%d", host, port)
        yield Address(str(host), int(port))
    finally:
        await runner.cleanup()


def application(registry: CollectorRegistry, readiness: Readiness) -> web.Application:
    async def metrics(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        report = readiness.report()
        return web.json_response(report, status=200 if report["ready"] else 503)

    app = web.Application()
    app.add_routes(
        [web.get("/metrics", metrics), web.get("/healthz", healthz), web.get("/readyz", readyz)]
    )
    return app
