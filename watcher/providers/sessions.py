"""The connection pools vendor calls go out on, and the trace that counts their requests.

`pooled` is a session for vendor calls (adapters set their own timeouts; redirects are never
followed, see `translate.send`). The service gives each source a pool of its own
(`vendor`), whose TraceConfig reports every request to `Metrics.vendor_request`: timed to
the reply's headers, labelled by `metrics.endpoint(path)` and status, "error" when no reply
came. The adapters stay unaware of metrics.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from types import SimpleNamespace

import aiohttp
from yarl import URL

from watcher.metrics import Metrics, endpoint

# The type the composition root passes around, so only providers/ imports the client library.
Session = aiohttp.ClientSession


@contextlib.asynccontextmanager
async def pooled(
    *, trace_configs: Sequence[aiohttp.TraceConfig] = ()
) -> AsyncIterator[aiohttp.ClientSession]:
    """A connection pool for vendor calls; adapters set their own timeouts."""
    connector = aiohttp.TCPConnector(limit=100, ttl_dns_cache=300)
    async with aiohttp.ClientSession(
        connector=connector, raise_for_status=False, trace_configs=list(trace_configs)
    ) as session:
        yield session


def vendor(
    source: str, metrics: Metrics
) -> contextlib.AbstractAsyncContextManager[aiohttp.ClientSession]:
    """The source's own connection pool, each of whose requests `metrics` counts and times."""
    return pooled(trace_configs=[trace(metrics, source)])


def trace(metrics: Metrics, source: str) -> aiohttp.TraceConfig:
    """A TraceConfig for `source`'s vendor session that reports every request to `metrics`."""
    trace = aiohttp.TraceConfig()

    async def started(
        _: aiohttp.ClientSession, ctx: SimpleNamespace, __: aiohttp.TraceRequestStartParams
    ) -> None:
        ctx.started = time.perf_counter()

    async def replied(
        _: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        _observe(metrics, source, ctx, params.url, str(params.response.status))

    async def failed(
        _: aiohttp.ClientSession,
        ctx: SimpleNamespace,
        params: aiohttp.TraceRequestExceptionParams,
    ) -> None:
        _observe(metrics, source, ctx, params.url, "error")

    trace.on_request_start.append(started)
    trace.on_request_end.append(replied)
    trace.on_request_exception.append(failed)
    return trace


def _observe(metrics: Metrics, source: str, ctx: SimpleNamespace, url: URL, code: str) -> None:
    seconds = time.perf_counter() - getattr(ctx, "started", time.perf_counter())
    metrics.vendor_request(source, endpoint(url.path), code, seconds)
