"""Adobe's idempotency cache: a correlation id names an intent, and an intent has one reply.

Once a reply was produced for an `X-Correlation-Id`, any later call with the same id gets that
reply again, status and body, for 10 days; that is why a poller must send a fresh id on every
call. An `X-Request-Id` names one call: seen again with a different correlation id, it is
rejected (4120). Both memories are bounded to the newest `max_entries` and age on the
injected clock, never on the wall clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

TTL = timedelta(days=10)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    at: datetime


class IdempotencyCache:
    """Replies by correlation id, and the correlation id each request id came with."""

    def __init__(self, *, clock: Callable[[], datetime], max_entries: int) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._replies: OrderedDict[str, Reply] = OrderedDict()
        self._request_ids: OrderedDict[str, str] = OrderedDict()

    def replay(self, correlation_id: str) -> Reply | None:
        """The reply already given for `correlation_id`, while it is younger than TTL."""
        reply = self._replies.get(correlation_id)
        if reply is not None and self._clock() - reply.at >= TTL:
            del self._replies[correlation_id]
            return None
        return reply

    def request_id_reused(self, request_id: str, correlation_id: str) -> bool:
        """Whether `request_id` was seen before with another correlation id."""
        seen_with = self._request_ids.get(request_id)
        return seen_with is not None and seen_with != correlation_id

    def remember(
        self, correlation_id: str, request_id: str | None, *, status: int, body: bytes
    ) -> None:
        self._replies[correlation_id] = Reply(status, body, self._clock())
        if request_id:
            self._request_ids[request_id] = correlation_id
        for memory in (self._replies, self._request_ids):
            while len(memory) > self._max_entries:
                memory.popitem(last=False)
