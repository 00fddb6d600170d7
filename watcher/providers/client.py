"""The one vendor client every adapter talks through.

An adapter keeps only what is truly its vendor's (endpoints, paging, reply models, the
mapping to canonical orders) and asks its `VendorClient` for each document:

    client.get(url, what=..., tokens=cache, parse=...)

which, for every attempt, checks the source's request budget, waits for its rate limiter,
sends the request with the bearer token and the vendor's tracing headers, translates the
reply's status (`translate`, secrets scrubbed there), decodes the JSON and parses it; a
401 refreshes the token once (`tokens.TokenCache.authorized`); a transient failure, an
unreadable reply included, is retried with backoff and Retry-After (`retry`). One call
that still fails raises, and the adapter's whole fetch fails with it.

A vendor's differences are a `Dialect`: its tracing headers (fresh ids per request), how
to read its error body, and the reply header naming the request for its support. Rate
limit and burst default per vendor from `watcher.vendors`; the sleep, clock and random
source are injected, and reach the rate limiter too, so tests control every wait.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

import aiohttp

from watcher import vendors
from watcher.providers import guard, retry, tokens, translate
from watcher.providers.reply import Reply, decode_json
from watcher.providers.tokens import TokenCache
from watcher.settings import SourceSettings

T_co = TypeVar("T_co", covariant=True)
T = TypeVar("T")


class Parse(Protocol[T_co]):
    """Reads a decoded reply into what the adapter needs, or raises MalformedReplyError."""

    def __call__(self, document: Any, *, what: str) -> T_co: ...


def _no_headers() -> dict[str, str]:
    return {}


_IDS = random.Random()  # seeded from the OS; ids to trace requests by, never secrets
_VERSION_4 = (~(0xF000 << 64) & ~(0xC000 << 48), (0x4000 << 64) | (0x8000 << 48))


def trace_id() -> str:
    """A fresh random version-4 UUID as text, for a vendor's request and correlation ids.

    Unique, not unpredictable: half of `str(uuid.uuid4())`'s cost or less, which reads the
    OS's randomness at every call (two ids per request at thousands of requests a second;
    measured 2.2 us against 4.4-6 us)."""
    keep, add = _VERSION_4
    digits = f"{_IDS.getrandbits(128) & keep | add:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


@dataclass(frozen=True, slots=True)
class Dialect:
    """What one vendor adds to the shared client (see the module docstring)."""

    trace_headers: Callable[[], Mapping[str, str]] = _no_headers
    read_error: translate.ErrorReader = translate.common_error
    request_id_header: str | None = None


class VendorClient:
    """The requests of one configured source: one rate limit, one budget, its tokens."""

    def __init__(
        self,
        source: SourceSettings,
        session: aiohttp.ClientSession,
        *,
        dialect: Dialect,
        sleep: retry.Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        clock: tokens.Clock = time.monotonic,
    ) -> None:
        vendor = vendors.named(source.provider)
        self.source = source
        self.limiter = guard.RateLimiter(
            rate_per_s=source.limits.rate_per_s or vendor.rate_per_s,
            burst=source.limits.burst or vendor.burst,
            clock=clock,
            sleep=sleep,
        )
        self.budget = guard.Budget(
            self.limiter, clock=clock, max_wait_s=source.retry.max_delay_s, source=source.name
        )
        self._session = session
        self._dialect = dialect
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._clock = clock
        self._caches: list[tokens.TokenCache] = []

    def tokens(
        self,
        *,
        token_url: str,
        fields: Mapping[str, str] | None = None,
        grant: Literal["client_credentials", "refresh_token"] = "client_credentials",
    ) -> tokens.TokenCache:
        """A token cache for this source's credentials, its requests sent by this client."""
        cache = tokens.TokenCache(
            self._post_form,
            self.source.auth,
            token_url=token_url,
            fields=fields,
            grant=grant,
            clock=self._clock,
        )
        self._caches.append(cache)
        return cache

    async def get(
        self,
        url: str,
        *,
        what: str,
        tokens: TokenCache,
        parse: Parse[T],
        headers: Mapping[str, str] | None = None,
    ) -> T:
        """GET `url` with a bearer token and parse its JSON, retried; or a ProviderError."""

        async def attempt(token: str) -> T:
            sent = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            answer = await self._request("GET", url, what=what, headers=sent | dict(headers or {}))
            return parse(decode_json(answer, what=what), what=what)

        return await retry.with_retries(
            lambda: tokens.authorized(attempt),
            retry=self.source.retry,
            sleep=self._sleep,
            rng=self._rng,
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """Everything no message may quote: the source's credentials and its live tokens."""
        auth = self.source.auth
        configured = (auth.client_secret, auth.api_key, auth.refresh_token)
        values = [secret.get_secret_value() for secret in configured if secret is not None]
        for cache in self._caches:
            values += cache.secrets
        return tuple(value for value in values if value)

    async def _post_form(self, url: str, form: Mapping[str, str], what: str) -> Reply:
        return await self._request("POST", url, what=what, headers={}, data=form)

    async def _request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        headers: Mapping[str, str],
        data: Mapping[str, str] | None = None,
    ) -> Reply:
        self.budget.check(what=what)
        await self.limiter.acquire()
        answer = await translate.send(
            self._session,
            method,
            url,
            what=what,
            timeout_s=self.source.timeout_s,
            headers={**self._dialect.trace_headers(), **headers},
            data=data,
        )
        reset_s = self.budget.observe(answer.headers)
        if not 200 <= answer.status < 300:
            translate.raise_for_status(
                answer,
                what=what,
                secrets=self.secrets,
                read_error=self._dialect.read_error,
                request_id_header=self._dialect.request_id_header,
                reset_s=reset_s,
            )
        return answer
