"""The project's exceptions, one tree per boundary.

    WatcherError
    ├── ConfigError                 bad configuration; the CLI exits with code 2
    ├── ProviderError               a vendor call failed; nothing from that fetch is used
    │   ├── TransientProviderError  try again later (`retry_after_s` when the vendor said)
    │   │   └── MalformedReplyError the vendor answered with something we cannot read
    │   └── PermanentProviderError  retrying will not help (403, 404, 401 after a refresh)
    ├── StoreError                  the snapshot/outbox store failed
    ├── BusError                    the broker is unreachable or refused a message
    └── ServiceFailed               a part of the running service failed, so it stopped;
                                    `run` exits with code 1 for a supervisor to restart it

Adapters translate their libraries' exceptions into these at one choke point, chaining the
cause, so the poller and the relay only ever catch this tree; anything else that leaves one
of the service's loops is a bug, and the service stops with `ServiceFailed` around it.
Messages never carry secrets.
"""

from __future__ import annotations


class WatcherError(Exception):
    """Base of every error order-watcher raises on purpose."""


class ConfigError(WatcherError):
    """The configuration is invalid. `key` names the offending setting."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


class ProviderError(WatcherError):
    """A vendor call failed."""


class TransientProviderError(ProviderError):
    """The call may succeed later; `retry_after_s` is the vendor's hint when it gave one."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class MalformedReplyError(TransientProviderError):
    """The vendor's reply could not be parsed into orders."""


class PermanentProviderError(ProviderError):
    """Retrying will not help until someone fixes credentials, customer ids or access."""


class StoreError(WatcherError):
    """The store could not read or write."""


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
