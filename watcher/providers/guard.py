"""Politeness towards a vendor: a request-rate limit and a circuit breaker, per source.

`RateLimiter` is a token bucket: `rate_per_s` requests per second on average, bursts of up
to `burst`. Every vendor request of a source (token calls included) takes a token first.
`Budget` reads the RateLimit-Remaining / RateLimit-Reset headers a vendor sends (Zuora
does): when the window is spent, the whole source pauses until it resets, so no call goes
out into a certain 429.

`CircuitBreaker` watches whole fetches. After `failures` transient failures in a row it
opens: fetches fail at once, without calling the vendor, for `open_s`. Then it lets one
fetch through as a probe (half-open): success closes it, failure opens it again. Permanent
errors (a wrong customer id, a forbidden account) say nothing about the vendor's health and
do not count. Every change of state is logged once.

`Guarded` wraps any `Provider` with a breaker, so adapters stay unaware of it. Time comes
from injected clocks so tests control it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from watcher import logs
from watcher.core import ports
from watcher.core.errors import PermanentProviderError, TransientProviderError, WaitingError
from watcher.core.models import Order
from watcher.core.ports import CustomerDirectory, Listing, Provider, StoreFeed

log = logging.getLogger(__name__)
Clock = Callable[[], float]
# A wait shorter than this is rounding (a refill that lands a hair under one token), not a
# wait: sleeping it would not move a clock measured in seconds around 1e3 at all.
_CLOSE_ENOUGH_S = 1e-9
Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


class RateLimiter:
    """A token bucket shared by every request of one source."""

    def __init__(
        self,
        *,
        rate_per_s: float,
        burst: int,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.rate_per_s = rate_per_s
        self.share = 1.0  # of `rate_per_s` this process may use (a fleet shares the rate)
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until a request may go out, then take its token."""
        async with self._lock:
            while (delay_s := self._delay_s()) > _CLOSE_ENOUGH_S:
                await self._sleep(delay_s)
            self._tokens -= 1

    def pause(self, seconds: float) -> None:
        """Send nothing for `seconds` (the vendor said its budget is spent)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def _delay_s(self) -> float:
        now = self._clock()
        rate_per_s = self.rate_per_s * self.share
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * rate_per_s)
        self._updated = now
        if now < self._paused_until:
            return self._paused_until - now
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / rate_per_s


class Budget:
    """What a vendor's RateLimit-* headers said about a source's request budget.

    When Remaining reaches 0, the limiter is paused until Reset (seconds). A pause longer
    than the retry budget's `max_wait_s` is not waited out inside a fetch: the next call
    fails at once, transient, with `retry_after_s` the time left, and the poller owns that
    wait (`check`).
    """

    def __init__(
        self, limiter: RateLimiter, *, clock: Clock, max_wait_s: float, source: str = ""
    ) -> None:
        self.limiter = limiter
        self._source = source
        self._clock = clock
        self._max_wait_s = max_wait_s
        self._spent_until = 0.0

    def observe(self, headers: Mapping[str, str]) -> float | None:
        """Pause the limiter when the reply says the budget is spent; the seconds to reset."""
        reset_s = _header_number(headers.get("RateLimit-Reset"))
        remaining = _header_number(headers.get("RateLimit-Remaining"))
        if remaining is None or remaining > 0 or reset_s is None:
            if self._spent_until and self._clock() >= self._spent_until:
                self._spent_until = 0.0
                log.info(
                    "source %s: the vendor's request budget is renewed; calls go on",
                    self._source,
                    extra=logs.fields(source=self._source),
                )
            return reset_s
        if self._clock() >= self._spent_until:
            log.warning(
                "source %s: the vendor's request budget is spent; calls wait %.0fs for it",
                self._source,
                reset_s,
                extra=logs.fields(source=self._source),
            )
        self.limiter.pause(reset_s)
        self._spent_until = max(self._spent_until, self._clock() + reset_s)
        return reset_s

    def check(self, *, what: str) -> None:
        """Fail at once, transient, when the budget resets later than a retry would wait."""
        left_s = self._spent_until - self._clock()
        if left_s > self._max_wait_s:
            raise WaitingError(
                f"{what}: the vendor's request budget is spent; it resets in {left_s:.0f}s",
                retry_after_s=left_s,
            )


def _header_number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) and number >= 0 else None


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(WaitingError):
    """The breaker is open: the vendor was not called."""


class CircuitBreaker:
    """Stops calling a failing vendor for a while; see the module docstring."""

    def __init__(
        self, source: str, *, failures: int, open_s: float, clock: Clock = time.monotonic
    ) -> None:
        self._source = source
        self._threshold = failures
        self._open_s = open_s
        self._clock = clock
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self.state = CircuitState.CLOSED

    def before_call(self) -> bool:
        """Raise `CircuitOpenError` unless a call may go out now; True for the probe."""
        if self.state is CircuitState.CLOSED:
            return False
        remaining_s = self._opened_at + self._open_s - self._clock()
        if self.state is CircuitState.OPEN and remaining_s <= 0:
            self.state = CircuitState.HALF_OPEN
            log.info(
                "source %s: probing the vendor again",
                self._source,
                extra=logs.fields(source=self._source),
            )
        if self.state is CircuitState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        paused = f"source {self._source}: vendor calls paused after {self._failures} failures"
        if self.state is CircuitState.HALF_OPEN:
            raise CircuitOpenError(f"{paused}; a probe is under way", retry_after_s=self._open_s)
        raise CircuitOpenError(
            f"{paused} in a row; next probe in {remaining_s:.0f}s", retry_after_s=remaining_s
        )

    def succeeded(self) -> None:
        if self.state is not CircuitState.CLOSED:
            log.info(
                "source %s: the vendor answers again; circuit closed",
                self._source,
                extra=logs.fields(source=self._source),
            )
        self.state, self._failures, self._probing = CircuitState.CLOSED, 0, False

    def failed(self) -> None:
        self._failures += 1
        self._probing = False
        if self.state is CircuitState.HALF_OPEN or (
            self.state is CircuitState.CLOSED and self._failures >= self._threshold
        ):
            self.state, self._opened_at = CircuitState.OPEN, self._clock()
            log.warning(
                "source %s: %d failed fetches in a row; pausing vendor calls for %.0fs",
                self._source,
                self._failures,
                self._open_s,
                extra=logs.fields(source=self._source),
            )

    def released(self, *, probe: bool) -> None:
        """A call ended with neither success nor a vendor failure (e.g. cancelled).

        Only the probe itself frees the probe slot: a call that began before the circuit
        opened must not let a second probe out.
        """
        if probe:
            self._probing = False


class Guarded:
    """A `Provider` behind a circuit breaker; a `CustomerDirectory` or a `StoreFeed` too when
    its adapter is one (the customer listing, and each page of the store's, then count
    towards the breaker like a fetch)."""

    def __init__(
        self, provider: Provider, breaker: CircuitBreaker, *, limiter: RateLimiter | None = None
    ) -> None:
        self._provider = provider
        self._lister = ports.by_digest(provider)
        self.breaker = breaker
        self.limiter = limiter  # the adapter's, when known: a fleet shares out its rate

    async def fetch_orders(
        self, customer_id: str, *, since: datetime | None, changed_since: datetime | None = None
    ) -> list[Order]:
        return await self._through_breaker(
            lambda: self._provider.fetch_orders(
                customer_id, since=since, changed_since=changed_since
            )
        )

    async def fetch_listing(
        self,
        customer_id: str,
        *,
        since: datetime | None,
        changed_since: datetime | None,
        known: Mapping[str, str],
    ) -> Listing:
        """The adapter's listing against `known` digests (every order mapped when it cannot
        recognise one), through the breaker."""
        return await self._through_breaker(
            lambda: self._lister.fetch_listing(
                customer_id, since=since, changed_since=changed_since, known=known
            )
        )

    async def list_customers(self) -> list[str]:
        """The adapter's customer listing, through the breaker."""
        if not isinstance(self._provider, CustomerDirectory):
            raise TypeError(f"{type(self._provider).__name__} cannot list customers")
        directory = self._provider
        return await self._through_breaker(directory.list_customers)

    async def store_orders(
        self, *, since: datetime | None, changed_since: datetime | None
    ) -> AsyncGenerator[list[Order], None]:
        """The adapter's store-wide listing, each page through the breaker."""
        if not isinstance(self._provider, StoreFeed):
            raise TypeError(f"{type(self._provider).__name__} cannot list the whole store")
        pages = self._provider.store_orders(since=since, changed_since=changed_since)
        try:
            while True:
                try:
                    page = await self._through_breaker(lambda: anext(pages))
                except StopAsyncIteration:
                    return
                yield page
        finally:
            await pages.aclose()

    async def _through_breaker(self, call: Callable[[], Awaitable[T]]) -> T:
        probe = self.breaker.before_call()
        try:
            result = await call()
        except PermanentProviderError:
            self.breaker.released(probe=probe)
            raise
        except TransientProviderError:
            self.breaker.failed()
            raise
        except BaseException:
            self.breaker.released(probe=probe)
            raise
        self.breaker.succeeded()
        return result
