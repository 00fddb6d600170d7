"""The Adobe VIP Marketplace adapter against the vendor simulator over real sockets on
127.0.0.1: what is Adobe's alone.

Paging by links.next, the start-date window and a full re-list, fresh request and
correlation ids, token expiry, one token request for concurrent fetches and a token refused
twice, timeouts, unreadable and truncated replies, and errors that name the customer but
never a secret. The pure mapping and parsing tables are in test_adobe_vip_mapping.py; what
every adapter does alike is in test_vendor_contract.py.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from tests import doubles
from tests.doubles import FakeMonotonic, RecordingSleep, error_texts
from tests.plugins.simulator import (
    SIM_CUSTOMERS,
    SIM_NOW,
    SIM_ORDERS_PER_CUSTOMER,
    AdobeSimulator,
    ManualClock,
    SimAdmin,
)
from watcher.core.errors import (
    MalformedReplyError,
    PermanentProviderError,
)
from watcher.core.models import OrderStatus, Provisioning
from watcher.core.ports import Provider
from watcher.settings import AuthSettings
from watcher.simulator.adobe_vip.routes import TOKEN_PATH
from watcher.simulator.adobe_vip.world import CLIENT_ID, CLIENT_SECRET

CUSTOMER = SIM_CUSTOMERS[0]
PAGED_CUSTOMER = "2000000001"


def make_adapter(
    sim: AdobeSimulator,
    session: aiohttp.ClientSession,
    *,
    sleep: RecordingSleep | None = None,
    clock: FakeMonotonic | None = None,
    secret: str = CLIENT_SECRET,
    api_key: str | None = None,
    page_size: int = 3,
    attempts: int = 3,
    timeout_s: float = 5.0,
) -> Provider:
    auth = AuthSettings(
        token_url=sim.token_url,
        client_id=CLIENT_ID,
        client_secret=SecretStr(secret),
        api_key=SecretStr(api_key) if api_key is not None else None,
    )
    source = doubles.sim_source(
        "adobe-test",
        "adobe_vip",
        base_url=sim.base_url,
        customer=CUSTOMER,
        auth=auth,
        attempts=attempts,
        timeout_s=timeout_s,
        page_size=page_size,
    )
    return doubles.sim_adapter(source, session, sleep=sleep, clock=clock)


async def seed_paged_customer(admin: SimAdmin, *, orders: int = 7) -> list[str]:
    """A customer with `orders` orders, one hour apart, newest first; their ids."""
    await admin.create_customer(PAGED_CUSTOMER)
    ids = []
    for hours in range(orders):
        created = (SIM_NOW - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
        order = await admin.create_order(PAGED_CUSTOMER, {"creationDate": created})
        ids.append(str(order["orderId"]))
    return ids


async def api_calls(admin: SimAdmin) -> list[dict[str, Any]]:
    return [entry for entry in await admin.requests() if entry["path_qs"].startswith("/v3/")]


async def token_calls(admin: SimAdmin) -> int:
    entries = await admin.requests()
    return sum(entry["method"] == "POST" and entry["path_qs"] == TOKEN_PATH for entry in entries)


async def test_pages_through_every_order(
    adobe_sim: AdobeSimulator, sim_admin: SimAdmin, session: aiohttp.ClientSession
) -> None:
    ids = await seed_paged_customer(sim_admin)
    adapter = make_adapter(adobe_sim, session, page_size=3)

    orders = await adapter.fetch_orders(PAGED_CUSTOMER, since=None)

    assert [order.order_id for order in orders] == ids
    assert {order.customer_id for order in orders} == {PAGED_CUSTOMER}
    calls = await api_calls(sim_admin)
    assert [call["status"] for call in calls] == [200, 200, 200]
    for call, offset in zip(calls, (0, 3, 6), strict=True):
        assert f"offset={offset}" in call["path_qs"]
        assert "limit=3" in call["path_qs"]
        assert "start-date=2000-01-01" in call["path_qs"]


async def test_maps_the_simulators_orders(
    adobe_sim: AdobeSimulator, sim_admin: SimAdmin, session: aiohttp.ClientSession
) -> None:
    await sim_admin.create_customer(PAGED_CUSTOMER)
    line = {
        "extLineItemNumber": 7,
        "offerId": "65304578CA01A12",
        "quantity": 5,
        "status": "1002",
        "subscriptionId": "",
    }
    created = await sim_admin.create_order(PAGED_CUSTOMER, {"status": "1002", "lineItems": [line]})
    await sim_admin.create_order(PAGED_CUSTOMER, {"orderType": "PREVIEW"})
    adapter = make_adapter(adobe_sim, session)

    [order] = await adapter.fetch_orders(PAGED_CUSTOMER, since=None)

    assert (order.order_id, order.status, order.status_raw) == (
        created["orderId"],
        OrderStatus.PENDING,
        "1002",
    )
    assert order.created_at == SIM_NOW
    [item] = order.line_items
    assert (item.key, item.quantity, item.subscription_id, item.provisioning) == (
        "7",
        5,
        None,
        Provisioning.PENDING,
    )


async def test_full_relist_reaches_orders_older_than_the_default_window(
    adobe_sim: AdobeSimulator, sim_admin: SimAdmin, session: aiohttp.ClientSession
) -> None:
    old = await sim_admin.create_order(CUSTOMER, {"creationDate": "2024-01-15T00:00:00Z"})
    adapter = make_adapter(adobe_sim, session)

    full = await adapter.fetch_orders(CUSTOMER, since=None)
    recent = await adapter.fetch_orders(CUSTOMER, since=SIM_NOW - timedelta(days=30))

    assert old["orderId"] in {order.order_id for order in full}
    assert old["orderId"] not in {order.order_id for order in recent}
    assert len(full) == len(recent) + 1


async def test_every_call_has_fresh_ids_and_sees_fresh_data(
    adobe_sim: AdobeSimulator, sim_admin: SimAdmin, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(adobe_sim, session, page_size=2)

    before = {order.order_id: order for order in await adapter.fetch_orders(CUSTOMER, since=None)}
    await sim_admin.patch_order(CUSTOMER, "5120000001", {"status": "1000"})
    after = {order.order_id: order for order in await adapter.fetch_orders(CUSTOMER, since=None)}

    assert (before["5120000001"].status, after["5120000001"].status) == (
        OrderStatus.PENDING,
        OrderStatus.COMPLETED,
    )
    calls = await api_calls(sim_admin)
    assert len(calls) == 6
    assert all(call["status"] == 200 for call in calls)
    headers = [call["headers"] for call in calls]
    assert len({h["X-Request-Id"] for h in headers}) == 6
    assert len({h["X-Correlation-Id"] for h in headers}) == 6
    assert all(h["Authorization-present"] and h["X-Api-Key-present"] for h in headers)


async def test_a_token_refused_even_after_a_refresh_is_permanent(
    adobe_sim: AdobeSimulator, sim_admin: SimAdmin, session: aiohttp.ClientSession
) -> None:
    await sim_admin.fault(kind="status", status=401, count=-1)
    sleep = RecordingSleep()
    adapter = make_adapter(adobe_sim, session, sleep=sleep)

    with pytest.raises(
        PermanentProviderError, match="refused again after a token refresh"
    ) as caught:
        await adapter.fetch_orders(CUSTOMER, since=None)

    assert CUSTOMER in str(caught.value)
    assert await token_calls(sim_admin) == 2
    assert sleep.delays == []


async def test_refreshes_the_token_before_it_expires(
    adobe_sim: AdobeSimulator,
    sim_admin: SimAdmin,
    sim_clock: ManualClock,
    session: aiohttp.ClientSession,
) -> None:
    clock = FakeMonotonic()
    adapter = make_adapter(adobe_sim, session, clock=clock, page_size=10)
    await adapter.fetch_orders(CUSTOMER, since=None)
    clock.advance(3600)
    await adapter.fetch_orders(CUSTOMER, since=None)
    assert await token_calls(sim_admin) == 1

    # Inside the last 180 s of the token's 86399 s: refreshed before the vendor refuses it.
    clock.advance(86300 - 3600)
    sim_clock.advance(86300)
    await adapter.fetch_orders(CUSTOMER, since=None)

    assert await token_calls(sim_admin) == 2
    assert [call["status"] for call in await api_calls(sim_admin)] == [200, 200, 200]


async def test_concurrent_fetches_share_one_token_request(
    adobe_sim: AdobeSimulator, sim_admin: SimAdmin, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(adobe_sim, session)

    results = await asyncio.gather(
        *(adapter.fetch_orders(customer, since=None) for customer in SIM_CUSTOMERS * 3)
    )

    assert [len(orders) for orders in results] == [SIM_ORDERS_PER_CUSTOMER] * 6
    assert await token_calls(sim_admin) == 1


async def test_a_slow_reply_times_out_and_is_retried(
    adobe_sim: AdobeSimulator, sim_admin: SimAdmin, session: aiohttp.ClientSession
) -> None:
    await sim_admin.fault(kind="slow", delay_s=5.0)
    sleep = RecordingSleep()
    adapter = make_adapter(adobe_sim, session, sleep=sleep, page_size=10, timeout_s=0.2)

    orders = await adapter.fetch_orders(CUSTOMER, since=None)

    assert len(orders) == SIM_ORDERS_PER_CUSTOMER
    assert len(sleep.delays) == 1


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("malformed", "the reply is not valid JSON"),
        ("truncated", "unexpected reply shape: items: Field required"),
    ],
)
async def test_unreadable_replies_raise_malformed_reply(
    adobe_sim: AdobeSimulator,
    sim_admin: SimAdmin,
    session: aiohttp.ClientSession,
    kind: str,
    message: str,
) -> None:
    await sim_admin.fault(kind=kind, count=-1)
    sleep = RecordingSleep()
    adapter = make_adapter(adobe_sim, session, sleep=sleep, attempts=2)

    with pytest.raises(MalformedReplyError, match=message) as caught:
        await adapter.fetch_orders(CUSTOMER, since=None)

    assert f"customer {CUSTOMER}" in str(caught.value)
    assert len(sleep.delays) == 1


async def test_one_malformed_reply_is_retried(
    adobe_sim: AdobeSimulator, sim_admin: SimAdmin, session: aiohttp.ClientSession
) -> None:
    await sim_admin.fault(kind="malformed")
    adapter = make_adapter(adobe_sim, session, page_size=10)

    assert len(await adapter.fetch_orders(CUSTOMER, since=None)) == SIM_ORDERS_PER_CUSTOMER


async def test_an_unknown_customer_is_permanent_and_named(
    adobe_sim: AdobeSimulator, session: aiohttp.ClientSession
) -> None:
    sleep = RecordingSleep()
    adapter = make_adapter(adobe_sim, session, sleep=sleep)

    with pytest.raises(
        PermanentProviderError, match=r"HTTP 404 \(code 1116: Invalid Customer\)"
    ) as caught:
        await adapter.fetch_orders("9999999999", since=None)

    assert "customer 9999999999" in str(caught.value)
    assert sleep.delays == []
    assert CLIENT_SECRET not in error_texts(caught.value)


async def test_a_wrong_api_key_is_permanent_and_never_quoted(
    adobe_sim: AdobeSimulator, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(adobe_sim, session, api_key="not-the-api-key")

    with pytest.raises(PermanentProviderError, match=r"HTTP 403 \(code 4115") as caught:
        await adapter.fetch_orders(CUSTOMER, since=None)

    assert f"customer {CUSTOMER}" in str(caught.value)
    assert "not-the-api-key" not in error_texts(caught.value)


async def test_a_forbidden_reply_is_permanent(
    adobe_sim: AdobeSimulator, sim_admin: SimAdmin, session: aiohttp.ClientSession
) -> None:
    await sim_admin.fault(kind="status", status=403)
    adapter = make_adapter(adobe_sim, session)

    with pytest.raises(PermanentProviderError, match=f"customer {CUSTOMER}.*HTTP 403"):
        await adapter.fetch_orders(CUSTOMER, since=None)


async def test_a_bad_client_secret_is_permanent_and_never_quoted(
    adobe_sim: AdobeSimulator, sim_admin: SimAdmin, session: aiohttp.ClientSession
) -> None:
    sleep = RecordingSleep()
    adapter = make_adapter(adobe_sim, session, sleep=sleep, secret="wrong-secret-0xdeadbeef")

    with pytest.raises(PermanentProviderError, match="invalid_client") as caught:
        await adapter.fetch_orders(CUSTOMER, since=None)

    assert "wrong-secret-0xdeadbeef" not in error_texts(caught.value)
    assert sleep.delays == []
    assert await api_calls(sim_admin) == []
