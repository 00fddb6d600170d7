"""Builds a source's adapter from its vendor's folder, found by the vendor's name.

`watcher.vendors` names each vendor once; its adapter is the package
`watcher.providers.<name>`, which exports `Adapter` (taking the source and its client) and
`DIALECT` (what the vendor adds to the shared client). `adapter` builds the source's
`VendorClient` with that dialect and hands it to the adapter; `guarded` puts the result
behind the source's circuit breaker, as the service runs it.
"""

from __future__ import annotations

import asyncio
import importlib
import random
import time
from typing import Protocol, cast

import aiohttp

from watcher import vendors
from watcher.core.ports import Provider
from watcher.providers import guard, retry, tokens
from watcher.providers.client import Dialect, VendorClient
from watcher.settings import SourceSettings


class AdapterFactory(Protocol):
    def __call__(self, source: SourceSettings, client: VendorClient) -> Provider: ...


class VendorPackage(Protocol):
    """What `watcher.providers.<name>` exports."""

    Adapter: AdapterFactory
    DIALECT: Dialect


def package(name: str) -> VendorPackage:
    """The adapter package of the vendor called `name`."""
    vendor = vendors.named(name)
    return cast(VendorPackage, importlib.import_module(f"watcher.providers.{vendor.name}"))


def adapter(
    source: SourceSettings,
    session: aiohttp.ClientSession,
    *,
    sleep: retry.Sleep = asyncio.sleep,
    rng: random.Random | None = None,
    clock: tokens.Clock = time.monotonic,
) -> Provider:
    """The source's adapter on a client of its own, over `session`."""
    found = package(source.provider)
    client = VendorClient(source, session, dialect=found.DIALECT, sleep=sleep, rng=rng, clock=clock)
    return found.Adapter(source, client)


def guarded(source: SourceSettings, session: aiohttp.ClientSession) -> guard.Guarded:
    """The source's adapter behind its circuit breaker."""
    breaker = guard.CircuitBreaker(
        source.name,
        failures=source.limits.breaker_failures,
        open_s=source.limits.breaker_open_s,
    )
    found = package(source.provider)
    client = VendorClient(source, session, dialect=found.DIALECT)
    return guard.Guarded(found.Adapter(source, client), breaker, limiter=client.limiter)
