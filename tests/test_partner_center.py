"""The Partner Center adapter: mapping tables, reply parsing, then the adapter against the
simulator over real sockets: the whole collection in one call, the local creationDate
window with in-flight orders kept, the listing lag, provisioningstatus only where needed
and with app+user tokens, both token grants, faults, trace headers, and the typed events
(and routing keys) that every status and provisioning transition produces. What every
adapter does alike is in test_vendor_contract.py.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import aiohttp
import pytest
from pydantic import SecretStr

from tests import doubles
from tests.doubles import FakeMonotonic, RecordingSleep, error_texts
from tests.plugins.partner_center import PcAdmin, PcSimulator
from tests.plugins.simulator import SIM_NOW, ManualClock
from watcher.core import events, sync
from watcher.core.errors import ConfigError, MalformedReplyError, PermanentProviderError
from watcher.core.models import Order, OrderStatus, Provisioning
from watcher.core.ports import Provider, Snapshot
from watcher.providers import connect
from watcher.providers.partner_center import mapping, replies
from watcher.settings import (
    AuthSettings,
    SourceSettings,
)
from watcher.simulator.partner_center.routes import TOKEN_PATH
from watcher.simulator.partner_center.world import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN
from watcher.vendors import PartnerCenterOptions, named

pytestmark = pytest.mark.timeout(10)


# --- mapping and parsing -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("pending", OrderStatus.PENDING),
        ("completed", OrderStatus.COMPLETED),
        ("cancelled", OrderStatus.CANCELLED),
        ("Completed", OrderStatus.COMPLETED),
        ("unknown", OrderStatus.UNKNOWN),
        ("refunded", OrderStatus.UNKNOWN),
        ("", OrderStatus.UNKNOWN),
    ],
)
def test_status_mapping(raw: str, expected: OrderStatus) -> None:
    assert mapping.status(raw) is expected


@pytest.mark.parametrize(
    ("raw", "expected", "final"),
    [
        ("fulfilled", Provisioning.PROVISIONED, True),
        ("Fulfilled", Provisioning.PROVISIONED, True),
        ("unfulfilled", Provisioning.CANCELLED, True),
        ("prefulfillmentPending", Provisioning.PENDING, False),
        ("PrefulfillmentPending", Provisioning.PENDING, False),
        ("partiallyFulfilled", Provisioning.UNKNOWN, False),
    ],
)
def test_provisioning_mapping(raw: str, expected: Provisioning, final: bool) -> None:
    assert mapping.provisioning(raw) is expected
    assert mapping.settled(raw) is final


SAMPLE = {
    "id": "YxH1q4KScfvfkJQjgRI8QY1DznnUWZTH1",
    "referenceCustomerId": "b0d70a69-4c42-4b27-b17b-91a835d8686a",
    "billingCycle": "one_time",
    "currencyCode": "USD",
    "lineItems": [
        {"lineItemNumber": 0, "offerId": "DZH318Z0BQ4Z:002L:DZH318Z0CMNP", "quantity": 1}
    ],
    "creationDate": "2018-03-13T22:49:54.3396949Z",
    "status": "completed",
    "links": {"provisioningStatus": {"uri": "/customers/b/orders/Y/provisioningstatus"}},
    "attributes": {"objectType": "Order"},
}


def test_the_documented_sample_maps_with_known_and_unknown_provisioning() -> None:
    item = replies.parse_order(SAMPLE, what="test")
    order = mapping.to_order(item, source="pc", customer_id="b0d7", provisioning_raw={})
    assert item.provisioning_populated
    assert (order.order_id, order.status, order.status_raw) == (
        SAMPLE["id"],
        "completed",
        "completed",
    )
    assert order.created_at == datetime.fromisoformat("2018-03-13T22:49:54.339694+00:00")
    [line] = order.line_items
    assert (line.key, line.quantity, line.subscription_id) == ("0", 1, None)
    assert (line.status, line.status_raw) == (OrderStatus.UNKNOWN, "")
    assert (line.provisioning, line.provisioning_raw) == (Provisioning.PENDING, "")
    known = mapping.to_order(
        item, source="pc", customer_id="b", provisioning_raw={"0": "Fulfilled"}
    )
    assert (known.line_items[0].provisioning, known.line_items[0].provisioning_raw) == (
        Provisioning.PROVISIONED,
        "Fulfilled",
    )


@pytest.mark.parametrize(
    ("document", "mentions"),
    [
        ({"totalCount": 0}, "items"),
        ({"items": [{"status": "pending"}]}, "items.0.id"),
        ({"items": [{k: v for k, v in SAMPLE.items() if k != "lineItems"}]}, "lineItems"),
        ({"items": [SAMPLE | {"creationDate": "yesterday"}]}, "creationDate"),
        ([], "(document)"),
    ],
)
def test_wrong_collection_shapes_are_malformed(document: Any, mentions: str) -> None:
    with pytest.raises(MalformedReplyError, match="unexpected reply shape") as caught:
        replies.parse_collection(document, what="test")
    assert mentions in str(caught.value)


def test_a_source_without_token_url_is_a_config_error() -> None:
    source = SourceSettings(
        name="pc", provider="partner_center", base_url="http://127.0.0.1:1", customers=["c"]
    )
    with pytest.raises(ConfigError, match="token_url"):
        connect.adapter(source, cast(aiohttp.ClientSession, None))


def test_the_default_rate_limit_is_500_requests_a_minute() -> None:
    assert pytest.approx(500) == named("partner_center").rate_per_s * 60


# --- against the simulator -----------------------------------------------------------------


def make_adapter(
    sim: PcSimulator,
    session: aiohttp.ClientSession,
    *,
    sleep: RecordingSleep | None = None,
    clock: FakeMonotonic | None = None,
    secret: str = CLIENT_SECRET,
    refresh_token: str | None = REFRESH_TOKEN,
    attempts: int = 3,
) -> Provider:
    clock = clock or FakeMonotonic()
    auth = AuthSettings(
        token_url=sim.token_url,
        client_id=CLIENT_ID,
        client_secret=SecretStr(secret),
        refresh_token=SecretStr(refresh_token) if refresh_token is not None else None,
    )
    source = doubles.sim_source(
        "pc-test",
        "partner_center",
        base_url=sim.base_url,
        customer="c",
        auth=auth,
        attempts=attempts,
        options=PartnerCenterOptions(provisioning=True),
    )
    return connect.adapter(
        source,
        session,
        sleep=(sleep or RecordingSleep()).on(clock),
        rng=random.Random(3),
        clock=clock,
    )


def by_id(orders: Sequence[Order]) -> dict[str, Order]:
    return {order.order_id: order for order in orders}


async def calls(admin: PcAdmin, suffix: str = "") -> list[dict[str, Any]]:
    entries = await admin.requests()
    return [e for e in entries if e["path_qs"].startswith("/v1/") and e["path_qs"].endswith(suffix)]


async def token_calls(admin: PcAdmin) -> int:
    return sum(entry["path_qs"] == TOKEN_PATH for entry in await admin.requests())


def pending_ids(sim: PcSimulator, customer: str) -> list[str]:
    return [s.payload["id"] for s in sim.state.stored(customer) if s.payload["status"] == "pending"]


def changes(before: Sequence[Order], after: Sequence[Order]) -> list[tuple[str, str | None, str]]:
    """(type, line key, routing key) of the events reconcile makes of two fetches."""
    stored = {order.order_id: Snapshot(order=order, sequence=1) for order in before}
    result = sync.reconcile(after, stored, baseline=False, now=SIM_NOW)
    return [(e.type, e.affected_line(), events.routing_key(e)) for e in result.events]


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


# --- transitions -> typed events ------------------------------------------------------------

PC = "partner_center.order"


async def test_completion_subscription_ids_and_fulfilment_raise_their_events(
    pc_sim: PcSimulator, pc_admin: PcAdmin, pc_customer: str, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(pc_sim, session)
    lines = [{"quantity": 3}, {"quantity": 5}]
    order = await pc_admin.create_order(
        pc_customer, {"status": "pending", "lineItems": lines, "listingLagS": 0}
    )
    oid = order["id"]
    start = await adapter.fetch_orders(pc_customer, since=None)

    patch = {"status": "completed", "lineItems": [{"lineItemNumber": 0, "subscriptionId": "s-0"}]}
    await pc_admin.patch_order(pc_customer, oid, patch)
    completed = await adapter.fetch_orders(pc_customer, since=None)
    await pc_admin.set_provisioning(pc_customer, oid, {"0": "fulfilled", "1": "unfulfilled"})
    fulfilled = await adapter.fetch_orders(pc_customer, since=None)
    await pc_admin.patch_order(
        pc_customer, oid, {"lineItems": [{"lineItemNumber": 0, "quantity": 4}]}
    )
    resized = await adapter.fetch_orders(pc_customer, since=None)

    assert changes(start, completed) == [
        ("order.provisioning_changed", "0", f"{PC}.provisioning_changed.pending"),
        ("order.status_changed", None, f"{PC}.status_changed.completed"),
    ]
    assert changes(completed, fulfilled) == [
        ("order.provisioning_changed", "0", f"{PC}.provisioning_changed.provisioned"),
        ("order.provisioning_changed", "1", f"{PC}.provisioning_changed.cancelled"),
    ]
    assert changes(fulfilled, resized) == [
        ("order.line_item.quantity_changed", "0", f"{PC}.line_item.quantity_changed")
    ]
    resized_line, fulfilled_line = by_id(resized)[oid].line("0"), by_id(fulfilled)[oid].line("0")
    assert fulfilled_line is not None
    assert resized_line == fulfilled_line.model_copy(update={"quantity": 4})


async def test_a_cancellation_raises_status_and_line_provisioning_events(
    pc_sim: PcSimulator, pc_admin: PcAdmin, pc_customer: str, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(pc_sim, session)
    order = await pc_admin.create_order(pc_customer, {"status": "pending", "listingLagS": 0})
    start = await adapter.fetch_orders(pc_customer, since=None)

    await pc_admin.patch_order(pc_customer, order["id"], {"status": "cancelled"})
    await pc_admin.set_provisioning(pc_customer, order["id"], {"0": "unfulfilled"})
    after = await adapter.fetch_orders(pc_customer, since=None)

    assert changes(start, after) == [
        ("order.provisioning_changed", "0", f"{PC}.provisioning_changed.cancelled"),
        ("order.status_changed", None, f"{PC}.status_changed.cancelled"),
    ]


@pytest.mark.parametrize(
    ("status", "routing"),
    [("unknown", "status_changed.unknown"), ("onHold", "status_changed.unknown")],
)
async def test_unknown_statuses_keep_their_raw_value(
    pc_sim: PcSimulator,
    pc_admin: PcAdmin,
    pc_customer: str,
    session: aiohttp.ClientSession,
    *,
    status: str,
    routing: str,
) -> None:
    adapter = make_adapter(pc_sim, session)
    order = await pc_admin.create_order(pc_customer, {"status": "pending", "listingLagS": 0})
    start = await adapter.fetch_orders(pc_customer, since=None)

    await pc_admin.patch_order(pc_customer, order["id"], {"status": status})
    after = await adapter.fetch_orders(pc_customer, since=None)

    assert changes(start, after) == [("order.status_changed", None, f"{PC}.{routing}")]
    assert by_id(after)[order["id"]].status_raw == status


async def test_unlisted_provisioning_values_are_unknown_with_raw_kept(
    pc_sim: PcSimulator, pc_admin: PcAdmin, pc_customer: str, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(pc_sim, session)
    order = await pc_admin.create_order(pc_customer, {"status": "pending", "listingLagS": 0})
    start = await adapter.fetch_orders(pc_customer, since=None)

    await pc_admin.set_provisioning(pc_customer, order["id"], {"0": "partiallyFulfilled"})
    after = await adapter.fetch_orders(pc_customer, since=None)

    assert changes(start, after) == [
        ("order.provisioning_changed", "0", f"{PC}.provisioning_changed.unknown")
    ]
    assert by_id(after)[order["id"]].line_items[0].provisioning_raw == "partiallyFulfilled"


async def test_a_scenario_step_and_repeated_fetches_raise_nothing_spurious(
    pc_sim: PcSimulator, pc_customer: str, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(pc_sim, session)
    first = await adapter.fetch_orders(pc_customer, since=None)
    again = await adapter.fetch_orders(pc_customer, since=None)
    assert changes(first, again) == []
