"""What the rate limiter, circuit breaker and `Guarded` tests share: the source's constants, a
fake monotonic clock, a sleep that moves it, a breaker built on it, and the guard's log.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.plugins.simulator import SIM_CUSTOMERS
from watcher.providers import guard

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


def guard_log(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [
        (record.levelno, record.getMessage())
        for record in caplog.records
        if record.name == GUARD_LOGGER
    ]
