"""Runs the service's long-lived loops in one TaskGroup, and stops them in order.

    poller <source> ...   until `stop()`: each lets its syncs in hand finish, then ends
    relay, watchers ...   until cancelled (`loops`, by name)

Every loop is a task of ONE TaskGroup, named after its part. The service halts when `stop`
is set or when any loop fails, i.e. raises anything but CancelledError (a loop that runs
until cancelled and returns on its own counts as failed too: nothing may stay half-alive).
Both halts take the same road: the pollers are told to stop and their tasks end once the
syncs in hand are committed, then the other loops are cancelled. The pollers go first
because they fill the outbox and the relay empties it; the other way round, events would
pile up with nothing publishing them.

A failing loop is caught in its own task rather than left to the TaskGroup, which would
cancel every poller mid-sync. The first failure is logged once, naming the part, and after
the orderly stop `run` raises `ServiceFailed` with that failure as its cause; what was not
published stays in the outbox for the next start. Draining the outbox after a normal stop
is the caller's business. Cancelling `run` cancels every task at once, as a TaskGroup does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from watcher.core.errors import ServiceFailed
from watcher.poller import Poller

log = logging.getLogger(__name__)
Loop = Callable[[], Coroutine[Any, Any, None]]


class Service:
    """The pollers and the named loops of one service run; see the module docstring."""

    def __init__(self, pollers: Sequence[Poller], loops: Mapping[str, Loop]) -> None:
        self._pollers = list(pollers)
        self._loops = dict(loops)
        self._halt = asyncio.Event()
        self._failure: tuple[str, str, Exception | None] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Run every loop until `stop` or a failure; raise `ServiceFailed` after a failure."""
        async with asyncio.TaskGroup() as group:
            polling = [self._start(group, f"poller {p.name}", p.run) for p in self._pollers]
            others = [
                self._start(group, name, loop, until_cancelled=True)
                for name, loop in self._loops.items()
            ]
            await _either(stop, self._halt)
            log.info("stopping: finishing the syncs in hand")
            for poller in self._pollers:
                poller.stop()
            await asyncio.gather(*polling)
            for task in others:
                task.cancel()
        if self._failure is not None:
            part, reason, exc = self._failure
            raise ServiceFailed(part, reason) from exc

    def _start(
        self, group: asyncio.TaskGroup, part: str, loop: Loop, *, until_cancelled: bool = False
    ) -> asyncio.Task[None]:
        return group.create_task(
            self._guard(part, loop, until_cancelled=until_cancelled), name=part
        )

    async def _guard(self, part: str, loop: Loop, *, until_cancelled: bool) -> None:
        """Run `loop`; a failure is recorded and halts the service instead of escaping."""
        try:
            await loop()
        except Exception as exc:
            self._failed(part, describe(exc), exc)
            return
        if until_cancelled:
            self._failed(part, "it ended on its own", None)

    def _failed(self, part: str, reason: str, exc: Exception | None) -> None:
        if self._failure is not None:
            log.warning("%s failed too: %s", part, reason)
            return
        log.error("%s failed; stopping the service: %s", part, reason)
        if exc is not None:
            # One line at the usual levels; the traceback is for whoever asks for DEBUG.
            log.debug("%s failed", part, exc_info=exc)
        self._failure = (part, reason, exc)
        self._halt.set()


def describe(exc: BaseException) -> str:
    """`Type: message` of `exc`, or of each distinct error inside an exception group."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(dict.fromkeys(describe(inner) for inner in exc.exceptions))
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


async def _either(*events: asyncio.Event) -> None:
    """Wait until any of `events` is set."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
