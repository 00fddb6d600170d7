"""Retries with backoff: how long to wait after a transient failure, and the loop.

`with_retries` re-runs a call on TransientProviderError with exponential backoff and full
jitter: attempt n waits uniform(0, min(max_delay_s, base_delay_s * 2**(n-1))), or at least
the vendor's Retry-After. A Retry-After longer than `max_delay_s` ends the loop at once: the
error carries `retry_after_s` up to the poller, which owns waits that long. The sleep and the
random source are injected so tests neither wait nor flake.

Retry-After is delta-seconds or an HTTP-date; a date is read against the vendor's own clock
(its Date header) when it sent one, so clock skew cancels out.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from watcher import logs
from watcher.core.errors import TransientProviderError
from watcher.settings import RetrySettings

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Retry-After as seconds from `now`: delta-seconds or an HTTP-date; None if unusable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        return _seconds_until(text, now=now)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _seconds_until(http_date: str, *, now: datetime) -> float | None:
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def reply_time(date_header: str | None) -> datetime:
    """The vendor's clock from its Date header when it sent a usable one, else ours."""
    if date_header:
        try:
            sent = parsedate_to_datetime(date_header)
        except (TypeError, ValueError):
            sent = None
        if sent is not None and sent.tzinfo is not None:
            return sent
    return datetime.now(UTC)


def backoff_s(attempt: int, *, retry: RetrySettings, rng: random.Random) -> float:
    """Full-jitter exponential backoff before retry number `attempt` (1-based)."""
    ceiling = min(retry.max_delay_s, retry.base_delay_s * 2 ** (attempt - 1))
    return rng.uniform(0.0, ceiling)


def next_delay_s(
    error: TransientProviderError, *, attempt: int, retry: RetrySettings, rng: random.Random
) -> float | None:
    """How long to wait before trying again after `attempt` failed, or None to give up."""
    if attempt >= retry.attempts:
        return None
    delay = backoff_s(attempt, retry=retry, rng=rng)
    if error.retry_after_s is None:
        return delay
    if error.retry_after_s > retry.max_delay_s:
        return None
    return max(delay, error.retry_after_s)


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    retry: RetrySettings,
    sleep: Sleep,
    rng: random.Random,
) -> T:
    """Run `call`, retrying transient failures; the last failure propagates unchanged."""
    attempt = 1
    while True:
        try:
            return await call()
        except TransientProviderError as exc:
            delay = next_delay_s(exc, attempt=attempt, retry=retry, rng=rng)
            if delay is None:
                raise
            log.warning(
                "retry %d of %d in %.2fs: %s",
                attempt,
                retry.attempts - 1,
                delay,
                exc,
                extra=logs.fields(error=exc),
            )
        await sleep(delay)
        attempt += 1
