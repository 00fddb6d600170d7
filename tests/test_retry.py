"""Retries: Retry-After parsing (seconds and HTTP dates), full-jitter backoff bounds, the
delay after a failed attempt, and the retry loop around a call (transient failures retried,
permanent ones and cancellation not), on a recorded sleep and a seeded random source.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.doubles import CeilingRandom, RecordingSleep
from watcher.core.errors import (
    MalformedReplyError,
    PermanentProviderError,
    TransientProviderError,
)
from watcher.providers.retry import backoff_s, next_delay_s, parse_retry_after, with_retries
from watcher.settings import RetrySettings

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)


# --- Retry-After, backoff and the retry loop -------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5.0),
        ("0", 0.0),
        (" 120 ", 120.0),
        ("1.5", 1.5),
        ("-1", None),
        ("nan", None),
        ("", None),
        (None, None),
        ("soon", None),
        ("Tue, 24 Nov 2026 12:00:30 GMT", 30.0),
        ("Tue, 24 Nov 2026 11:59:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


@given(
    attempt=st.integers(min_value=1, max_value=30),
    seed=st.integers(min_value=0, max_value=2**32),
    base=st.floats(min_value=0.001, max_value=5.0),
    maximum=st.floats(min_value=0.001, max_value=60.0),
)
def test_backoff_stays_within_full_jitter_bounds(
    attempt: int, seed: int, base: float, maximum: float
) -> None:
    retry = RetrySettings(attempts=5, base_delay_s=base, max_delay_s=maximum)
    delay = backoff_s(attempt, retry=retry, rng=random.Random(seed))
    assert 0.0 <= delay <= min(maximum, base * 2 ** (attempt - 1))


def test_backoff_ceiling_doubles_then_caps() -> None:
    retry = RetrySettings(attempts=10, base_delay_s=0.5, max_delay_s=3.0)
    ceilings = [backoff_s(n, retry=retry, rng=CeilingRandom()) for n in range(1, 6)]
    assert ceilings == [0.5, 1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize(
    ("retry_after_s", "attempt", "expected"),
    [
        (None, 1, 0.5),
        (4.0, 1, 4.0),
        (0.1, 2, 1.0),
        (31.0, 1, None),
        (None, 3, None),
    ],
)
def test_next_delay_honours_retry_after_and_the_attempt_budget(
    retry_after_s: float | None, attempt: int, expected: float | None
) -> None:
    retry = RetrySettings(attempts=3, base_delay_s=0.5, max_delay_s=30.0)
    error = TransientProviderError("throttled", retry_after_s=retry_after_s)
    assert next_delay_s(error, attempt=attempt, retry=retry, rng=CeilingRandom()) == expected


async def test_with_retries_retries_transient_failures_then_succeeds() -> None:
    outcomes: list[Exception | str] = [
        TransientProviderError("busy", retry_after_s=2.0),
        MalformedReplyError("garbled"),
        "ok",
    ]
    sleep = RecordingSleep()

    async def call() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    retry = RetrySettings(attempts=3, base_delay_s=0.5, max_delay_s=30.0)
    assert await with_retries(call, retry=retry, sleep=sleep, rng=CeilingRandom()) == "ok"
    assert sleep.delays == [2.0, 1.0]


async def test_with_retries_gives_up_after_the_last_attempt() -> None:
    calls = 0
    sleep = RecordingSleep()

    async def call() -> None:
        nonlocal calls
        calls += 1
        raise TransientProviderError(f"attempt {calls}")

    retry = RetrySettings(attempts=4, base_delay_s=0.5, max_delay_s=30.0)
    with pytest.raises(TransientProviderError, match="attempt 4"):
        await with_retries(call, retry=retry, sleep=sleep, rng=random.Random(1))
    assert calls == 4
    assert len(sleep.delays) == 3


@pytest.mark.parametrize("error", [PermanentProviderError("gone"), asyncio.CancelledError()])
async def test_with_retries_does_not_retry_permanent_errors_or_cancellation(
    error: BaseException,
) -> None:
    calls = 0

    async def call() -> None:
        nonlocal calls
        calls += 1
        raise error

    with pytest.raises(type(error)):
        await with_retries(
            call, retry=RetrySettings(), sleep=RecordingSleep(), rng=random.Random(1)
        )
    assert calls == 1
