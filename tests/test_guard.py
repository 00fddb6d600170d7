"""The per-source rate limiter, the circuit breaker and `Guarded`, the provider behind one.

`RateLimiter` and `CircuitBreaker` run on a fake monotonic clock; the limiter's sleep records
what it was asked for and moves that clock, so no test waits for a token. `Guarded` is tested
with hand-written providers for the concurrency of a probe, then around the real Adobe VIP
adapter against the simulator over real sockets, reading its request log to see which calls
reached the vendor. Last, the limiter spacing real vendor requests out.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from tests.plugins.simulator import SIM_CUSTOMERS, SIM_NOW, AdobeSimulator, SimAdmin
from watcher.core.errors import PermanentProviderError, TransientProviderError
from watcher.core.models import Order
from watcher.providers import connect, guard
from watcher.settings import AuthSettings, LimitSettings, RetrySettings, SourceSettings
from watcher.simulator.adobe_vip.world import CLIENT_ID, CLIENT_SECRET

pytestmark = pytest.mark.timeout(15)

SOURCE = "adobe-guard"
CUSTOMER = SIM_CUSTOMERS[0]
UNKNOWN_CUSTOMER = "9999999999"
PAGED_CUSTOMER = "2000000001"
OPEN_S = 30.0
GUARD_LOGGER = "watcher.providers.guard"


class FakeMonotonic:
    """A monotonic clock that moves only on `advance`."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ClockSleep:
    """A sleep that records each delay, moves the fake clock by it and lets others run."""

    def __init__(self, clock: FakeMonotonic) -> None:
        self.clock = clock
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.clock.advance(delay)
        await asyncio.sleep(0)


def limiter(
    clock: FakeMonotonic, *, rate_per_s: float = 4.0, burst: int = 3
) -> tuple[guard.RateLimiter, ClockSleep]:
    """A limiter on `clock`; 4 per second keeps every delay exact in binary floating point."""
    sleep = ClockSleep(clock)
    bucket = guard.RateLimiter(rate_per_s=rate_per_s, burst=burst, clock=clock, sleep=sleep)
    return bucket, sleep


async def acquire_times(bucket: guard.RateLimiter, clock: FakeMonotonic, n: int) -> list[float]:
    """The fake time at which each of `n` acquires in a row was granted."""
    times = []
    for _ in range(n):
        await bucket.acquire()
        times.append(clock())
    return times


# --- RateLimiter ----------------------------------------------------------------------


async def test_a_burst_passes_without_waiting() -> None:
    clock = FakeMonotonic()
    bucket, sleep = limiter(clock, burst=3)

    assert await acquire_times(bucket, clock, 3) == [1000.0] * 3
    assert sleep.delays == []


async def test_beyond_the_burst_requests_are_spaced_at_the_rate() -> None:
    clock = FakeMonotonic()
    bucket, sleep = limiter(clock, rate_per_s=4.0, burst=2)

    times = await acquire_times(bucket, clock, 5)

    assert times == [1000.0, 1000.0, 1000.25, 1000.5, 1000.75]
    assert sleep.delays == [0.25, 0.25, 0.25]


async def test_a_rate_not_exact_in_binary_still_grants_after_one_wait() -> None:
    # At 20/s a refill can land a hair under one token; the limiter must not then wait
    # a few attoseconds forever on a clock that cannot move by that little.
    bucket, sleep = limiter(FakeMonotonic(), rate_per_s=20.0, burst=1)

    async with asyncio.timeout(1):
        for _ in range(5):
            await bucket.acquire()

    assert sleep.delays == [pytest.approx(0.05)] * 4


async def test_tokens_refill_over_time() -> None:
    clock = FakeMonotonic()
    bucket, sleep = limiter(clock, rate_per_s=4.0, burst=3)
    await acquire_times(bucket, clock, 3)

    clock.advance(0.5)

    assert await acquire_times(bucket, clock, 2) == [1000.5, 1000.5]
    assert sleep.delays == []
    await bucket.acquire()
    assert sleep.delays == [0.25]


async def test_tokens_never_refill_above_the_burst() -> None:
    clock = FakeMonotonic()
    bucket, sleep = limiter(clock, rate_per_s=4.0, burst=3)
    await acquire_times(bucket, clock, 3)

    clock.advance(3600.0)

    assert await acquire_times(bucket, clock, 4) == [4600.0, 4600.0, 4600.0, 4600.25]
    assert sleep.delays == [0.25]


async def test_pause_holds_every_request_until_it_ends() -> None:
    clock = FakeMonotonic()
    bucket, sleep = limiter(clock, burst=3)

    bucket.pause(5.0)

    assert await acquire_times(bucket, clock, 3) == [1005.0] * 3
    assert sleep.delays == [5.0]


async def test_a_shorter_pause_does_not_cut_a_longer_one_short() -> None:
    clock = FakeMonotonic()
    bucket, _ = limiter(clock)

    bucket.pause(10.0)
    bucket.pause(2.0)

    assert await acquire_times(bucket, clock, 1) == [1010.0]


async def test_a_pause_after_it_ended_holds_nothing() -> None:
    clock = FakeMonotonic()
    bucket, sleep = limiter(clock)
    bucket.pause(5.0)

    clock.advance(6.0)

    assert await acquire_times(bucket, clock, 1) == [1006.0]
    assert sleep.delays == []


async def test_concurrent_acquirers_are_served_in_turn() -> None:
    clock = FakeMonotonic()
    bucket, sleep = limiter(clock, rate_per_s=4.0, burst=1)
    granted: list[tuple[int, float]] = []

    async def request(number: int) -> None:
        await bucket.acquire()
        granted.append((number, clock()))

    async with asyncio.TaskGroup() as group:
        for number in range(4):
            group.create_task(request(number))

    assert granted == [(0, 1000.0), (1, 1000.25), (2, 1000.5), (3, 1000.75)]
    assert sleep.delays == [0.25, 0.25, 0.25]


# --- CircuitBreaker -------------------------------------------------------------------


def state(circuit: guard.CircuitBreaker | guard.Guarded) -> guard.CircuitState:
    """The breaker's state, read afresh (each call may change it)."""
    return (circuit.breaker if isinstance(circuit, guard.Guarded) else circuit).state


def breaker(
    clock: FakeMonotonic, *, failures: int = 3, open_s: float = OPEN_S
) -> guard.CircuitBreaker:
    return guard.CircuitBreaker(SOURCE, failures=failures, open_s=open_s, clock=clock)


def fail(circuit: guard.CircuitBreaker, times: int) -> None:
    """`times` calls that went out and failed transiently."""
    for _ in range(times):
        circuit.before_call()
        circuit.failed()


def test_stays_closed_below_the_failure_threshold() -> None:
    circuit = breaker(FakeMonotonic(), failures=3)

    fail(circuit, 2)

    assert state(circuit) is guard.CircuitState.CLOSED
    circuit.before_call()


def test_opens_after_the_threshold_of_failures_in_a_row() -> None:
    circuit = breaker(FakeMonotonic(), failures=3)

    fail(circuit, 3)

    assert state(circuit) is guard.CircuitState.OPEN
    with pytest.raises(guard.CircuitOpenError):
        circuit.before_call()


def test_a_success_resets_the_count() -> None:
    circuit = breaker(FakeMonotonic(), failures=3)
    fail(circuit, 2)
    circuit.before_call()
    circuit.succeeded()

    fail(circuit, 2)

    assert state(circuit) is guard.CircuitState.CLOSED


def test_an_open_circuit_fails_fast_saying_when_it_probes_again() -> None:
    clock = FakeMonotonic()
    circuit = breaker(clock, failures=2, open_s=OPEN_S)
    fail(circuit, 2)
    clock.advance(10.0)

    with pytest.raises(guard.CircuitOpenError) as raised:
        circuit.before_call()

    error = raised.value
    assert isinstance(error, TransientProviderError)
    assert error.retry_after_s == 20.0
    assert SOURCE in str(error)
    assert "next probe in 20s" in str(error)


def test_stays_open_until_open_s_has_passed() -> None:
    clock = FakeMonotonic()
    circuit = breaker(clock, failures=1)
    fail(circuit, 1)

    clock.advance(OPEN_S - 0.5)

    with pytest.raises(guard.CircuitOpenError):
        circuit.before_call()
    assert state(circuit) is guard.CircuitState.OPEN


def test_after_open_s_exactly_one_probe_goes_through() -> None:
    clock = FakeMonotonic()
    circuit = breaker(clock, failures=1)
    fail(circuit, 1)
    clock.advance(OPEN_S)

    circuit.before_call()

    assert state(circuit) is guard.CircuitState.HALF_OPEN
    for _ in range(3):
        with pytest.raises(guard.CircuitOpenError, match=SOURCE):
            circuit.before_call()


def test_a_successful_probe_closes_the_circuit() -> None:
    clock = FakeMonotonic()
    circuit = breaker(clock, failures=1)
    fail(circuit, 1)
    clock.advance(OPEN_S)
    circuit.before_call()

    circuit.succeeded()

    assert state(circuit) is guard.CircuitState.CLOSED
    circuit.before_call()
    circuit.before_call()


def test_a_closed_circuit_after_a_probe_counts_failures_from_zero() -> None:
    clock = FakeMonotonic()
    circuit = breaker(clock, failures=2)
    fail(circuit, 2)
    clock.advance(OPEN_S)
    circuit.before_call()
    circuit.succeeded()

    fail(circuit, 1)

    assert state(circuit) is guard.CircuitState.CLOSED


def test_a_failed_probe_opens_the_circuit_for_another_open_s() -> None:
    clock = FakeMonotonic()
    circuit = breaker(clock, failures=1)
    fail(circuit, 1)
    clock.advance(OPEN_S + 5.0)
    circuit.before_call()

    circuit.failed()

    assert state(circuit) is guard.CircuitState.OPEN
    clock.advance(OPEN_S - 1.0)
    with pytest.raises(guard.CircuitOpenError) as raised:
        circuit.before_call()
    assert raised.value.retry_after_s == 1.0
    clock.advance(1.0)
    circuit.before_call()
    assert state(circuit) is guard.CircuitState.HALF_OPEN


def test_released_frees_the_probe_slot() -> None:
    clock = FakeMonotonic()
    circuit = breaker(clock, failures=1)
    fail(circuit, 1)
    clock.advance(OPEN_S)
    circuit.before_call()

    circuit.released(probe=True)

    assert state(circuit) is guard.CircuitState.HALF_OPEN
    circuit.before_call()
    with pytest.raises(guard.CircuitOpenError):
        circuit.before_call()


def test_every_change_of_state_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=GUARD_LOGGER)
    clock = FakeMonotonic()
    circuit = breaker(clock, failures=2)

    fail(circuit, 2)
    circuit.failed()
    for _ in range(2):
        with pytest.raises(guard.CircuitOpenError):
            circuit.before_call()
    clock.advance(OPEN_S)
    circuit.before_call()
    with pytest.raises(guard.CircuitOpenError):
        circuit.before_call()
    circuit.succeeded()
    circuit.succeeded()

    assert guard_log(caplog) == [
        (
            logging.WARNING,
            f"source {SOURCE}: 2 failed fetches in a row; pausing vendor calls for 30s",
        ),
        (logging.INFO, f"source {SOURCE}: probing the vendor again"),
        (logging.INFO, f"source {SOURCE}: the vendor answers again; circuit closed"),
    ]


def guard_log(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [
        (record.levelno, record.getMessage())
        for record in caplog.records
        if record.name == GUARD_LOGGER
    ]


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
