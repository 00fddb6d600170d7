"""The shared vendor client: its rate limit and defaults, its secrets, tokens through it.

The limiter of every vendor's client runs on the clock and sleep the client is given, so
tests control every wait. The client knows every secret of its source (client secret, API
key, refresh token, live tokens) and scrubs them from the messages of token calls and API
calls alike. The HTTP side runs against a small vendor on a real socket on 127.0.0.1 that
answers what each test tells it to, headers and body included.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

import aiohttp
import pytest
from pydantic import SecretStr

from tests.doubles import FakeMonotonic, RecordingSleep, error_texts
from tests.plugins.vendor import Answer, ScriptedVendor
from watcher import vendors
from watcher.core.errors import (
    MalformedReplyError,
    PermanentProviderError,
    TransientProviderError,
)
from watcher.providers import connect
from watcher.providers.client import Dialect, VendorClient, trace_id
from watcher.settings import AuthSettings, LimitSettings, RetrySettings, SourceSettings

CLIENT_SECRET = "cl13nt-s3cret-value"
API_KEY = "ap1-k3y-value"
REFRESH_TOKEN = "r3fresh-t0ken-value"


def source(provider: str, *, base_url: str = "http://127.0.0.1:1", **extra: Any) -> SourceSettings:
    return SourceSettings(
        name="client-test",
        provider=provider,
        base_url=base_url,
        customers=["c1"],
        auth=AuthSettings(
            client_id="cid",
            client_secret=SecretStr(CLIENT_SECRET),
            api_key=SecretStr(API_KEY),
            refresh_token=SecretStr(REFRESH_TOKEN),
        ),
        retry=RetrySettings(attempts=2, base_delay_s=0.01),
        **extra,
    )


def client(
    settings: SourceSettings,
    session: aiohttp.ClientSession | None = None,
    *,
    clock: FakeMonotonic | None = None,
    sleep: RecordingSleep | None = None,
) -> VendorClient:
    clock = clock or FakeMonotonic()
    return VendorClient(
        settings,
        session or cast(aiohttp.ClientSession, None),
        dialect=Dialect(),
        sleep=(sleep or RecordingSleep()).on(clock),
        clock=clock,
    )


# --- the rate limit ----------------------------------------------------------------------


@pytest.mark.parametrize("provider", vendors.NAMES)
async def test_every_vendors_limiter_waits_on_the_injected_clock(provider: str) -> None:
    clock, sleep = FakeMonotonic(), RecordingSleep()
    limited = client(source(provider), clock=clock, sleep=sleep)
    burst = limited.limiter.burst

    for _ in range(burst + 1):
        await limited.limiter.acquire()

    rate = vendors.named(provider).rate_per_s
    assert sleep.delays == [pytest.approx(1 / rate)]
    assert clock.now == pytest.approx(1000.0 + 1 / rate)


@pytest.mark.parametrize("vendor", vendors.VENDORS, ids=lambda vendor: vendor.name)
def test_the_limits_default_to_the_vendors_own(vendor: vendors.Vendor) -> None:
    limiter = client(source(vendor.name)).limiter
    assert (limiter.rate_per_s, limiter.burst) == (vendor.rate_per_s, vendor.burst)


def test_configured_limits_win_and_mix_with_the_default_burst() -> None:
    both = client(source("adobe_vip", limits=LimitSettings(rate_per_s=2.5, burst=7))).limiter
    rate_only = client(source("adobe_vip", limits=LimitSettings(rate_per_s=1.0))).limiter
    assert (both.rate_per_s, both.burst) == (2.5, 7)
    assert (rate_only.rate_per_s, rate_only.burst) == (1.0, vendors.named("adobe_vip").burst)


def test_the_client_knows_every_secret_of_its_source() -> None:
    assert set(client(source("adobe_vip")).secrets) == {CLIENT_SECRET, API_KEY, REFRESH_TOKEN}


# --- against a vendor on a real socket ---------------------------------------------------


def parse(document: Any, *, what: str) -> Any:
    return document


async def test_a_token_error_quoting_the_api_key_never_shows_it(
    scripted_vendor: ScriptedVendor, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    vendor = scripted_vendor
    refusal = f"client {CLIENT_SECRET} is not entitled to key {API_KEY}"
    vendor.then(Answer(400, {"error": "invalid_client", "error_description": refusal}))
    settings = source("adobe_vip", base_url=vendor.base_url)
    tokens = client(settings, http).tokens(token_url=vendor.base_url + "/token")

    with pytest.raises(PermanentProviderError) as caught:
        await tokens.token()

    texts = error_texts(caught.value) + caplog.text
    assert "invalid_client" in str(caught.value)
    assert API_KEY not in texts
    assert CLIENT_SECRET not in texts


async def test_an_api_error_quoting_a_live_token_never_shows_it(
    scripted_vendor: ScriptedVendor, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    vendor = scripted_vendor
    settings = source("zuora", base_url=vendor.base_url)
    api = client(settings, http)
    tokens = api.tokens(token_url=vendor.base_url + "/token")
    echo = {"success": False, "reasons": [{"code": 5, "message": "l1ve-t0ken-value"}]}
    vendor.then(
        Answer(body={"access_token": "l1ve-t0ken-value", "expires_in": 3600}),
        Answer(503, echo),
        Answer(503, echo),
    )
    await tokens.token()

    with pytest.raises(TransientProviderError) as caught:
        await api.get(vendor.base_url + "/v2/orders", what="w", tokens=tokens, parse=parse)

    assert "l1ve-t0ken-value" not in error_texts(caught.value) + caplog.text
    assert str(caught.value) == "w: HTTP 503 (code 5: [redacted])"


async def test_every_request_carries_the_dialects_trace_headers(
    scripted_vendor: ScriptedVendor, http: aiohttp.ClientSession
) -> None:
    vendor = scripted_vendor
    numbers = iter(range(100))
    traced = VendorClient(
        source("zuora", base_url=vendor.base_url),
        http,
        dialect=Dialect(trace_headers=lambda: {"trace-id": str(next(numbers))}),
    )
    tokens = traced.tokens(token_url=vendor.base_url + "/token")
    vendor.then(Answer(body={"access_token": "t", "expires_in": 3600}))

    await traced.get(vendor.base_url + "/v2/orders", what="w", tokens=tokens, parse=parse)

    assert [request.headers["trace-id"] for request in vendor.seen] == ["0", "1"]
    assert [request.method for request in vendor.seen] == ["POST", "GET"]
    assert vendor.seen[1].headers["Authorization"] == "Bearer t"


async def test_a_next_link_leaving_the_vendor_is_refused_without_quoting_its_query(
    scripted_vendor: ScriptedVendor, http: aiohttp.ClientSession
) -> None:
    vendor = scripted_vendor
    leaving = "https://elsewhere.example/v3/customers/c1/orders?offset=3&token=l1ve-t0ken-value"
    page = {"items": [], "links": {"next": {"uri": leaving}}}
    vendor.default = Answer(body=page)
    vendor.then(Answer(body={"access_token": "l1ve-t0ken-value", "expires_in": 3600}))
    settings = source("adobe_vip", base_url=vendor.base_url)
    settings = settings.model_copy(
        update={"auth": settings.auth.model_copy(update={"token_url": vendor.base_url + "/t"})}
    )
    adapter = connect.adapter(settings, http, sleep=RecordingSleep(), clock=FakeMonotonic())

    with pytest.raises(MalformedReplyError, match=r"links\.next leaves") as caught:
        await adapter.fetch_orders("c1", since=None)

    assert "/v3/customers/c1/orders" in str(caught.value)
    assert "l1ve-t0ken-value" not in error_texts(caught.value)


def test_trace_ids_are_distinct_version_4_uuids() -> None:
    ids = [trace_id() for _ in range(10_000)]

    parsed = [uuid.UUID(text) for text in ids]
    assert len(set(ids)) == len(ids)
    assert {(u.version, u.variant) for u in parsed} == {(4, uuid.RFC_4122)}
    assert [str(u) for u in parsed] == ids
