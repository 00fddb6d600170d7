"""The one translation of vendor replies into the project's errors: each status class, the
Retry-After a throttled or busy reply carries (read against the vendor's clock), the common
vendor error shapes, a vendor's retryable flag, and secrets scrubbed from the message.
"""

from __future__ import annotations

import pytest

from watcher.core.errors import (
    MalformedReplyError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)
from watcher.providers import translate
from watcher.providers.reply import Reply, decode_json

# --- status translation -------------------------------------------------------------


def reply(status: int, body: bytes = b"", **headers: str) -> Reply:
    return Reply(
        status=status,
        headers={key.replace("_", "-"): value for key, value in headers.items()},
        body=body,
    )


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, PermanentProviderError),
        (401, translate.Unauthorized),
        (403, PermanentProviderError),
        (404, PermanentProviderError),
        (408, TransientProviderError),
        (429, TransientProviderError),
        (500, TransientProviderError),
        (503, TransientProviderError),
    ],
)
def test_raise_for_status_classifies(status: int, kind: type[ProviderError]) -> None:
    with pytest.raises(kind, match=f"^what: HTTP {status}"):
        translate.raise_for_status(reply(status), what="what", secrets=())


def test_raise_for_status_accepts_2xx() -> None:
    translate.raise_for_status(reply(200), what="what", secrets=())
    translate.raise_for_status(reply(204), what="what", secrets=())


def test_throttled_reply_carries_retry_after() -> None:
    throttled = reply(429, b'{"code": "4118", "message": "Too many requests"}', Retry_After="7")
    with pytest.raises(TransientProviderError) as caught:
        translate.raise_for_status(throttled, what="what", secrets=())
    assert caught.value.retry_after_s == 7.0
    assert str(caught.value) == "what: HTTP 429 (code 4118: Too many requests)"


def test_retry_after_date_is_read_against_the_vendors_clock() -> None:
    busy = reply(
        503, Retry_After="Tue, 24 Nov 2026 12:01:00 GMT", Date="Tue, 24 Nov 2026 12:00:00 GMT"
    )
    with pytest.raises(TransientProviderError) as caught:
        translate.raise_for_status(busy, what="what", secrets=())
    assert caught.value.retry_after_s == 60.0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b'{"code": "1116", "message": "Invalid Customer", "additionalDetails": []}',
            " (code 1116: Invalid Customer)",
        ),
        (
            b'{"error": "invalid_client", "error_description": "bad secret"}',
            " (code invalid_client: bad secret)",
        ),
        (
            b'{"errors": [{"status": 404, "title": "Not Found", "detail": "No order"}]}',
            " (No order)",
        ),
        (
            b'{"success": false, "reasons": [{"code": 5300, "message": "Throttled"}]}',
            " (code 5300: Throttled)",
        ),
        (b"<html>Bad gateway</html>", ""),
        (b"[1, 2]", ""),
        (b"", ""),
    ],
)
def test_common_error_reads_the_usual_shapes(body: bytes, expected: str) -> None:
    error = translate.common_error(body)
    assert (f" ({error.text})" if error is not None else "") == expected


def test_the_message_never_quotes_a_secret_the_vendor_echoes() -> None:
    body = b'{"code": "4116", "message": "token tok-123 expired, secret s3cret"}'
    with pytest.raises(PermanentProviderError) as caught:
        translate.raise_for_status(
            reply(403, body, x_request_id="tok-123"),
            what="what",
            secrets=("tok-123", "s3cret", ""),
            request_id_header="x-request-id",
        )
    assert str(caught.value) == (
        "what: HTTP 403 (code 4116: token [redacted] expired, secret [redacted])"
        " [x-request-id [redacted]]"
    )


def test_decode_json_rejects_broken_json() -> None:
    with pytest.raises(MalformedReplyError, match=r"^what: the reply is not valid JSON"):
        decode_json(reply(200, b'{"items": [{"orderId": '), what="what")
