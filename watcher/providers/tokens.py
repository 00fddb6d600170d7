"""OAuth access tokens, cached and shared by every call of one vendor account.

A token is fetched with the client-credentials grant (a form POST of grant_type, client_id,
client_secret and the vendor's extra `fields`, such as scope or resource), or with the
refresh-token grant where a vendor needs a user's delegation (Partner Center's app+user),
and reused until `refresh_before_expiry_s` before it expires, on an injected monotonic
clock. When the vendor refuses a token anyway (401, e.g.
revoked), `authorized` refreshes once and repeats the call once; a second refusal is
permanent. Concurrent callers share one refresh: whoever holds the lock fetches, the others
find the new token when they get the lock and use it.

The token request goes out through the source's `client.VendorClient` (`post`), so it
shares the source's rate limit, tracing headers, status translation and redaction: a token
endpoint that refuses the client (400 invalid_client, 401) is a permanent error, one that
is down or throttling is transient, retried by whoever wraps the call. Neither a secret
nor a token is ever logged or put into a message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

from pydantic import Field

from watcher.core.errors import PermanentProviderError
from watcher.providers import reply, translate
from watcher.settings import AuthSettings

log = logging.getLogger(__name__)

T = TypeVar("T")
Clock = Callable[[], float]
Post = Callable[[str, Mapping[str, str], str], Awaitable[reply.Reply]]
"""Sends a form POST (url, form, what) and returns its 2xx reply, or raises."""


class _TokenReply(reply.VendorReply):
    access_token: str = Field(min_length=1)
    expires_in: float = Field(gt=0)


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    refresh_at: float


class TokenCache:
    """The bearer token of one vendor account."""

    def __init__(
        self,
        post: Post,
        auth: AuthSettings,
        *,
        token_url: str,
        fields: Mapping[str, str] | None = None,
        grant: Literal["client_credentials", "refresh_token"] = "client_credentials",
        clock: Clock = time.monotonic,
    ) -> None:
        if grant == "refresh_token" and auth.refresh_token is None:
            raise ValueError("the refresh-token grant needs auth.refresh_token")
        self._post = post
        self._auth = auth
        self._token_url = token_url
        self._fields = dict(fields or {})
        self._grant = grant
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: _Token | None = None

    @property
    def secrets(self) -> tuple[str, ...]:
        """The tokens this cache holds, which must never appear in a message."""
        return (self._token.value,) if self._token is not None else ()

    async def token(self) -> str:
        """A token that is not about to expire, fetching one if needed."""
        current = self._token
        if current is not None and self._clock() < current.refresh_at:
            return current.value
        return await self._refresh(stale=current.value if current is not None else None)

    async def authorized(self, call: Callable[[str], Awaitable[T]]) -> T:
        """Run `call(token)`; on `translate.Unauthorized` refresh the token and run it once more."""
        token = await self.token()
        try:
            return await call(token)
        except translate.Unauthorized:
            log.info(
                "the vendor refused the access token of client %r; refreshing", self._auth.client_id
            )
        token = await self._refresh(stale=token)
        try:
            return await call(token)
        except translate.Unauthorized as exc:
            raise PermanentProviderError(f"{exc}; refused again after a token refresh") from exc

    async def _refresh(self, *, stale: str | None) -> str:
        async with self._lock:
            current = self._token
            if (
                current is not None
                and current.value != stale
                and self._clock() < current.refresh_at
            ):
                return current.value
            self._token = await self._fetch()
            return self._token.value

    async def _fetch(self) -> _Token:
        what = f"token request for client {self._auth.client_id!r}"
        started = self._clock()
        try:
            answer = await self._post(self._token_url, self._form(), what)
        except translate.Unauthorized as exc:
            raise PermanentProviderError(str(exc)) from exc
        granted = reply.validate(_TokenReply, reply.decode_json(answer, what=what), what=what)
        margin_s = min(self._auth.refresh_before_expiry_s, granted.expires_in / 2)
        log.info(
            "access token for client %r valid for %.0fs", self._auth.client_id, granted.expires_in
        )
        return _Token(
            value=granted.access_token, refresh_at=started + granted.expires_in - margin_s
        )

    def _form(self) -> dict[str, str]:
        form = {
            "grant_type": self._grant,
            "client_id": self._auth.client_id,
            "client_secret": self._auth.client_secret.get_secret_value(),
        }
        if self._grant == "refresh_token" and self._auth.refresh_token is not None:
            form["refresh_token"] = self._auth.refresh_token.get_secret_value()
        return form | self._fields
