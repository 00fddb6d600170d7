"""Poll states recorded now and written later, together: what every store's `record_poll`
keeps in memory.

Most polls at thousands of customers find nothing new and write only their poll state. Those
states wait here and are written in one transaction: `BATCH` at a time, at most `DELAY_S`
after the first, and at `flush` (a store's `close`). Until then a store's reads give them as
if written (`get`, `overlay`); a crash loses them, which only makes those customers' next
polls repeat work. A committed sync carries a newer state, so it `discard`s the waiting one.
A state recorded with a replica's `Fence` keeps it, for the write to check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from watcher.core.errors import StoreError
from watcher.core.ports import Fence, PollState

log = logging.getLogger(__name__)

BATCH = 500  # waiting poll states that make a write at once
DELAY_S = 1.0  # how long the first waiting poll state waits for others

Key = tuple[str, str]  # (source, customer_id)
Waiting = tuple[PollState, Fence | None]
Write = Callable[[Mapping[Key, Waiting]], Awaitable[None]]


class DeferredStates:
    """The poll states waiting to be written by `write` (one transaction, raising
    `StoreError` on failure)."""

    def __init__(self, write: Write, *, batch: int = BATCH, delay_s: float = DELAY_S) -> None:
        self._write = write
        self._batch = batch
        self._delay_s = delay_s
        self._waiting: dict[Key, Waiting] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._writes: set[asyncio.Task[None]] = set()

    def get(self, source: str, customer_id: str) -> PollState | None:
        waiting = self._waiting.get((source, customer_id))
        return None if waiting is None else waiting[0]

    def overlay(self, source: str, states: dict[str, PollState]) -> dict[str, PollState]:
        """`states` (read from the database) with the waiting states of `source` over them."""
        for (of_source, customer_id), (state, _) in self._waiting.items():
            if of_source == source:
                states[customer_id] = state
        return states

    def discard(self, source: str, customer_id: str) -> None:
        self._waiting.pop((source, customer_id), None)

    async def add(
        self, source: str, customer_id: str, state: PollState, fence: Fence | None = None
    ) -> None:
        """Keep `state`; write every waiting state now when there are `batch` of them."""
        self._waiting[(source, customer_id)] = (state, fence)
        if len(self._waiting) >= self._batch:
            await self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._delay_s, self._flush_later)

    async def flush(self) -> None:
        """Write the waiting states. A failure drops them, as a crash would (a newer state
        of the same customer may be committed meanwhile), and is logged."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        states, self._waiting = self._waiting, {}
        if not states:
            return
        try:
            await asyncio.shield(self._write(states))
        except StoreError as exc:
            log.error("cannot record %d poll states: %s", len(states), exc)

    def _flush_later(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self.flush())
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
