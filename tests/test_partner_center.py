"""The Partner Center adapter against the simulator over real sockets: the whole collection in
one call, the local creationDate window with in-flight orders kept, the listing lag,
provisioningstatus only where needed and with app+user tokens, both token grants, faults,
trace headers, and tokens kept out of errors. The pure tables are in
test_partner_center_mapping.py, transitions as events in test_partner_center_events.py,
and what every adapter does alike in test_vendor_contract.py.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import aiohttp
import pytest

from tests.doubles import FakeMonotonic, error_texts
from tests.partner_center_cases import (
    by_id,
    calls,
    changes,
    make_adapter,
    pending_ids,
    token_calls,
)
from tests.plugins.partner_center import PcAdmin, PcSimulator
from tests.plugins.simulator import SIM_NOW, ManualClock
from watcher.core.errors import MalformedReplyError, PermanentProviderError
from watcher.core.models import OrderStatus, Provisioning
from watcher.simulator.partner_center.world import CLIENT_SECRET, REFRESH_TOKEN

pytestmark = pytest.mark.timeout(10)


async def test_reads_the_whole_collection_in_one_call(
    pc_sim: PcSimulator, pc_admin: PcAdmin, pc_customer: str, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(pc_sim, session)

    orders = await adapter.fetch_orders(pc_customer, since=None)

    assert sorted(by_id(orders)) == sorted(
        s.payload["id"] for s in pc_sim.state.stored(pc_customer)
    )
    assert [c["path_qs"] for c in await calls(pc_admin, "/orders")] == [
        f"/v1/customers/{pc_customer}/orders"
    ]
    assert {o.provider for o in orders} == {"partner_center"}


async def test_windows_on_creation_date_and_keeps_in_flight_orders_in_view(
    pc_sim: PcSimulator, pc_admin: PcAdmin, pc_customer: str, session: aiohttp.ClientSession
) -> None:
    old_pending = await pc_admin.create_order(
        pc_customer, {"status": "pending", "creationDate": "2026-01-05T08:00:00.0000000Z"}
    )
    old_done = await pc_admin.create_order(
        pc_customer, {"status": "completed", "creationDate": "2026-01-06T08:00:00.0000000Z"}
    )
    adapter = make_adapter(pc_sim, session)
    since = SIM_NOW - timedelta(days=30)

    first = by_id(await adapter.fetch_orders(pc_customer, since=since))
    await pc_admin.patch_order(pc_customer, old_pending["id"], {"status": "completed"})
    await pc_admin.set_provisioning(pc_customer, old_pending["id"], {"0": "fulfilled"})
    second = by_id(await adapter.fetch_orders(pc_customer, since=since))
    third = by_id(await adapter.fetch_orders(pc_customer, since=since))

    assert old_pending["id"] in first
    assert old_done["id"] not in first
    assert second[old_pending["id"]].status is OrderStatus.COMPLETED
    assert old_pending["id"] not in third
    assert len(third) == len(pc_sim.state.stored(pc_customer)) - 2
    assert old_done["id"] in by_id(await adapter.fetch_orders(pc_customer, since=None))


async def test_an_order_not_yet_listed_is_not_removed_and_appears_later(
    pc_sim: PcSimulator,
    pc_admin: PcAdmin,
    pc_customer: str,
    sim_clock: ManualClock,
    session: aiohttp.ClientSession,
) -> None:
    adapter = make_adapter(pc_sim, session)
    before = await adapter.fetch_orders(pc_customer, since=None)
    created = await pc_admin.create_order(pc_customer, {"status": "pending"})

    lagging = await adapter.fetch_orders(pc_customer, since=None)
    sim_clock.advance(121)
    listed = await adapter.fetch_orders(pc_customer, since=None)

    assert created["id"] not in by_id(lagging)
    assert changes(before, lagging) == []
    assert changes(lagging, listed) == [("order.created", None, "partner_center.order.created")]


async def test_a_remembered_in_flight_order_missing_from_the_list_is_read_by_id(
    pc_sim: PcSimulator, pc_admin: PcAdmin, pc_customer: str, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(pc_sim, session)
    [order_id, *_] = pending_ids(pc_sim, pc_customer)
    await adapter.fetch_orders(pc_customer, since=SIM_NOW)
    await pc_admin.patch_order(pc_customer, order_id, {"listed": False, "status": "completed"})
    await pc_admin.clear_requests()

    orders = by_id(await adapter.fetch_orders(pc_customer, since=SIM_NOW))

    assert orders[order_id].status is OrderStatus.COMPLETED
    assert len(await calls(pc_admin, f"/orders/{order_id}")) == 1


async def test_provisioning_is_asked_only_for_orders_not_fully_provisioned(
    pc_sim: PcSimulator, pc_admin: PcAdmin, pc_customer: str, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(pc_sim, session)
    await adapter.fetch_orders(pc_customer, since=None)
    first = await calls(pc_admin, "/provisioningstatus")
    await pc_admin.clear_requests()

    orders = by_id(await adapter.fetch_orders(pc_customer, since=None))
    second = await calls(pc_admin, "/provisioningstatus")

    assert len(first) == len(pc_sim.state.stored(pc_customer))
    pending = pending_ids(pc_sim, pc_customer)
    assert sorted(c["path_qs"].split("/")[5] for c in second) == sorted(pending)
    assert all(c["status"] == 200 for c in first + second)  # the app+user token is accepted
    assert {line.provisioning for oid in pending for line in orders[oid].line_items} == {
        Provisioning.PENDING
    }
    settled = [o for oid, o in orders.items() if oid not in pending]
    assert {line.provisioning_raw for o in settled for line in o.line_items} == {"fulfilled"}


async def test_without_a_refresh_token_orders_are_listed_and_provisioning_skipped(
    pc_sim: PcSimulator,
    pc_admin: PcAdmin,
    pc_customer: str,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="watcher.providers.partner_center"):
        adapter = make_adapter(pc_sim, session, refresh_token=None)
        orders = await adapter.fetch_orders(pc_customer, since=None)
        await adapter.fetch_orders(pc_customer, since=None)

    assert len(orders) == len(pc_sim.state.stored(pc_customer))
    assert {line.provisioning for o in orders for line in o.line_items} == {Provisioning.PENDING}
    assert await calls(pc_admin, "/provisioningstatus") == []
    assert await token_calls(pc_admin) == 1
    assert sum("provisioning status is skipped" in r.getMessage() for r in caplog.records) == 1


async def test_both_tokens_are_reused_then_refreshed_when_they_expire(
    pc_sim: PcSimulator,
    pc_admin: PcAdmin,
    pc_customer: str,
    sim_clock: ManualClock,
    session: aiohttp.ClientSession,
) -> None:
    clock = FakeMonotonic()
    adapter = make_adapter(pc_sim, session, clock=clock)
    await adapter.fetch_orders(pc_customer, since=None)
    await adapter.fetch_orders(pc_customer, since=None)
    assert await token_calls(pc_admin) == 2  # one app-only, one app+user

    clock.now += 3500
    sim_clock.advance(3500)
    await adapter.fetch_orders(pc_customer, since=None)

    assert await token_calls(pc_admin) == 4
    assert all(c["status"] == 200 for c in await calls(pc_admin))


async def test_a_server_error_is_retried_with_fresh_trace_ids(
    pc_sim: PcSimulator, pc_admin: PcAdmin, pc_customer: str, session: aiohttp.ClientSession
) -> None:
    await pc_admin.fault(kind="status", status=500)
    adapter = make_adapter(pc_sim, session)

    await adapter.fetch_orders(pc_customer, since=None)
    await adapter.fetch_orders(pc_customer, since=None)

    entries = await calls(pc_admin)
    assert entries[0]["status"] == 500
    assert all(e["status"] == 200 for e in entries[1:])
    headers = [e["headers"] for e in entries]
    assert all(h["MS-RequestId"] and h["MS-CorrelationId"] for h in headers)
    assert len({h["MS-RequestId"] for h in headers}) == len(entries)
    assert len({h["MS-CorrelationId"] for h in headers}) == len(entries)


@pytest.mark.parametrize(
    ("kind", "path_contains"),
    [
        ("malformed", "/orders"),
        ("truncated", "/orders"),
        ("truncated", "/provisioningstatus"),
    ],
)
async def test_malformed_or_partial_replies_give_no_orders(
    pc_sim: PcSimulator,
    pc_admin: PcAdmin,
    pc_customer: str,
    session: aiohttp.ClientSession,
    *,
    kind: str,
    path_contains: str,
) -> None:
    await pc_admin.fault(kind=kind, path_contains=path_contains)
    adapter = make_adapter(pc_sim, session, attempts=1)

    with pytest.raises(MalformedReplyError) as caught:
        await adapter.fetch_orders(pc_customer, since=None)

    assert pc_customer in str(caught.value)
    await pc_admin.clear_requests()
    await adapter.fetch_orders(pc_customer, since=None)
    # Nothing was learnt from the failed fetch: every order's provisioning is asked again.
    assert len(await calls(pc_admin, "/provisioningstatus")) == len(
        pc_sim.state.stored(pc_customer)
    )


@pytest.mark.parametrize(
    ("secret", "refresh_token"),
    [("wrong-secret-123", REFRESH_TOKEN), (CLIENT_SECRET, "stale-refresh-456")],
)
async def test_refused_credentials_are_permanent_and_never_quoted(
    pc_sim: PcSimulator,
    pc_customer: str,
    session: aiohttp.ClientSession,
    secret: str,
    refresh_token: str,
) -> None:
    adapter = make_adapter(pc_sim, session, secret=secret, refresh_token=refresh_token)

    with pytest.raises(PermanentProviderError) as caught:
        await adapter.fetch_orders(pc_customer, since=None)

    texts = error_texts(caught.value)
    assert secret not in texts
    assert refresh_token not in texts
    assert "token request" in texts


async def test_access_tokens_never_appear_in_errors(
    pc_sim: PcSimulator, pc_admin: PcAdmin, pc_customer: str, session: aiohttp.ClientSession
) -> None:
    await pc_admin.fault(kind="status", status=403, path_contains="/orders")
    adapter = make_adapter(pc_sim, session)

    with pytest.raises(PermanentProviderError) as caught:
        await adapter.fetch_orders(pc_customer, since=None)

    texts = error_texts(caught.value)
    assert "HTTP 403" in texts
    assert pc_sim.state.issued_tokens()
    for token in pc_sim.state.issued_tokens():
        assert token not in texts
    assert CLIENT_SECRET not in texts
    assert REFRESH_TOKEN not in texts
