"""The per-source rate limiter and the circuit breaker, on a fake monotonic clock.

`RateLimiter`: bursts, spacing at the rate, refills capped at the burst, pauses, and
concurrent acquirers served in turn; its sleep records what it was asked for and moves the
clock, so no test waits for a token. `CircuitBreaker`: the failure threshold, failing fast
while open, exactly one probe after open_s, what a probe's outcome does, and every change
of state logged once. `Guarded`, the provider behind a breaker, is in test_guarded.py.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.guard_cases import (
    GUARD_LOGGER,
    OPEN_S,
    SOURCE,
    ClockSleep,
    FakeMonotonic,
    breaker,
    fail,
    guard_log,
    state,
)
from watcher.core.errors import TransientProviderError
from watcher.providers import guard

pytestmark = pytest.mark.timeout(15)


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
