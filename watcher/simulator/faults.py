"""Fault injection for a simulated vendor API, independent of the vendor.

Tests and the demo register faults over HTTP (`POST /_admin/faults`, `DELETE` clears). The
middleware from `middleware()` consults the `FaultBook` on every request under the vendor's
API prefixes before the vendor sees it, so a fault behaves like trouble in transit (a
gateway's 429 or 503, a stalled link, a cut-off body) rather than a vendor decision. That is
also why faulted replies never reach a vendor's idempotency cache.

Faults apply in order of creation: the first one whose `path_contains` occurs in the request's
path and query string takes the request and spends one of its `count` hits (-1: until
cleared). Kinds:

- status: reply `status` with the vendor's error body (`error_body`), or with `body` when
  the fault gives one (a vendor that echoes what it was sent); `Retry-After` carries
  `retry_after_s` when set, and a 429 always has one (1 s unless told).
- slow: wait `delay_s`, then serve normally; stopping the server cuts the wait short.
- malformed: 200 with a body that is not valid JSON.
- truncated: 200 with the vendor's real reply minus the fields its `truncate` drops.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from watcher.simulator.admin import reply as _json

Kind = Literal["status", "slow", "malformed", "truncated"]
KINDS: frozenset[str] = frozenset({"status", "slow", "malformed", "truncated"})
MALFORMED_BODY = b'{"totalCount": 1, "items": [{"orderId": "51200'
ErrorBody = Callable[[int], Mapping[str, Any]]
Truncate = Callable[[Any], Any]
_FIELDS = frozenset(
    {"kind", "status", "retry_after_s", "delay_s", "count", "path_contains", "body"}
)


@dataclass(slots=True)
class Fault:
    id: int
    kind: Kind
    status: int = 500
    retry_after_s: float | None = None
    delay_s: float = 1.0
    count: int = 1
    path_contains: str | None = None
    body: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def hits(self, path_qs: str) -> bool:
        return self.path_contains is None or self.path_contains in path_qs


class InvalidFault(ValueError):
    """A fault specification the simulator cannot apply."""


class FaultBook:
    """The registered faults of one simulated vendor, in order of creation."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._next_id = 1

    def add(self, spec: object) -> Fault:
        """Register the fault described by a JSON object; InvalidFault when it makes no sense."""
        fault = _parse(spec, fault_id=self._next_id)
        self._next_id += 1
        self._faults.append(fault)
        return fault

    def clear(self) -> int:
        cleared = len(self._faults)
        self._faults.clear()
        return cleared

    def active(self) -> list[Fault]:
        return list(self._faults)

    def take(self, path_qs: str) -> Fault | None:
        """The fault that takes a request to `path_qs`, spending one of its hits."""
        for fault in self._faults:
            if fault.hits(path_qs):
                if fault.count > 0:
                    fault.count -= 1
                if fault.count == 0:
                    self._faults.remove(fault)
                return fault
        return None


BOOK = web.AppKey("fault_book", FaultBook)


def middleware(
    book: FaultBook,
    *,
    prefixes: tuple[str, ...],
    error_body: ErrorBody,
    truncate: Truncate,
    stopping: asyncio.Event,
) -> Middleware:
    """Middleware applying `book` to requests whose path starts with one of `prefixes`."""

    @web.middleware
    async def inject(request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = book.take(request.path_qs) if request.path.startswith(prefixes) else None
        if fault is None:
            return await handler(request)
        if fault.kind == "status":
            return _status_reply(fault, error_body)
        if fault.kind == "malformed":
            return web.Response(body=MALFORMED_BODY, content_type="application/json")
        if fault.kind == "slow":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), fault.delay_s)
            return await handler(request)
        return _truncated(await handler(request), truncate)

    return inject


def without(*fields: str) -> Truncate:
    """A `truncate` that drops the first of `fields` a reply has: what a reader needs most."""

    def truncate(payload: Any) -> Any:
        if not isinstance(payload, dict):
            return payload
        drop = next((name for name in fields if name in payload), None)
        return {key: value for key, value in payload.items() if key != drop}

    return truncate


def routes() -> list[web.RouteDef]:
    """Admin routes over the book stored in the application under `BOOK`."""
    return [
        web.post("/_admin/faults", _add),
        web.get("/_admin/faults", _list),
        web.delete("/_admin/faults", _clear),
    ]


async def _add(request: web.Request) -> web.Response:
    try:
        fault = request.app[BOOK].add(orjson.loads(await request.read()))
    except (orjson.JSONDecodeError, InvalidFault) as exc:
        return _json({"code": "invalid-request", "message": str(exc)}, status=400)
    return _json(fault.to_json(), status=201)


async def _list(request: web.Request) -> web.Response:
    return _json([fault.to_json() for fault in request.app[BOOK].active()])


async def _clear(request: web.Request) -> web.Response:
    return _json({"cleared": request.app[BOOK].clear()})


def _status_reply(fault: Fault, error_body: ErrorBody) -> web.Response:
    retry_after_s = fault.retry_after_s
    if retry_after_s is None and fault.status == 429:
        retry_after_s = 1
    headers = {} if retry_after_s is None else {"Retry-After": _seconds(retry_after_s)}
    body = error_body(fault.status) if fault.body is None else fault.body
    return _json(body, status=fault.status, headers=headers)


def _truncated(reply: web.StreamResponse, truncate: Truncate) -> web.StreamResponse:
    if not isinstance(reply, web.Response) or not isinstance(reply.body, bytes):
        return reply
    return _json(truncate(orjson.loads(reply.body)))


def _seconds(value: float) -> str:
    """Whole seconds as HTTP wants them; a fraction is kept so tests need not wait a second."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _parse(spec: object, *, fault_id: int) -> Fault:
    if not isinstance(spec, Mapping):
        raise InvalidFault("a fault is a JSON object")
    if unknown := sorted(spec.keys() - _FIELDS):
        raise InvalidFault(f"unknown fault fields: {', '.join(unknown)}")
    if spec.get("kind") not in KINDS:
        raise InvalidFault(f"kind must be one of {', '.join(sorted(KINDS))}")
    fault = Fault(id=fault_id, kind=cast(Kind, spec["kind"]))
    fault.status = _int_field(spec, "status", default=fault.status, low=100, high=599)
    fault.count = _int_field(spec, "count", default=fault.count, low=-1)
    fault.delay_s = _seconds_field(spec, "delay_s", default=fault.delay_s)
    if spec.get("retry_after_s") is not None:
        fault.retry_after_s = _seconds_field(spec, "retry_after_s", default=0.0)
    fault.path_contains = _optional_text(spec, "path_contains")
    fault.body = _optional_object(spec, "body")
    if fault.count == 0:
        raise InvalidFault("count must be positive, or -1 for until cleared")
    return fault


def _int_field(
    spec: Mapping[str, Any], name: str, *, default: int, low: int, high: int | None = None
) -> int:
    value = spec.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidFault(f"{name} must be an integer, not {value!r}")
    if value < low or (high is not None and value > high):
        raise InvalidFault(f"{name} out of range: {value!r}")
    return value


def _seconds_field(spec: Mapping[str, Any], name: str, *, default: float) -> float:
    value = spec.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InvalidFault(f"{name} must be a non-negative number, not {value!r}")
    return float(value)


def _optional_text(spec: Mapping[str, Any], name: str) -> str | None:
    value = spec.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidFault(f"{name} must be a string")
    return value


def _optional_object(spec: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    value = spec.get(name)
    if value is not None and not isinstance(value, dict):
        raise InvalidFault(f"{name} must be a JSON object")
    return value
