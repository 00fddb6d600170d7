"""`Guarded`, the provider behind a circuit breaker and the source's rate limiter.

First with hand-written providers for the concurrency of a probe (failing fast while one
runs, a cancelled or permanently failing probe, a fetch from before the circuit opened).
Then around the real Adobe VIP adapter against the simulator over real sockets, reading
its request log to see which calls reached the vendor: a persistent fault opens the
breaker, permanent errors never do, the probe closes it once the fault clears. Last, the
limiter spacing real vendor requests out.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from tests.guard_cases import (
    CUSTOMER,
    GUARD_LOGGER,
    OPEN_S,
    PAGED_CUSTOMER,
    SOURCE,
    UNKNOWN_CUSTOMER,
    ClockSleep,
    FakeMonotonic,
    breaker,
    guard_log,
    state,
)
from tests.plugins.simulator import SIM_NOW, AdobeSimulator, SimAdmin
from watcher.core.errors import PermanentProviderError, TransientProviderError
from watcher.core.models import Order
from watcher.providers import connect, guard
from watcher.settings import AuthSettings, LimitSettings, RetrySettings, SourceSettings
from watcher.simulator.adobe_vip.world import CLIENT_ID, CLIENT_SECRET

pytestmark = pytest.mark.timeout(15)


# --- Guarded with hand-written providers ----------------------------------------------


class HeldProvider:
    """A provider whose fetches wait until the test settles them, one outcome per customer."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._outcomes: dict[str, asyncio.Future[BaseException | None]] = {}

    async def fetch_orders(
        self, customer_id: str, *, since: datetime | None, changed_since: datetime | None = None
    ) -> list[Order]:
        self.calls.append(customer_id)
        error = await self._outcome(customer_id)
        if error is not None:
            raise error
        return []

    def settle(self, customer_id: str, error: BaseException | None = None) -> None:
        self._outcome(customer_id).set_result(error)

    def _outcome(self, customer_id: str) -> asyncio.Future[BaseException | None]:
        if customer_id not in self._outcomes:
            self._outcomes[customer_id] = asyncio.get_running_loop().create_future()
        return self._outcomes[customer_id]


async def started(guarded: guard.Guarded, customer_id: str) -> asyncio.Task[list[Order]]:
    """A fetch running in a task, already inside the provider."""
    task = asyncio.create_task(guarded.fetch_orders(customer_id, since=None))
    await asyncio.sleep(0)
    return task


async def opened_guard(clock: FakeMonotonic) -> tuple[guard.Guarded, HeldProvider]:
    """A Guarded whose breaker (failures=1) has just opened."""
    provider = HeldProvider()
    guarded = guard.Guarded(provider, breaker(clock, failures=1))
    provider.settle("down", TransientProviderError("HTTP 503"))
    with pytest.raises(TransientProviderError, match="503"):
        await guarded.fetch_orders("down", since=None)
    assert state(guarded) is guard.CircuitState.OPEN
    return guarded, provider


async def test_guarded_fails_fast_while_a_probe_runs() -> None:
    clock = FakeMonotonic()
    guarded, provider = await opened_guard(clock)
    clock.advance(OPEN_S)
    probe = await started(guarded, "probe")

    with pytest.raises(guard.CircuitOpenError):
        await guarded.fetch_orders("other", since=None)

    provider.settle("probe")
    assert await probe == []
    assert provider.calls == ["down", "probe"]
    assert state(guarded) is guard.CircuitState.CLOSED


async def test_guarded_releases_a_cancelled_probe() -> None:
    clock = FakeMonotonic()
    guarded, provider = await opened_guard(clock)
    clock.advance(OPEN_S)
    probe = await started(guarded, "probe")

    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe

    assert state(guarded) is guard.CircuitState.HALF_OPEN
    provider.settle("next")
    assert await guarded.fetch_orders("next", since=None) == []
    assert state(guarded) is guard.CircuitState.CLOSED


async def test_guarded_lets_a_permanent_error_free_the_probe_without_closing() -> None:
    clock = FakeMonotonic()
    guarded, provider = await opened_guard(clock)
    clock.advance(OPEN_S)
    provider.settle("gone", PermanentProviderError("HTTP 404"))

    with pytest.raises(PermanentProviderError):
        await guarded.fetch_orders("gone", since=None)

    assert state(guarded) is guard.CircuitState.HALF_OPEN
    provider.settle("next")
    assert await guarded.fetch_orders("next", since=None) == []


async def test_a_fetch_from_before_the_circuit_opened_does_not_free_the_probe_slot() -> None:
    clock = FakeMonotonic()
    provider = HeldProvider()
    guarded = guard.Guarded(provider, breaker(clock, failures=1))
    earlier = await started(guarded, "earlier")
    provider.settle("down", TransientProviderError("HTTP 503"))
    with pytest.raises(TransientProviderError):
        await guarded.fetch_orders("down", since=None)
    clock.advance(OPEN_S)
    probe = await started(guarded, "probe")

    provider.settle("earlier", PermanentProviderError("HTTP 404"))
    with pytest.raises(PermanentProviderError):
        await earlier
    provider.settle("second-probe")
    try:
        with pytest.raises(guard.CircuitOpenError):
            await guarded.fetch_orders("second-probe", since=None)
    finally:
        provider.settle("probe")
        await probe


class PagedFeed:
    """A store-wide feed of hand-written pages; an exception in place of a page is raised."""

    def __init__(self, *pages: list[Order] | Exception) -> None:
        self.pages = pages
        self.closed = 0

    async def fetch_orders(
        self, customer_id: str, *, since: datetime | None, changed_since: datetime | None = None
    ) -> list[Order]:
        return []

    async def store_orders(
        self, *, since: datetime | None, changed_since: datetime | None
    ) -> AsyncGenerator[list[Order], None]:
        try:
            for page in self.pages:
                if isinstance(page, Exception):
                    raise page
                yield page
        finally:
            self.closed += 1


async def read_all(guarded: guard.Guarded) -> list[list[Order]]:
    return [page async for page in guarded.store_orders(since=None, changed_since=None)]


async def test_each_page_of_a_store_wide_listing_goes_through_the_breaker() -> None:
    clock = FakeMonotonic()
    feed = PagedFeed([], TransientProviderError("HTTP 503"))
    guarded = guard.Guarded(feed, breaker(clock, failures=1))

    pages = guarded.store_orders(since=None, changed_since=None)
    assert await anext(pages) == []  # the first page comes through before the failure
    with pytest.raises(TransientProviderError, match="503"):
        await anext(pages)

    assert state(guarded) is guard.CircuitState.OPEN
    feed.pages = ([], [])
    with pytest.raises(guard.CircuitOpenError):
        await read_all(guarded)
    clock.advance(OPEN_S)
    assert await read_all(guarded) == [[], []]
    assert state(guarded) is guard.CircuitState.CLOSED
    assert feed.closed == 2  # the open circuit refused before the feed was started


async def test_a_store_wide_listing_left_early_is_closed() -> None:
    feed = PagedFeed([], [], [])
    guarded = guard.Guarded(feed, breaker(FakeMonotonic(), failures=1))

    pages = guarded.store_orders(since=None, changed_since=None)
    assert await anext(pages) == []
    await pages.aclose()

    assert feed.closed == 1
    assert state(guarded) is guard.CircuitState.CLOSED


async def test_a_provider_that_cannot_list_the_store_is_refused() -> None:
    guarded = guard.Guarded(HeldProvider(), breaker(FakeMonotonic(), failures=1))

    with pytest.raises(TypeError, match="cannot list the whole store"):
        await read_all(guarded)


# --- Guarded around the Adobe VIP adapter, against the simulator ----------------------


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def adobe_source(
    sim: AdobeSimulator, *, limits: LimitSettings, page_size: int = 10
) -> SourceSettings:
    auth = AuthSettings(
        token_url=sim.token_url, client_id=CLIENT_ID, client_secret=SecretStr(CLIENT_SECRET)
    )
    return SourceSettings(
        name=SOURCE,
        provider="adobe_vip",
        base_url=sim.base_url,
        customers=[CUSTOMER],
        page_size=page_size,
        timeout_s=5.0,
        auth=auth,
        retry=RetrySettings(attempts=2, base_delay_s=0.001, max_delay_s=0.01),
        limits=limits,
    )


def guarded_adobe(
    sim: AdobeSimulator, session: aiohttp.ClientSession, clock: FakeMonotonic
) -> guard.Guarded:
    """The adapter behind its breaker, built as the composition root does, on `clock`."""
    source = adobe_source(sim, limits=LimitSettings(breaker_failures=2, breaker_open_s=OPEN_S))
    circuit = guard.CircuitBreaker(
        source.name,
        failures=source.limits.breaker_failures,
        open_s=source.limits.breaker_open_s,
        clock=clock,
    )
    return guard.Guarded(connect.adapter(source, session, rng=random.Random(3)), circuit)


async def api_calls(admin: SimAdmin) -> list[dict[str, Any]]:
    return [entry for entry in await admin.requests() if entry["path_qs"].startswith("/v3/")]


async def fail_twice(guarded: guard.Guarded) -> None:
    for _ in range(2):
        with pytest.raises(TransientProviderError, match="HTTP 500"):
            await guarded.fetch_orders(CUSTOMER, since=None)


async def test_a_persistent_fault_opens_the_breaker_and_stops_vendor_calls(
    adobe_sim: AdobeSimulator, sim_admin: SimAdmin, session: aiohttp.ClientSession
) -> None:
    guarded = guarded_adobe(adobe_sim, session, FakeMonotonic())
    await sim_admin.fault(kind="status", status=500, count=-1)

    await fail_twice(guarded)
    reached = await sim_admin.requests()

    with pytest.raises(guard.CircuitOpenError, match=f"source {SOURCE}") as raised:
        await guarded.fetch_orders(CUSTOMER, since=None)
    assert raised.value.retry_after_s == OPEN_S
    assert [call["status"] for call in await api_calls(sim_admin)] == [500] * 4
    assert await sim_admin.requests() == reached


async def test_permanent_errors_never_open_the_breaker(
    adobe_sim: AdobeSimulator, sim_admin: SimAdmin, session: aiohttp.ClientSession
) -> None:
    guarded = guarded_adobe(adobe_sim, session, FakeMonotonic())

    for _ in range(4):
        with pytest.raises(PermanentProviderError, match="HTTP 404"):
            await guarded.fetch_orders(UNKNOWN_CUSTOMER, since=None)

    assert state(guarded) is guard.CircuitState.CLOSED
    assert len(await guarded.fetch_orders(CUSTOMER, since=None)) == 5
    assert [call["status"] for call in await api_calls(sim_admin)] == [404] * 4 + [200]


async def test_after_the_fault_clears_the_probe_closes_the_breaker(
    adobe_sim: AdobeSimulator,
    sim_admin: SimAdmin,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=GUARD_LOGGER)
    clock = FakeMonotonic()
    guarded = guarded_adobe(adobe_sim, session, clock)
    await sim_admin.fault(kind="status", status=500, count=-1)
    await fail_twice(guarded)
    await sim_admin.clear_faults()

    with pytest.raises(guard.CircuitOpenError):
        await guarded.fetch_orders(CUSTOMER, since=None)
    clock.advance(OPEN_S)
    orders = await guarded.fetch_orders(CUSTOMER, since=None)

    assert len(orders) == 5
    assert state(guarded) is guard.CircuitState.CLOSED
    assert [call["status"] for call in await api_calls(sim_admin)] == [500] * 4 + [200]
    assert [message for _, message in guard_log(caplog)] == [
        f"source {SOURCE}: 2 failed fetches in a row; pausing vendor calls for 30s",
        f"source {SOURCE}: probing the vendor again",
        f"source {SOURCE}: the vendor answers again; circuit closed",
    ]


# --- the limiter on real vendor requests ----------------------------------------------


async def test_the_limiter_spaces_vendor_requests(
    adobe_sim: AdobeSimulator, sim_admin: SimAdmin, session: aiohttp.ClientSession
) -> None:
    await sim_admin.create_customer(PAGED_CUSTOMER)
    for hours in range(7):
        created = (SIM_NOW - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
        await sim_admin.create_order(PAGED_CUSTOMER, {"creationDate": created})
    source = adobe_source(adobe_sim, limits=LimitSettings(rate_per_s=20.0, burst=1), page_size=2)
    clock = FakeMonotonic()
    sleep = ClockSleep(clock)
    adapter = connect.adapter(source, session, rng=random.Random(3), sleep=sleep, clock=clock)

    assert len(await adapter.fetch_orders(PAGED_CUSTOMER, since=None)) == 7

    # One token at a time, 20 a second: the token call goes at once, each of the four
    # pages waits its 50 ms for the next token.
    assert len(await api_calls(sim_admin)) == 4
    assert sleep.delays == [pytest.approx(0.05)] * 4
