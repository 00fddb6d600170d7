"""Zuora's side of the HTTP choke point: its error body, retryable flag and request budget.

A Quickstart call goes out through the shared `http` sending (which translates library
errors), then this module reads what Zuora adds:

- `RateLimit-Remaining` / `RateLimit-Reset` (seconds) on every reply. When the budget of
  the window closest to exhaustion is spent (Remaining <= 0), the source's rate limiter is
  paused until the reset (`guard.RateLimiter.pause`), so no call of the source goes out
  into a certain 429. A pause longer than the retry budget's `max_delay_s` is not waited
  out inside a fetch: the next call fails at once, transient, with `retry_after_s` the
  time left, and the poller owns that wait (`Budget.check`).
- Errors `{type, errors: [{code, parameter, message}], retryable}`:

      401                                   -> http.Unauthorized (the token is refreshed once)
      retryable: true, whatever the status  -> TransientProviderError
      408, 425, 429, 5xx                    -> TransientProviderError; a 429's retry_after_s
                                               is Retry-After, else RateLimit-Reset
      400                                   -> BadRequest (permanent)
      any other 4xx                         -> PermanentProviderError

  Messages quote the type, the first error's code, message and parameter, and end with the
  reply's `zuora-request-id`, which Zuora support asks for; secrets are scrubbed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Mapping
from datetime import UTC, datetime

import aiohttp
import orjson
from pydantic import Field, ValidationError

from watcher.core.errors import PermanentProviderError, TransientProviderError
from watcher.providers import guard, http, tokens

TRACK_ID = "zuora-track-id"
REQUEST_ID = "zuora-request-id"
_TRANSIENT_STATUSES = frozenset({408, 425, 429})
_TEXT_MAX = 300


class BadRequest(PermanentProviderError):
    """Zuora refused the request itself (HTTP 400): a filter, cursor or page size."""


class _Error(http.VendorReply):
    code: str | None = None
    parameter: str | None = None
    message: str | None = None


class _ErrorBody(http.VendorReply):
    type: str = ""
    errors: list[_Error] = Field(default_factory=list)
    retryable: bool | None = None


class Budget:
    """What Zuora said about a source's request budget, and the limiter it pauses."""

    def __init__(
        self, limiter: guard.RateLimiter, *, clock: tokens.Clock = time.monotonic, max_wait_s: float
    ) -> None:
        self.limiter = limiter
        self._clock = clock
        self._max_wait_s = max_wait_s
        self._spent_until = 0.0

    def observe(self, headers: Mapping[str, str]) -> float | None:
        """Pause the limiter when the reply says the budget is spent; the seconds to reset."""
        reset_s = _number(headers.get("RateLimit-Reset"))
        remaining = _number(headers.get("RateLimit-Remaining"))
        if remaining is None or remaining > 0 or reset_s is None:
            return reset_s
        self.limiter.pause(reset_s)
        self._spent_until = max(self._spent_until, self._clock() + reset_s)
        return reset_s

    def check(self, *, what: str) -> None:
        """Fail at once, transient, when the budget resets later than a retry would wait."""
        left_s = self._spent_until - self._clock()
        if left_s > self._max_wait_s:
            raise TransientProviderError(
                f"{what}: Zuora's request budget is spent; it resets in {left_s:.0f}s",
                retry_after_s=left_s,
            )


async def get(
    session: aiohttp.ClientSession,
    url: str,
    *,
    what: str,
    timeout_s: float,
    headers: Mapping[str, str],
    secrets: Collection[str],
    budget: Budget,
) -> http.Reply:
    """One GET through the source's budget and limiter; its 2xx reply or a ProviderError."""
    budget.check(what=what)
    await budget.limiter.acquire()
    reply = await http.send(
        session, "GET", url, what=what, timeout_s=timeout_s, headers=headers, data=None
    )
    reset_s = budget.observe(reply.headers)
    raise_for_status(reply, what=what, secrets=secrets, reset_s=reset_s)
    return reply


def raise_for_status(
    reply: http.Reply, *, what: str, secrets: Collection[str] = (), reset_s: float | None = None
) -> None:
    """Translate a non-2xx Zuora reply into the error that says what the caller should do."""
    if 200 <= reply.status < 300:
        return
    error = _error_body(reply.body)
    text = describe(error, secrets=secrets) if error else http.vendor_error_text(reply.body)
    request_id = reply.headers.get(REQUEST_ID)
    trace = f" [{REQUEST_ID} {request_id}]" if request_id else ""
    message = f"{what}: HTTP {reply.status}{text}{trace}"
    if reply.status == 401:
        raise http.Unauthorized(message)
    retryable = error is not None and error.retryable is True
    if retryable or reply.status in _TRANSIENT_STATUSES or reply.status >= 500:
        retry_after_s = http.parse_retry_after(reply.headers.get("Retry-After"), now=_now())
        if retry_after_s is None and reply.status == 429:
            retry_after_s = reset_s
        raise TransientProviderError(message, retry_after_s=retry_after_s)
    if reply.status == 400:
        raise BadRequest(message)
    raise PermanentProviderError(message)


def describe(error: _ErrorBody, *, secrets: Collection[str] = ()) -> str:
    """' (type: code X: message; parameter P)' from Quickstart's error body."""
    parts = [error.type] if error.type else []
    first = error.errors[0] if error.errors else _Error()
    if first.code:
        parts.append(f"code {first.code}")
    if first.message:
        parts.append(first.message)
    text = ": ".join(parts)
    if first.parameter:
        text += f"; parameter {first.parameter}"
    return f" ({http.redact(text, secrets)[:_TEXT_MAX]})" if text else ""


def _error_body(body: bytes) -> _ErrorBody | None:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict) or not ({"type", "retryable"} & document.keys()):
        return None
    try:
        return _ErrorBody.model_validate(document)
    except ValidationError:
        return None


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) and number >= 0 else None


def _now() -> datetime:
    return datetime.now(UTC)
