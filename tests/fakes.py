"""Hand-written in-memory fakes that satisfy the Protocols in watcher.core.ports.

They keep state in plain dicts and lists so tests can look inside, and they behave like the
real stores where it matters to callers: `pending` returns the oldest unpublished events
first (after a given one, if asked), adding an event id twice keeps the first, and
`mark_published` ignores unknown ids.
Tests wait on `wait_until()` instead of sleeping: it wakes whenever events are marked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from watcher.core.ports import OutboxRecord, OutboxStats


class InMemoryOutbox:
    """An `Outbox` in memory; `add()` stands in for the poller's committed syncs."""

    def __init__(self, records: Iterable[OutboxRecord] = ()) -> None:
        self.records: dict[str, OutboxRecord] = {}
        self.published: dict[str, datetime] = {}
        self._marked = asyncio.Condition()
        self.add(records)

    def add(self, records: Iterable[OutboxRecord]) -> None:
        for record in records:
            self.records.setdefault(record.event_id, record)

    @property
    def unpublished(self) -> list[OutboxRecord]:
        waiting = [r for r in self.records.values() if r.event_id not in self.published]
        return sorted(waiting, key=lambda record: record.created_at)

    async def pending(self, limit: int, *, after: str | None = None) -> list[OutboxRecord]:
        """Outbox order is `created_at`, then insertion (the sort is stable)."""
        ordered = sorted(self.records.values(), key=lambda record: record.created_at)
        if after is not None:
            ids = [record.event_id for record in ordered]
            ordered = ordered[ids.index(after) + 1 :] if after in self.records else []
        return [r for r in ordered if r.event_id not in self.published][:limit]

    async def mark_published(self, event_ids: Sequence[str], *, at: datetime) -> None:
        for event_id in event_ids:
            if event_id in self.records:
                self.published.setdefault(event_id, at)
        async with self._marked:
            self._marked.notify_all()

    async def wait_until(self, condition: Callable[[InMemoryOutbox], bool]) -> None:
        """Return once `condition(self)` holds, re-checking after every `mark_published`."""
        async with self._marked:
            await self._marked.wait_for(lambda: condition(self))

    async def stats(self) -> OutboxStats:
        waiting = self.unpublished
        oldest = waiting[0].created_at if waiting else None
        return OutboxStats(backlog=len(waiting), oldest_created_at=oldest)
