"""The project's exceptions, one tree per boundary.

    WatcherError
    ├── ConfigError                 bad configuration; the CLI exits with code 2
    ├── ProviderError               a vendor call failed; nothing from that fetch is used
    │   ├── TransientProviderError  try again later (`retry_after_s` when the vendor said)
    │   │   ├── MalformedReplyError the vendor answered with something we cannot read
    │   │   └── WaitingError        the source waits (circuit open, request budget spent)
    │   └── PermanentProviderError  retrying will not help (403, 404, 401 after a refresh)
    ├── StoreError                  the snapshot/outbox store failed
    │   └── LeaseLost               a replica's claim on a customer ended: it wrote nothing
    ├── BusError                    the broker is unreachable or refused a message
    └── ServiceFailed               a part of the running service failed, so it stopped;
                                    `run` exits with code 1 for a supervisor to restart it

Adapters translate their libraries' exceptions into these at one choke point, chaining the
cause, so the poller and the relay only ever catch this tree; anything else that leaves one
of the service's loops is a bug, and the service stops with `ServiceFailed` around it.
Messages never carry secrets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class WatcherError(Exception):
    """Base of every error order-watcher raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One mistake in the configuration: the key, and the variable when the value came from
    the environment."""

    key: str
    problem: str
    variable: str | None = None

    def __str__(self) -> str:
        where = self.key if self.variable is None else f"{self.key} (from {self.variable})"
        return f"{where}: {self.problem}"


class ConfigError(WatcherError):
    """The configuration is invalid: every problem found, the first as `key` and `problem`."""

    def __init__(self, key: str, problem: str, *, variable: str | None = None) -> None:
        self.problems: tuple[ConfigProblem, ...] = (ConfigProblem(key, problem, variable),)
        super().__init__(str(self.problems[0]))
        self.key = key
        self.problem = problem

    @classmethod
    def of(cls, problems: Sequence[ConfigProblem]) -> ConfigError:
        """One error reporting all of `problems` (at least one)."""
        first = problems[0]
        error = cls(first.key, first.problem, variable=first.variable)
        error.problems = tuple(problems)
        error.args = ("; ".join(str(problem) for problem in problems),)
        return error


class ProviderError(WatcherError):
    """A vendor call failed."""


class TransientProviderError(ProviderError):
    """The call may succeed later; `retry_after_s` is the vendor's hint when it gave one."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class MalformedReplyError(TransientProviderError):
    """The vendor's reply could not be parsed into orders."""


class WaitingError(TransientProviderError):
    """The source is waiting and did not call the vendor (its circuit is open, or the
    vendor's request budget is spent); the wait was logged once when it began."""


class PermanentProviderError(ProviderError):
    """Retrying will not help until someone fixes credentials, customer ids or access."""


class StoreError(WatcherError):
    """The store could not read or write."""


class LeaseLost(StoreError):
    """A sync's commit found its replica's lease on the customer expired or taken over (the
    fencing token no longer current), so it wrote nothing; the lease's new holder polls."""


class BusError(WatcherError):
    """The broker could not be reached or did not confirm a message."""


class ServiceFailed(WatcherError):
    """A long-running part of the service failed, and the service stopped; `part` names it.

    The failure is chained as the cause. What was not published stays in the outbox, so
    starting the service again is the remedy (once the cause is fixed, if it is a bug).
    """

    def __init__(self, part: str, problem: str) -> None:
        super().__init__(f"{part} failed: {problem}")
        self.part = part
        self.problem = problem
