"""What every vendor adapter does the same way, each against its simulator over real sockets.

One test per behaviour, run for the four adapters: a refused token is refreshed once and
the fetch carries on; a 429's Retry-After is waited; a 5xx is retried and the fetch then
succeeds; a reply that is not JSON fails the fetch after its retries; a later call of a
fetch that keeps failing fails the whole fetch (no partial orders); a vendor that serves
smaller pages than asked is still read to the end; and a credential the vendor echoes in
an error body reaches neither the error, nor anything chained to it, nor a log line.

Each vendor is a `Case`: how to build its adapter on its simulator, a customer with five
orders, the path its listing calls share, a call that only comes later in a fetch (the
second page; Partner Center, which never pages, its provisioning status), and its own
error shape for the echo. What is one vendor's alone stays in that vendor's test module.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from tests import doubles
from tests.doubles import RecordingSleep, error_texts
from tests.plugins.admin import SimulatorAdmin
from tests.plugins.elastic_path import EP_CUSTOMERS
from tests.plugins.zuora import ZUORA_ACCOUNTS
from watcher.core.errors import (
    MalformedReplyError,
    PermanentProviderError,
    TransientProviderError,
)
from watcher.core.ports import Provider
from watcher.settings import AuthSettings, SourceSettings
from watcher.simulator import Simulator, adobe_vip, elastic_path, partner_center, zuora
from watcher.vendors import PartnerCenterOptions

ORDERS = 5  # every case's customer has five orders
Echo = Callable[[str], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    """One vendor on its simulator, as the contract needs it."""

    provider: str
    sim: Simulator[Any]
    admin: SimulatorAdmin
    customer: str
    auth: AuthSettings
    listing: str  # what the path of each listing call contains
    later: str  # what the path of a call that comes later in a fetch contains
    echo: Echo  # the vendor's error body, quoting `text`
    base_suffix: str = ""
    options: Any = None
    grants: int = 1  # token grants the adapter holds, each refreshed once when revoked

    def adapter(
        self, session: aiohttp.ClientSession, *, sleep: RecordingSleep, page_size: int = 2
    ) -> Provider:
        extra = {} if self.options is None else {"options": self.options}
        source: SourceSettings = doubles.sim_source(
            f"{self.provider}-contract",
            self.provider,
            base_url=self.sim.base_url + self.base_suffix,
            customer=self.customer,
            auth=self.auth,
            attempts=3,
            page_size=page_size,
            **extra,
        )
        return doubles.sim_adapter(source, session, sleep=sleep)

    @property
    def secret(self) -> str:
        return self.auth.client_secret.get_secret_value()

    async def calls(self, contains: str) -> list[dict[str, Any]]:
        return [entry for entry in await self.admin.requests() if contains in entry["path_qs"]]

    async def token_calls(self) -> int:
        return len(await self.calls(self.sim.api.wire.token_path))


def _auth(credentials: Any, **extra: Any) -> AuthSettings:
    return AuthSettings(
        client_id=credentials.client_id,
        client_secret=SecretStr(credentials.client_secret),
        **extra,
    )


def _adobe(request: pytest.FixtureRequest) -> Case:
    sim = request.getfixturevalue("adobe_sim")
    return Case(
        provider="adobe_vip",
        sim=sim,
        admin=request.getfixturevalue("sim_admin"),
        customer="1000000001",
        auth=_auth(adobe_vip.CREDENTIALS, token_url=sim.token_url),
        listing="/v3/customers/",
        later="offset=2",
        echo=lambda text: {"code": "5117", "message": text},
    )


def _partner_center(request: pytest.FixtureRequest) -> Case:
    sim = request.getfixturevalue("pc_sim")
    credentials = partner_center.CREDENTIALS
    assert credentials.refresh_token is not None
    return Case(
        provider="partner_center",
        sim=sim,
        admin=request.getfixturevalue("pc_admin"),
        customer=request.getfixturevalue("pc_customer"),
        auth=_auth(
            credentials,
            token_url=sim.token_url,
            refresh_token=SecretStr(credentials.refresh_token),
        ),
        listing="/orders",
        later="/provisioningstatus",
        echo=lambda text: {"code": 600, "description": text},
        options=PartnerCenterOptions(provisioning=True),
        grants=2,  # app-only for the listing, app+user for provisioning status
    )


def _elastic_path(request: pytest.FixtureRequest) -> Case:
    return Case(
        provider="elastic_path",
        sim=request.getfixturevalue("ep_sim"),
        admin=request.getfixturevalue("ep_admin"),
        customer=EP_CUSTOMERS[0],
        auth=_auth(elastic_path.CREDENTIALS),
        listing="/v2/orders",
        later="offset%5D=2",
        echo=lambda text: {"errors": [{"status": 403, "title": "Forbidden", "detail": text}]},
    )


def _zuora(request: pytest.FixtureRequest) -> Case:
    return Case(
        provider="zuora",
        sim=request.getfixturevalue("zuora_sim"),
        admin=request.getfixturevalue("zuora_admin"),
        customer=ZUORA_ACCOUNTS[0],
        auth=_auth(zuora.CREDENTIALS),
        listing="/v2/orders",
        later="cursor=",
        # Zuora's v1 error shape, which its Quickstart gateway still answers with.
        echo=lambda text: {"success": False, "reasons": [{"code": 50000040, "message": text}]},
        base_suffix="/v2",
    )


CASES = {
    "adobe_vip": _adobe,
    "partner_center": _partner_center,
    "elastic_path": _elastic_path,
    "zuora": _zuora,
}
PAGING = ("adobe_vip", "elastic_path", "zuora")  # Partner Center lists all in one call


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param](request)


@pytest.fixture(params=PAGING)
def paging_case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param](request)


async def test_a_refused_token_is_refreshed_once_and_the_fetch_carries_on(
    case: Case, session: aiohttp.ClientSession
) -> None:
    adapter = case.adapter(session, sleep=RecordingSleep())
    await adapter.fetch_orders(case.customer, since=None)
    tokens_before = await case.token_calls()
    await case.admin.revoke_tokens()

    orders = await adapter.fetch_orders(case.customer, since=None)

    assert len(orders) == ORDERS
    assert await case.token_calls() == tokens_before + case.grants
    statuses = [call["status"] for call in await case.calls(case.listing)]
    assert statuses.count(401) == case.grants  # each grant refused once, then refreshed
    assert statuses[-1] == 200


async def test_retry_after_is_waited_before_the_next_attempt(
    case: Case, session: aiohttp.ClientSession
) -> None:
    await case.admin.fault(kind="status", status=429, retry_after_s=7, path_contains=case.listing)
    sleep = RecordingSleep()

    orders = await case.adapter(session, sleep=sleep).fetch_orders(case.customer, since=None)

    assert len(orders) == ORDERS
    assert [delay for delay in sleep.delays if delay >= 1] == [pytest.approx(7.0, abs=0.5)]
    statuses = [call["status"] for call in await case.calls(case.listing)]
    assert statuses[:2] == [429, 200]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_a_server_error_is_retried_and_the_fetch_succeeds(
    case: Case, session: aiohttp.ClientSession, status: int
) -> None:
    await case.admin.fault(kind="status", status=status, count=2, path_contains=case.listing)
    sleep = RecordingSleep()

    orders = await case.adapter(session, sleep=sleep).fetch_orders(case.customer, since=None)

    assert len(orders) == ORDERS
    statuses = [call["status"] for call in await case.calls(case.listing)]
    assert statuses[:3] == [status, status, 200]
    assert len(sleep.delays) == 2  # one backoff before each retry


async def test_a_reply_that_is_not_json_fails_the_fetch_after_its_retries(
    case: Case, session: aiohttp.ClientSession
) -> None:
    await case.admin.fault(kind="malformed", count=-1, path_contains=case.listing)

    with pytest.raises(MalformedReplyError, match="not valid JSON"):
        await case.adapter(session, sleep=RecordingSleep()).fetch_orders(case.customer, since=None)

    assert len(await case.calls(case.listing)) == 3  # the source's three attempts


async def test_a_later_call_that_keeps_failing_fails_the_whole_fetch(
    case: Case, session: aiohttp.ClientSession
) -> None:
    await case.admin.fault(kind="status", status=500, count=-1, path_contains=case.later)

    with pytest.raises(TransientProviderError, match="HTTP 500"):
        await case.adapter(session, sleep=RecordingSleep()).fetch_orders(case.customer, since=None)

    statuses = [call["status"] for call in await case.calls(case.listing)]
    assert statuses[0] == 200  # the first call was answered; its orders were not returned
    assert [call["status"] for call in await case.calls(case.later)] == [500] * 3


async def test_a_vendor_serving_smaller_pages_than_asked_is_read_to_the_end(
    paging_case: Case, session: aiohttp.ClientSession
) -> None:
    await paging_case.admin.page_limit(2)
    adapter = paging_case.adapter(session, sleep=RecordingSleep(), page_size=100)

    orders = await adapter.fetch_orders(paging_case.customer, since=None)

    assert len({order.order_id for order in orders}) == ORDERS
    assert len(await paging_case.calls(paging_case.listing)) >= 3


async def test_a_credential_echoed_in_an_error_body_is_never_quoted(
    case: Case, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echoed = case.echo(f"client {case.auth.client_id} with secret {case.secret} is not entitled")
    await case.admin.fault(kind="status", status=403, body=echoed, path_contains=case.listing)

    with pytest.raises(PermanentProviderError) as caught:
        await case.adapter(session, sleep=RecordingSleep()).fetch_orders(case.customer, since=None)

    assert "with secret [redacted] is not entitled" in str(caught.value)
    assert case.secret not in error_texts(caught.value)
    assert case.secret not in caplog.text
