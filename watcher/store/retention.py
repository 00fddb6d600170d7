"""How long published events stay in the outbox, and when they are pruned: every store keeps
them for `retention_s` (a late duplicate of one cannot be enqueued again meanwhile) and
prunes those past it at most once per `PRUNE_INTERVAL`, as events are marked published."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from watcher.core.errors import StoreError

log = logging.getLogger(__name__)

DEFAULT_RETENTION_S = 7 * 86_400.0
PRUNE_INTERVAL = timedelta(hours=1)


class Pruner:
    """Calls `prune(older_than)` when events are marked published at `at`, once per interval."""

    def __init__(self, prune: Callable[[datetime], Awaitable[int]], *, retention_s: float) -> None:
        self._prune = prune
        self._retention = timedelta(seconds=retention_s)
        self._pruned_at: datetime | None = None

    async def marked(self, at: datetime) -> None:
        if self._pruned_at is not None and at - self._pruned_at < PRUNE_INTERVAL:
            return
        self._pruned_at = at
        older_than = at - self._retention
        # The events are marked already; a failed prune only waits for the next interval.
        try:
            deleted = await self._prune(older_than)
        except StoreError as exc:
            log.warning("outbox prune failed, retrying later: %s", exc)
        else:
            log.debug("pruned %d published events older than %s", deleted, older_than)
