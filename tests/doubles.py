"""Hand-written doubles the adapter tests inject, and the source settings they run on.

Adapters take their sleep, monotonic clock and Random as arguments, so the tests never
wait: `RecordingSleep` returns at once and keeps the delays asked for, `FakeMonotonic`
moves only when a test advances it (the simulator's wall clock is `ManualClock`, in the
simulator plugin), `CeilingRandom` makes full jitter pick its longest delay.

`sim_source` is the SourceSettings every adapter test starts from against a simulator:
one customer, a short timeout and fast retries (base delay 10 ms, a recorded sleep); a
vendor test adds its auth and its own settings group. `error_texts` reads an error and
everything chained to it, for the tests that check no secret leaks into either.
"""

from __future__ import annotations

import random
from typing import Any

import aiohttp

from watcher.core.ports import Provider
from watcher.providers import connect
from watcher.settings import AuthSettings, RetrySettings, SourceSettings


class FakeMonotonic:
    """An injected monotonic clock that moves only on `advance`."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingSleep:
    """An injected sleep that records the delays it was asked for and returns at once.

    With a `clock`, sleeping moves it, as a real sleep would move time: a rate limiter
    waiting on that clock then finds its tokens refilled.
    """

    def __init__(self, clock: FakeMonotonic | None = None) -> None:
        self.delays: list[float] = []
        self.clock = clock

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self.clock is not None:
            self.clock.advance(delay)

    def on(self, clock: FakeMonotonic) -> RecordingSleep:
        """This sleep, moving `clock` unless it already moves one."""
        if self.clock is None:
            self.clock = clock
        return self


class CeilingRandom(random.Random):
    """uniform(a, b) is always b: the longest delay full jitter could pick."""

    def uniform(self, a: float, b: float) -> float:
        return b


def sim_source(
    name: str,
    provider: str,
    *,
    base_url: str,
    customer: str,
    auth: AuthSettings,
    attempts: int = 3,
    timeout_s: float = 5.0,
    **extra: Any,
) -> SourceSettings:
    """A source on a simulator: one customer, fast retries; `extra` adds vendor groups."""
    return SourceSettings(
        name=name,
        provider=provider,
        base_url=base_url,
        customers=[customer],
        timeout_s=timeout_s,
        auth=auth,
        retry=RetrySettings(attempts=attempts, base_delay_s=0.01, max_delay_s=30.0),
        **extra,
    )


def sim_adapter(
    source: SourceSettings,
    session: aiohttp.ClientSession,
    *,
    sleep: RecordingSleep | None = None,
    clock: FakeMonotonic | None = None,
) -> Provider:
    """The source's adapter as the tests run it: a recorded sleep that moves `clock` (a
    fresh one unless given), and a seeded Random."""
    clock = clock or FakeMonotonic()
    return connect.adapter(
        source,
        session,
        sleep=(sleep or RecordingSleep()).on(clock),
        rng=random.Random(3),
        clock=clock,
    )


def error_texts(error: BaseException) -> str:
    """str and repr of an error and of every error chained to it."""
    texts = []
    current: BaseException | None = error
    while current is not None:
        texts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return "\n".join(texts)
