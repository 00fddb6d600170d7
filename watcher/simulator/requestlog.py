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

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

ADMIN_PREFIX = "/_admin/"


@dataclass(frozen=True, slots=True)
class Entry:
    at: float
    method: str
    path_qs: str
    status: int
    request_id: str | None
    correlation_id: str | None
    api_key_present: bool
    authorization_present: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "method": self.method,
            "path_qs": self.path_qs,
            "status": self.status,
            "headers": {
                "X-Request-Id": self.request_id,
                "X-Correlation-Id": self.correlation_id,
                "X-Api-Key-present": self.api_key_present,
                "Authorization-present": self.authorization_present,
            },
        }


class RequestLog:
    """The newest `max_entries` requests, oldest first."""

    def __init__(
        self, *, max_entries: int = 10_000, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: deque[Entry] = deque(maxlen=max_entries)
        self._monotonic = monotonic

    def record(self, request: web.BaseRequest, *, status: int) -> None:
        headers = request.headers
        self._entries.append(
            Entry(
                at=self._monotonic(),
                method=request.method,
                path_qs=request.path_qs,
                status=status,
                request_id=headers.get("X-Request-Id"),
                correlation_id=headers.get("X-Correlation-Id"),
                api_key_present="X-Api-Key" in headers,
                authorization_present="Authorization" in headers,
            )
        )

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
    entries = [entry.to_json() for entry in request.app[LOG].entries()]
    return web.Response(body=orjson.dumps(entries), content_type="application/json")


async def _clear(request: web.Request) -> web.Response:
    body = orjson.dumps({"cleared": request.app[LOG].clear()})
    return web.Response(body=body, content_type="application/json")
