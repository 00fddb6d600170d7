"""The one translation of what went wrong in a vendor call into the project's errors.

Every vendor request goes through `send` (the library's failures) and `raise_for_status`
(the vendor's statuses), cause chained, as httpx's `map_httpcore_exceptions` does:

    timeout, connection reset, refused, unreadable body   -> TransientProviderError
    a malformed URL                                        -> PermanentProviderError
    401                                                    -> Unauthorized (the token is
                                                              refreshed once, then permanent)
    the vendor's own "retryable" flag, 408, 425, 429, 5xx  -> TransientProviderError, with
                                                              Retry-After, else for a 429
                                                              the budget's reset
    400                                                    -> BadRequest (permanent)
    any other 4xx or 3xx                                   -> PermanentProviderError

A vendor says what went wrong in a body of its own shape; a vendor hook (`ErrorReader`)
reads it into a `VendorError`, and `common_error` reads the usual shapes. The message names
what was being done (`what`), the status, the vendor's code and text, and the request id a
vendor's support asks for. Secrets are scrubbed from the whole message here, in one place:
whatever the vendor echoes back (a client secret, an API key, a token), no message, log
line or chained error built from it quotes it. Request headers never reach a message.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDict

from watcher.core.errors import PermanentProviderError, TransientProviderError
from watcher.providers import retry
from watcher.providers.reply import Reply

_TRANSIENT_STATUSES = frozenset({408, 425, 429})
_VENDOR_TEXT_MAX = 300
_REDACTED = "[redacted]"


class Unauthorized(PermanentProviderError):
    """The vendor refused the bearer token (HTTP 401). Permanent unless a refresh helps."""


class BadRequest(PermanentProviderError):
    """The vendor refused the request itself (HTTP 400): a filter, cursor or page size."""


@dataclass(frozen=True, slots=True)
class VendorError:
    """What a vendor's error body says: its text, and whether it says to try again."""

    text: str
    retryable: bool | None = None


ErrorReader = Callable[[bytes], VendorError | None]


async def send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    what: str,
    timeout_s: float,
    headers: Mapping[str, str] | None = None,
    data: Mapping[str, str] | None = None,
) -> Reply:
    """Send one request and return its reply, whatever its status.

    Redirects are not followed, so a bearer token is only ever sent where it was meant to go.
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


def raise_for_status(
    reply: Reply,
    *,
    what: str,
    secrets: Collection[str],
    read_error: ErrorReader | None = None,
    request_id_header: str | None = None,
    reset_s: float | None = None,
) -> None:
    """Raise the error a non-2xx reply means (see the module docstring); 2xx passes."""
    if 200 <= reply.status < 300:
        return
    error = (read_error or common_error)(reply.body)
    text = f" ({error.text[:_VENDOR_TEXT_MAX]})" if error is not None and error.text else ""
    request_id = reply.headers.get(request_id_header) if request_id_header else None
    trace = f" [{request_id_header} {request_id}]" if request_id else ""
    message = redact(f"{what}: HTTP {reply.status}{text}{trace}", secrets)
    if reply.status == 401:
        raise Unauthorized(message)
    retryable = error is not None and error.retryable is True
    if retryable or reply.status in _TRANSIENT_STATUSES or reply.status >= 500:
        now = retry.reply_time(reply.headers.get("Date"))
        retry_after_s = retry.parse_retry_after(reply.headers.get("Retry-After"), now=now)
        if retry_after_s is None and reply.status == 429:
            retry_after_s = reset_s
        raise TransientProviderError(message, retry_after_s=retry_after_s)
    if reply.status == 400:
        raise BadRequest(message)
    raise PermanentProviderError(message)


def common_error(body: bytes) -> VendorError | None:
    """The code and message of the usual error shapes, or None when the body has none.

    Understands {code, message} (Adobe), {error, error_description} (OAuth token
    endpoints), {code, description} (Partner Center), {errors: [{title, detail}]} (Elastic
    Path) and {reasons: [{code, message}]} (Zuora's v1 shape).
    """
    document = json_object(body)
    if document is None:
        return None
    for key in ("errors", "reasons"):
        nested = document.get(key)
        if isinstance(nested, list) and nested and isinstance(nested[0], dict):
            document = nested[0]
            break
    code = _first_text(document, ("code", "error"))
    message = _first_text(
        document, ("message", "error_description", "description", "detail", "title")
    )
    text = ": ".join(part for part in (f"code {code}" if code else "", message) if part)
    return VendorError(text) if text else None


def json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return document if isinstance(document, dict) else None


def _first_text(document: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = document.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return ""


def redact(text: str, secrets: Collection[str]) -> str:
    """`text` with every non-empty secret replaced by a marker, longest first."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, _REDACTED)
    return text
