"""logs: JSON lines carry their context as fields, plain lines stay as they read; a source
that waits (circuit open, request budget spent) says so once, and once when it goes on."""

from __future__ import annotations

import logging
import sys

import orjson
import pytest

from watcher import logs
from watcher.core.errors import TransientProviderError, WaitingError
from watcher.providers import guard


def record(message: str, **extra: object) -> logging.LogRecord:
    made = logging.getLogger("watcher.poller").makeRecord(
        "watcher.poller", logging.INFO, __file__, 1, message, (), None, extra=extra
    )
    made.created = 1_796_000_000.25
    return made


def test_a_json_line_carries_the_context_as_fields() -> None:
    context = logs.fields(
        source="adobe-prod",
        provider="adobe_vip",
        customer="9876543210",
        order="5120000001",
        event_id="e-1",
        outcome="error",
        duration_s=0.41234,
        error=TransientProviderError("503"),
    )
    line = orjson.loads(logs.JsonFormatter().format(record("poll failed", **context)))
    assert line == {
        "time": "2026-11-30T00:53:20.250Z",
        "level": "info",
        "logger": "watcher.poller",
        "message": "poll failed",
        "source": "adobe-prod",
        "provider": "adobe_vip",
        "customer": "9876543210",
        "order": "5120000001",
        "event_id": "e-1",
        "outcome": "error",
        "duration_s": 0.412,
        "error": "TransientProviderError",
    }


def test_fields_leave_out_what_was_not_given() -> None:
    assert logs.fields(customer="c") == {"customer": "c"}
    assert logs.fields(duration_s=0.0, outcome="ok") == {"duration_s": 0.0, "outcome": "ok"}


def test_an_exception_is_a_field_of_the_json_line() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        failed = record("it failed")
        failed.exc_info = sys.exc_info()
    line = orjson.loads(logs.JsonFormatter().format(failed))
    assert line["exception"].endswith("ValueError: bad")


def test_plain_lines_show_only_the_message() -> None:
    plain = logging.Formatter(logs._PLAIN)
    shown = plain.format(record("poll source=a customer=c", **logs.fields(customer="c")))
    assert shown.endswith("INFO    watcher.poller: poll source=a customer=c")


# --- waits said once --------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_an_open_circuit_says_so_once_and_once_when_it_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    breaker = guard.CircuitBreaker("zuora-prod", failures=2, open_s=60, clock=clock)
    caplog.set_level(logging.INFO, logger="watcher.providers.guard")
    breaker.failed()
    breaker.failed()
    for _ in range(20):  # polls go on asking while the circuit is open
        clock.now += 1
        with pytest.raises(WaitingError):
            breaker.before_call()
    clock.now += 60
    assert breaker.before_call() is True
    breaker.succeeded()

    assert len(messages(caplog, logging.WARNING)) == 1
    assert messages(caplog, logging.INFO) == [
        "source zuora-prod: probing the vendor again",
        "source zuora-prod: the vendor answers again; circuit closed",
    ]
    assert all(getattr(r, "source", None) == "zuora-prod" for r in caplog.records)


def test_a_spent_request_budget_says_so_once_and_once_when_renewed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    limiter = guard.RateLimiter(rate_per_s=100, burst=10, clock=clock)
    budget = guard.Budget(limiter, clock=clock, max_wait_s=1.0, source="zuora-prod")
    caplog.set_level(logging.INFO, logger="watcher.providers.guard")
    spent = {"RateLimit-Remaining": "0", "RateLimit-Reset": "30"}
    for _ in range(5):
        budget.observe(spent)
        with pytest.raises(WaitingError):
            budget.check(what="list orders")
        clock.now += 1
    clock.now += 30
    budget.check(what="list orders")
    for _ in range(3):
        budget.observe({"RateLimit-Remaining": "99", "RateLimit-Reset": "60"})

    assert messages(caplog, logging.WARNING) == [
        "source zuora-prod: the vendor's request budget is spent; calls wait 30s for it"
    ]
    assert messages(caplog, logging.INFO) == [
        "source zuora-prod: the vendor's request budget is renewed; calls go on"
    ]
