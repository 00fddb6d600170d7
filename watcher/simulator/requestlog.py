"""The request log of a simulated vendor API, independent of the vendor.

The outermost middleware records every request except the admin API's own, with the status
it finally got (faults included), so tests can assert what a client actually sent: how many
calls, which pages, whether it reused a correlation id. Only ids and the presence of the
secret-bearing headers are kept, never their values. `at` is monotonic seconds (injectable),
good for ordering and gaps, not for wall-clock time. The log keeps the newest
`max_entries` so a long demo does not grow without bound.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from watcher.simulator.admin import reply

ADMIN_PREFIX = "/_admin/"


@dataclass(frozen=True, slots=True)
class Entry:
    """One request: its trace header values and which credential headers it carried."""

    at: float
    method: str
    path_qs: str
    status: int
    trace: tuple[tuple[str, str | None], ...]
    present: tuple[tuple[str, bool], ...]

    def to_json(self) -> dict[str, Any]:
        headers: dict[str, str | bool | None] = dict(self.trace)
        headers |= {f"{name}-present": present for name, present in self.present}
        return {
            "at": self.at,
            "method": self.method,
            "path_qs": self.path_qs,
            "status": self.status,
            "headers": headers,
        }


class RequestLog:
    """The newest `max_entries` requests, oldest first.

    `trace_headers` are recorded with their values (a vendor's request and correlation
    ids); of `credential_headers` only their presence is kept, never their values.
    """

    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
        trace_headers: tuple[str, ...] = ("X-Request-Id", "X-Correlation-Id"),
        credential_headers: tuple[str, ...] = ("X-Api-Key", "Authorization"),
    ) -> None:
        self._entries: deque[Entry] = deque(maxlen=max_entries)
        self._monotonic = monotonic
        self._trace_headers = trace_headers
        self._credential_headers = credential_headers

    def record(self, request: web.BaseRequest, *, status: int) -> None:
        headers = request.headers
        self._entries.append(
            Entry(
                at=self._monotonic(),
                method=request.method,
                path_qs=request.path_qs,
                status=status,
                trace=tuple((name, headers.get(name)) for name in self._trace_headers),
                present=tuple((name, name in headers) for name in self._credential_headers),
            )
        )

    @property
    def max_entries(self) -> int | None:
        return self._entries.maxlen

    def entries(self) -> list[Entry]:
        return list(self._entries)

    def clear(self) -> int:
        cleared = len(self._entries)
        self._entries.clear()
        return cleared


LOG = web.AppKey("request_log", RequestLog)


def middleware(log: RequestLog) -> Middleware:
    """Middleware recording every non-admin request in `log` with its final status."""

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        try:
            reply = await handler(request)
        except web.HTTPException as exc:
            log.record(request, status=exc.status)
            raise
        except Exception:
            log.record(request, status=500)
            raise
        log.record(request, status=reply.status)
        return reply

    return record


def routes() -> list[web.RouteDef]:
    """Admin routes over the log stored in the application under `LOG`."""
    return [web.get("/_admin/requests", _list), web.delete("/_admin/requests", _clear)]


async def _list(request: web.Request) -> web.Response:
    return reply([entry.to_json() for entry in request.app[LOG].entries()])


async def _clear(request: web.Request) -> web.Response:
    return reply({"cleared": request.app[LOG].clear()})
