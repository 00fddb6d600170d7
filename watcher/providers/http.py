"""Shared HTTP handling for the vendor adapters: one choke point for errors, one retry loop.

`request` is the only place where aiohttp meets the project's error tree (httpx's
`map_httpcore_exceptions` is the model). It sends one request, reads the whole body and
translates whatever went wrong, cause chained:

    timeout, connection reset, refused, unreadable body   -> TransientProviderError
    408, 425, 429, 5xx (with Retry-After when sent)        -> TransientProviderError
    401                                                    -> Unauthorized (the token cache
                                                              refreshes once, then gives up)
    any other 4xx or 3xx, a malformed URL                  -> PermanentProviderError
    2xx whose body is not JSON (`decode_json`)             -> MalformedReplyError

Messages name what was being done (`what`, e.g. "adobe_vip customer 123: GET /v3/...") and
quote the vendor's own error code and message; the request's secrets are scrubbed from
anything the vendor echoes back, and request headers never reach a message. Redirects are
not followed, so a bearer token is only ever sent to the URL it was meant for.

`with_retries` re-runs a call on TransientProviderError with exponential backoff and full
jitter: attempt n waits uniform(0, min(max_delay_s, base_delay_s * 2**(n-1))), or at least
the vendor's Retry-After. A Retry-After longer than `max_delay_s` ends the loop at once: the
error carries `retry_after_s` up to the poller, which owns waits that long. The sleep and the
random source are injected so tests neither wait nor flake.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import aiohttp
import orjson
import pydantic
from multidict import CIMultiDict
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from watcher.core.errors import (
    MalformedReplyError,
    PermanentProviderError,
    TransientProviderError,
)
from watcher.providers import guard
from watcher.settings import RetrySettings

log = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=pydantic.BaseModel)
Sleep = Callable[[float], Awaitable[None]]

_TRANSIENT_STATUSES = frozenset({408, 425, 429})
_VENDOR_TEXT_MAX = 300
_REDACTED = "[redacted]"


class VendorReply(pydantic.BaseModel):
    """Base of every model of a vendor reply: fields we do not read are ignored, and a
    validation error never quotes the reply's values (they may hold tokens or secrets)."""

    model_config = pydantic.ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)


class CamelCaseReply(VendorReply):
    """A vendor reply in camelCase whose ids may come as numbers (Adobe, Partner Center)."""

    model_config = pydantic.ConfigDict(alias_generator=to_camel, coerce_numbers_to_str=True)


class Unauthorized(PermanentProviderError):
    """The vendor refused the bearer token (HTTP 401). Permanent unless a refresh helps."""


@dataclass(frozen=True, slots=True)
class Reply:
    """A vendor's reply, read in full; `headers` from `request` are case-insensitive."""

    status: int
    headers: Mapping[str, str]
    body: bytes


async def request(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    what: str,
    timeout_s: float,
    headers: Mapping[str, str] | None = None,
    data: Mapping[str, str] | None = None,
    secrets: Collection[str] = (),
    limiter: guard.RateLimiter | None = None,
) -> Reply:
    """Send one request and return its successful reply, or raise a `ProviderError`.

    With a `limiter`, the request waits for the source's rate limit first.
    """
    if limiter is not None:
        await limiter.acquire()
    reply = await send(
        session, method, url, what=what, timeout_s=timeout_s, headers=headers, data=data
    )
    raise_for_status(reply, what=what, secrets=secrets)
    return reply


async def send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    what: str,
    timeout_s: float,
    headers: Mapping[str, str] | None,
    data: Mapping[str, str] | None,
) -> Reply:
    """Send one request and return its reply, whatever its status.

    Library failures (timeouts, refused connections, bad URLs) still become `ProviderError`s
    here; `request` adds the status check, and vendors that must read every reply's headers
    first (rate-limit budgets) call this and check the status themselves.
    """
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with session.request(
            method, url, headers=headers, data=data, timeout=timeout, allow_redirects=False
        ) as response:
            body = await response.read()
            return Reply(status=response.status, headers=CIMultiDict(response.headers), body=body)
    except aiohttp.InvalidURL as exc:
        raise PermanentProviderError(f"{what}: invalid URL") from exc
    except TimeoutError as exc:
        raise TransientProviderError(f"{what}: no reply within {timeout_s:g}s") from exc
    except aiohttp.ClientError as exc:
        raise TransientProviderError(f"{what}: {type(exc).__name__}: {exc}") from exc


def raise_for_status(reply: Reply, *, what: str, secrets: Collection[str] = ()) -> None:
    """Translate a non-2xx reply into the error that says what the caller should do."""
    if 200 <= reply.status < 300:
        return
    message = f"{what}: HTTP {reply.status}{vendor_error_text(reply.body, secrets=secrets)}"
    if reply.status in _TRANSIENT_STATUSES or reply.status >= 500:
        retry_after_s = parse_retry_after(reply.headers.get("Retry-After"), now=_reply_time(reply))
        raise TransientProviderError(message, retry_after_s=retry_after_s)
    if reply.status == 401:
        raise Unauthorized(message)
    raise PermanentProviderError(message)


def decode_json(reply: Reply, *, what: str) -> Any:
    """The reply's JSON document, or MalformedReplyError saying why it is not one."""
    try:
        return orjson.loads(reply.body)
    except orjson.JSONDecodeError as exc:
        raise MalformedReplyError(
            f"{what}: the reply is not valid JSON ({exc}; {len(reply.body)} bytes)"
        ) from exc


def validate(model: type[M], document: Any, *, what: str) -> M:
    """`document` as a `model`, or MalformedReplyError naming the fields that are wrong.

    Only locations and reasons are quoted, never the values, which may hold tokens; vendor
    models set `hide_input_in_errors` so the chained ValidationError does not quote them either.
    """
    try:
        return model.model_validate(document)
    except pydantic.ValidationError as exc:
        problems = "; ".join(_problem(error) for error in exc.errors()[:3])
        more = f" (+{exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
        raise MalformedReplyError(f"{what}: unexpected reply shape: {problems}{more}") from exc


def _problem(error: ErrorDetails) -> str:
    location = ".".join(str(part) for part in error["loc"]) or "(document)"
    return f"{location}: {error['msg']}"


def vendor_error_text(body: bytes, *, secrets: Collection[str] = ()) -> str:
    """' (code X: message)' from the common vendor error shapes, or '' when there is none.

    Understands {code, message} (Adobe), {error, error_description} (OAuth token
    endpoints), {code, description} (Partner Center), {errors: [{title, detail}]} (Elastic
    Path) and {reasons: [{code, message}]} (Zuora).
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    if isinstance(document, dict):
        for key in ("errors", "reasons"):
            nested = document.get(key)
            if isinstance(nested, list) and nested and isinstance(nested[0], dict):
                document = nested[0]
                break
    if not isinstance(document, dict):
        return ""
    code = _first_text(document, ("code", "error"))
    message = _first_text(
        document, ("message", "error_description", "description", "detail", "title")
    )
    text = ": ".join(part for part in (f"code {code}" if code else "", message) if part)
    return f" ({redact(text, secrets)[:_VENDOR_TEXT_MAX]})" if text else ""


def _first_text(document: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = document.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return ""


def redact(text: str, secrets: Collection[str]) -> str:
    """`text` with every non-empty secret replaced by a marker."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return text


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Retry-After as seconds from `now`: delta-seconds or an HTTP-date; None if unusable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        return _seconds_until(text, now=now)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _seconds_until(http_date: str, *, now: datetime) -> float | None:
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _reply_time(reply: Reply) -> datetime:
    """The vendor's own clock (Date header) when it sent one, so clock skew cancels out."""
    date = reply.headers.get("Date")
    if date:
        try:
            sent = parsedate_to_datetime(date)
        except (TypeError, ValueError):
            sent = None
        if sent is not None and sent.tzinfo is not None:
            return sent
    return datetime.now(UTC)


def backoff_s(attempt: int, *, retry: RetrySettings, rng: random.Random) -> float:
    """Full-jitter exponential backoff before retry number `attempt` (1-based)."""
    ceiling = min(retry.max_delay_s, retry.base_delay_s * 2 ** (attempt - 1))
    return rng.uniform(0.0, ceiling)


def next_delay_s(
    error: TransientProviderError, *, attempt: int, retry: RetrySettings, rng: random.Random
) -> float | None:
    """How long to wait before trying again after `attempt` failed, or None to give up."""
    if attempt >= retry.attempts:
        return None
    delay = backoff_s(attempt, retry=retry, rng=rng)
    if error.retry_after_s is None:
        return delay
    if error.retry_after_s > retry.max_delay_s:
        return None
    return max(delay, error.retry_after_s)


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    retry: RetrySettings,
    sleep: Sleep,
    rng: random.Random,
) -> T:
    """Run `call`, retrying transient failures; the last failure propagates unchanged."""
    attempt = 1
    while True:
        try:
            return await call()
        except TransientProviderError as exc:
            delay = next_delay_s(exc, attempt=attempt, retry=retry, rng=rng)
            if delay is None:
                raise
            log.warning("retry %d of %d in %.2fs: %s", attempt, retry.attempts - 1, delay, exc)
        await sleep(delay)
        attempt += 1
