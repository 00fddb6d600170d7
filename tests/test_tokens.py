"""The OAuth token cache, through a source's client, against a scripted token endpoint.

A token is reused until `refresh_before_expiry_s` (at most half its life) before it
expires, on the injected clock; callers waiting at once share one token request; a 401
refreshes the token once and a second refusal is permanent; each grant sends its own form;
a refusing, failing or unreadable token endpoint gives the error that says what to do.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from pydantic import SecretStr

from tests.doubles import FakeMonotonic, RecordingSleep
from tests.plugins.vendor import Answer, ScriptedVendor
from watcher.core.errors import (
    MalformedReplyError,
    PermanentProviderError,
    TransientProviderError,
)
from watcher.providers import tokens, translate
from watcher.providers.client import Dialect, VendorClient
from watcher.settings import AuthSettings, RetrySettings, SourceSettings


def granted(token: str, expires_in: float = 3600) -> Answer:
    return Answer(body={"access_token": token, "expires_in": expires_in, "token_type": "bearer"})


def cache(
    vendor: ScriptedVendor,
    session: aiohttp.ClientSession,
    clock: FakeMonotonic,
    *,
    refresh_before_s: float = 180,
    grant: str = "client_credentials",
) -> tokens.TokenCache:
    source = SourceSettings(
        name="tokens-test",
        provider="elastic_path",
        base_url=vendor.base_url,
        customers=["c1"],
        auth=AuthSettings(
            client_id="cid",
            client_secret=SecretStr("csecret"),
            refresh_token=SecretStr("rtoken"),
            refresh_before_expiry_s=refresh_before_s,
        ),
        retry=RetrySettings(attempts=1),
    )
    client = VendorClient(
        source, session, dialect=Dialect(), sleep=RecordingSleep(clock), clock=clock
    )
    return client.tokens(
        token_url=vendor.base_url + "/token",
        fields={"scope": "orders"},
        grant="refresh_token" if grant == "refresh_token" else "client_credentials",
    )


async def test_a_token_is_reused_until_shortly_before_it_expires(
    scripted_vendor: ScriptedVendor, http: aiohttp.ClientSession
) -> None:
    clock = FakeMonotonic()
    scripted_vendor.then(granted("first"), granted("second"))
    tokens_ = cache(scripted_vendor, http, clock)

    assert await tokens_.token() == "first"
    clock.advance(3600 - 180 - 1)
    assert await tokens_.token() == "first"
    clock.advance(1)
    assert await tokens_.token() == "second"
    assert len(scripted_vendor.seen) == 2


async def test_a_short_lived_token_is_refreshed_at_half_its_life(
    scripted_vendor: ScriptedVendor, http: aiohttp.ClientSession
) -> None:
    clock = FakeMonotonic()
    scripted_vendor.then(granted("first", expires_in=60), granted("second", expires_in=60))
    tokens_ = cache(scripted_vendor, http, clock)

    await tokens_.token()
    clock.advance(29)
    assert await tokens_.token() == "first"
    clock.advance(1)
    assert await tokens_.token() == "second"


async def test_callers_waiting_at_once_share_one_token_request(
    scripted_vendor: ScriptedVendor, http: aiohttp.ClientSession
) -> None:
    scripted_vendor.then(granted("shared"))
    tokens_ = cache(scripted_vendor, http, FakeMonotonic())

    values = await asyncio.gather(*(tokens_.token() for _ in range(5)))

    assert values == ["shared"] * 5
    assert len(scripted_vendor.seen) == 1


async def test_a_refused_token_is_refreshed_once_then_the_refusal_is_permanent(
    scripted_vendor: ScriptedVendor, http: aiohttp.ClientSession
) -> None:
    scripted_vendor.then(granted("one"), granted("two"), granted("three"))
    tokens_ = cache(scripted_vendor, http, FakeMonotonic())
    used: list[str] = []

    async def once_refused(token: str) -> str:
        used.append(token)
        if len(used) == 1:
            raise translate.Unauthorized("w: HTTP 401")
        return token

    async def always_refused(token: str) -> str:
        used.append(token)
        raise translate.Unauthorized("w: HTTP 401")

    assert await tokens_.authorized(once_refused) == "two"
    with pytest.raises(PermanentProviderError, match="refused again after a token refresh"):
        await tokens_.authorized(always_refused)
    assert used == ["one", "two", "two", "three"]


@pytest.mark.parametrize(
    ("grant", "form"),
    [
        ("client_credentials", {"grant_type": "client_credentials"}),
        ("refresh_token", {"grant_type": "refresh_token", "refresh_token": "rtoken"}),
    ],
)
async def test_each_grant_sends_its_form(
    scripted_vendor: ScriptedVendor,
    http: aiohttp.ClientSession,
    grant: str,
    form: dict[str, str],
) -> None:
    scripted_vendor.then(granted("t"))
    await cache(scripted_vendor, http, FakeMonotonic(), grant=grant).token()

    [sent] = scripted_vendor.seen
    assert (sent.method, sent.path) == ("POST", "/token")
    common = {"client_id": "cid", "client_secret": "csecret", "scope": "orders"}
    assert sent.form == common | form


def test_the_refresh_token_grant_needs_a_refresh_token() -> None:
    async def post(url: str, form: object, what: str) -> object:
        raise AssertionError("no request expected")

    with pytest.raises(ValueError, match=r"auth\.refresh_token"):
        tokens.TokenCache(post, AuthSettings(), token_url="http://x/t", grant="refresh_token")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("answer", "kind", "text"),
    [
        (Answer(401, {"error": "invalid_client"}), PermanentProviderError, "HTTP 401"),
        (Answer(400, {"error": "invalid_client"}), PermanentProviderError, "HTTP 400"),
        (Answer(503, {}), TransientProviderError, "HTTP 503"),
        (Answer(200, {"token_type": "bearer"}), MalformedReplyError, "access_token"),
    ],
)
async def test_a_token_endpoint_that_fails_says_what_to_do(
    scripted_vendor: ScriptedVendor,
    http: aiohttp.ClientSession,
    answer: Answer,
    kind: type[Exception],
    text: str,
) -> None:
    scripted_vendor.then(answer)
    with pytest.raises(kind, match=text) as caught:
        await cache(scripted_vendor, http, FakeMonotonic()).token()
    assert "token request for client 'cid'" in str(caught.value)
    assert "csecret" not in str(caught.value)
