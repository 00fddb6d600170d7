"""The Elastic Path Commerce Cloud adapter.

Pure parts as literal tables: status, payment and fulfilment mapping, the listing filter
and its timestamps, reply parsing. Then the adapter against the Elastic Path simulator over
real sockets on 127.0.0.1: paging, customer and account filters, incremental listing with
the overlap (read back from the request log), tokens refreshed before expiry, unreadable
replies, the 10,000 offset cap, the vendor's error text quoted without secrets, and the
typed events that status, payment, shipping and quantity changes raise once reconciled.
What every adapter does alike is in test_vendor_contract.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiohttp
import pytest
from pydantic import SecretStr

from tests import doubles
from tests.doubles import FakeMonotonic, RecordingSleep, error_texts
from tests.plugins.elastic_path import (
    EP_ACCOUNT,
    EP_CUSTOMERS,
    EP_OPEN_ORDERS,
    EP_ORDERS_PER_OWNER,
    EpAdmin,
    EpSimulator,
)
from tests.plugins.simulator import SIM_NOW, ManualClock
from watcher.core import events, sync
from watcher.core.errors import (
    MalformedReplyError,
    PermanentProviderError,
    TransientProviderError,
)
from watcher.core.models import Order, OrderStatus, Provisioning
from watcher.core.ports import Provider, Snapshot
from watcher.providers.elastic_path import adapter as elastic_path
from watcher.providers.elastic_path import mapping, replies
from watcher.settings import (
    AuthSettings,
)
from watcher.simulator.elastic_path.world import CLIENT_ID, CLIENT_SECRET
from watcher.vendors import ElasticPathOptions

CUSTOMER = EP_CUSTOMERS[0]


# --- mapping -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("incomplete", OrderStatus.PENDING),
        ("processing", OrderStatus.PROCESSING),
        ("complete", OrderStatus.COMPLETED),
        ("cancelled", OrderStatus.CANCELLED),
        (" Complete ", OrderStatus.COMPLETED),
        ("completed", OrderStatus.UNKNOWN),
        ("", OrderStatus.UNKNOWN),
    ],
)
def test_status_mapping(raw: str, expected: OrderStatus) -> None:
    assert mapping.status(raw) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("unfulfilled", Provisioning.PENDING),
        ("fulfilled", Provisioning.PROVISIONED),
        ("partially_fulfilled", Provisioning.UNKNOWN),
        ("", Provisioning.UNKNOWN),
    ],
)
def test_fulfilment_mapping(raw: str, expected: Provisioning) -> None:
    assert mapping.fulfilment(raw) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("paid", "paid"), ("Partially_Authorized ", "partially_authorized"), ("", None)],
)
def test_payment_mapping(raw: str, expected: str | None) -> None:
    assert mapping.payment(raw) == expected


T0 = datetime(2026, 11, 20, 10, 0, 0, 250_000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("owner", "since", "changed_since", "expected"),
    [
        ("customer_id", None, None, "eq(customer_id,c1)"),
        ("customer_id", T0, None, "eq(customer_id,c1):ge(created_at,2026-11-20T10:00:00.250Z)"),
        ("account_id", T0, T0, "eq(account_id,c1):ge(updated_at,2026-11-20T09:55:00.250Z)"),
        ("customer_id", None, T0, "eq(customer_id,c1):ge(updated_at,2026-11-20T09:55:00.250Z)"),
    ],
)
def test_order_filter(
    owner: str, since: datetime | None, changed_since: datetime | None, expected: str
) -> None:
    query = elastic_path.order_filter(
        owner, "c1", since=since, changed_since=changed_since, overlap_s=300
    )
    assert query == expected


def test_filter_time_converts_to_utc() -> None:
    plus_two = datetime(2026, 11, 20, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert elastic_path.filter_time(plus_two) == "2026-11-20T12:00:00.000Z"


def vendor_order(**fields: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "type": "order",
        "id": "o-1",
        "status": "processing",
        "payment": "Paid",
        "shipping": "unfulfilled",
        "external_ref": "PO-1",
        "meta": {"timestamps": {"created_at": "2023-07-11T21:25:18.715Z"}},
        "relationships": {
            "items": {
                "data": [
                    {"type": "item", "id": "i-1"},
                    {"type": "shipping_group", "id": "sg-1"},
                ]
            }
        },
    }
    return order | fields


def test_maps_an_order_with_items_included_inside_it() -> None:
    item = {"type": "order_item", "id": "i-1", "quantity": 3, "sku": "SKU-1"}
    document = {
        "data": [vendor_order(included={"items": [item]})],
        "meta": {"results": {"total": 1}},
    }

    page = replies.parse_page(document, what="test")
    [vendor] = page.data
    order = mapping.to_order(vendor, [page.included_items()["i-1"]], source="ep", customer_id="c1")

    assert vendor.item_ids() == ["i-1"]
    assert (order.status, order.status_raw) == (OrderStatus.PROCESSING, "processing")
    assert (order.payment, order.payment_raw) == ("paid", "Paid")
    assert (order.fulfilment, order.fulfilment_raw) == (Provisioning.PENDING, "unfulfilled")
    assert order.created_at == datetime(2023, 7, 11, 21, 25, 18, 715_000, tzinfo=UTC)
    assert order.reference == "PO-1"
    [line] = order.line_items
    assert (line.key, line.offer, line.quantity) == ("i-1", "SKU-1", 3)
    assert (line.status, line.status_raw, line.provisioning) == (
        OrderStatus.UNKNOWN,
        "",
        Provisioning.UNKNOWN,
    )


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"meta": {"results": {"total": 1}}}, "data: Field required"),
        ({"data": [], "meta": {}}, "meta.results: Field required"),
        ({"data": [vendor_order(payment=None)], "meta": {"results": {"total": 1}}}, "payment"),
    ],
)
def test_partial_replies_are_malformed(document: Any, message: str) -> None:
    with pytest.raises(MalformedReplyError, match=message):
        replies.parse_page(document, what="test")


# --- against the simulator -------------------------------------------------------------


def make_adapter(
    sim: EpSimulator,
    session: aiohttp.ClientSession,
    *,
    sleep: RecordingSleep | None = None,
    clock: FakeMonotonic | None = None,
    secret: str = CLIENT_SECRET,
    page_size: int = 2,
    attempts: int = 3,
    customer_filter: str = "customer_id",
) -> Provider:
    source = doubles.sim_source(
        "ep-test",
        "elastic_path",
        base_url=sim.base_url,
        customer=CUSTOMER,
        auth=AuthSettings(client_id=CLIENT_ID, client_secret=SecretStr(secret)),
        attempts=attempts,
        page_size=page_size,
        options=ElasticPathOptions(customer_filter=customer_filter),
    )
    return doubles.sim_adapter(source, session, sleep=sleep, clock=clock)


async def api_calls(admin: EpAdmin) -> list[dict[str, Any]]:
    entries = await admin.requests()
    return [e | {"path_qs": unquote(e["path_qs"])} for e in entries if "/v2/" in e["path_qs"]]


async def token_calls(admin: EpAdmin) -> int:
    return sum(e["path_qs"] == elastic_path.TOKEN_PATH for e in await admin.requests())


async def test_pages_through_every_order_with_items(
    ep_sim: EpSimulator, ep_admin: EpAdmin, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(ep_sim, session, page_size=2)

    orders = await adapter.fetch_orders(CUSTOMER, since=None)

    expected = [o for o in ep_sim.state.all_orders() if o.customer_id == CUSTOMER]
    assert [order.order_id for order in orders] == [o.id for o in expected]
    for order, stored in zip(orders, expected, strict=True):
        assert order.customer_id == CUSTOMER
        assert [(line.key, line.offer, line.quantity) for line in order.line_items] == [
            (item.id, item.sku, item.quantity) for item in stored.items
        ]
    calls = await api_calls(ep_admin)
    assert [c["status"] for c in calls] == [200, 200, 200]
    for call, offset in zip(calls, (0, 2, 4), strict=True):
        assert f"page[offset]={offset}" in call["path_qs"]
        assert "page[limit]=2" in call["path_qs"]
        assert "sort=created_at" in call["path_qs"]
        assert "include=items" in call["path_qs"]
        assert f"filter=eq(customer_id,{CUSTOMER})&" in call["path_qs"]


async def test_filters_by_account(
    ep_sim: EpSimulator, ep_admin: EpAdmin, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(ep_sim, session, customer_filter="account_id", page_size=100)

    orders = await adapter.fetch_orders(EP_ACCOUNT, since=None)

    assert len(orders) == EP_ORDERS_PER_OWNER
    assert {o.order_id for o in orders} == {
        o.id for o in ep_sim.state.all_orders() if o.account_id == EP_ACCOUNT
    }
    [call] = await api_calls(ep_admin)
    assert f"filter=eq(account_id,{EP_ACCOUNT})&" in call["path_qs"]


async def test_windowed_listing_filters_by_creation(
    ep_sim: EpSimulator, ep_admin: EpAdmin, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(ep_sim, session, page_size=100)
    since = SIM_NOW - timedelta(days=2)

    orders = await adapter.fetch_orders(CUSTOMER, since=since)

    expected = {
        o.id
        for o in ep_sim.state.all_orders()
        if o.customer_id == CUSTOMER and o.created_at >= since
    }
    assert {o.order_id for o in orders} == expected
    assert 0 < len(expected) < EP_ORDERS_PER_OWNER
    [call] = await api_calls(ep_admin)
    assert ":ge(created_at,2026-11-18T10:00:00.000Z)" in call["path_qs"]


async def test_incremental_listing_asks_by_update_time_with_the_overlap(
    ep_sim: EpSimulator,
    ep_admin: EpAdmin,
    sim_clock: ManualClock,
    session: aiohttp.ClientSession,
) -> None:
    adapter = make_adapter(ep_sim, session, page_size=100)
    last_success = SIM_NOW
    sim_clock.advance(60)
    await ep_admin.patch_order(EP_OPEN_ORDERS[0], {"payment": "paid"})

    orders = await adapter.fetch_orders(
        CUSTOMER, since=SIM_NOW - timedelta(days=30), changed_since=last_success
    )

    assert [o.order_id for o in orders] == [EP_OPEN_ORDERS[0]]
    assert orders[0].payment == "paid"
    [call] = await api_calls(ep_admin)
    assert ":ge(updated_at,2026-11-20T09:55:00.000Z)&" in call["path_qs"]
    assert "created_at)" not in call["path_qs"].split("sort=")[1]


async def test_refreshes_the_token_before_it_expires(
    ep_sim: EpSimulator,
    ep_admin: EpAdmin,
    sim_clock: ManualClock,
    session: aiohttp.ClientSession,
) -> None:
    clock = FakeMonotonic()
    adapter = make_adapter(ep_sim, session, clock=clock, page_size=100)
    await adapter.fetch_orders(CUSTOMER, since=None)
    clock.advance(3000)
    sim_clock.advance(3000)
    await adapter.fetch_orders(CUSTOMER, since=None)
    assert await token_calls(ep_admin) == 1

    # Inside the last 180 s of the hour: a new token before the vendor refuses the old one.
    clock.advance(500)
    sim_clock.advance(500)
    await adapter.fetch_orders(CUSTOMER, since=None)

    assert await token_calls(ep_admin) == 2
    assert [c["status"] for c in await api_calls(ep_admin)] == [200, 200, 200]


async def test_a_token_refused_after_a_refresh_is_permanent_and_never_quoted(
    ep_sim: EpSimulator, ep_admin: EpAdmin, session: aiohttp.ClientSession
) -> None:
    await ep_admin.fault(kind="status", status=401, count=-1)
    adapter = make_adapter(ep_sim, session)

    with pytest.raises(PermanentProviderError, match="refused again after a token refresh") as e:
        await adapter.fetch_orders(CUSTOMER, since=None)

    assert "(Unable to validate access token)" in str(e.value)
    texts = error_texts(e.value)
    assert CLIENT_SECRET not in texts
    for token in ep_sim.state.issued_tokens():
        assert token not in texts


async def test_a_page_failing_midway_fails_the_fetch_and_quotes_the_vendor(
    ep_sim: EpSimulator, ep_admin: EpAdmin, session: aiohttp.ClientSession
) -> None:
    await ep_admin.fault(kind="status", status=500, count=-1, path_contains="offset%5D=2")
    adapter = make_adapter(ep_sim, session, page_size=2, attempts=2)

    with pytest.raises(TransientProviderError, match="HTTP 500") as caught:
        await adapter.fetch_orders(CUSTOMER, since=None)

    assert f"customer {CUSTOMER}" in str(caught.value)
    assert "(There was an internal server error" in str(caught.value)
    calls = await api_calls(ep_admin)
    assert [c["status"] for c in calls] == [200, 500, 500]
    assert not any("page[offset]=4" in c["path_qs"] for c in calls)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("malformed", "the reply is not valid JSON"),
        ("truncated", "unexpected reply shape: data: Field required"),
    ],
)
async def test_unreadable_replies_raise_malformed_reply(
    ep_sim: EpSimulator,
    ep_admin: EpAdmin,
    session: aiohttp.ClientSession,
    kind: str,
    message: str,
) -> None:
    await ep_admin.fault(kind=kind, count=-1)
    sleep = RecordingSleep()
    adapter = make_adapter(ep_sim, session, sleep=sleep, attempts=2)

    with pytest.raises(MalformedReplyError, match=message) as caught:
        await adapter.fetch_orders(CUSTOMER, since=None)

    assert f"customer {CUSTOMER}" in str(caught.value)
    assert len(sleep.delays) == 1


def capped(adapter: Provider, sim: EpSimulator, cap: int) -> elastic_path.ElasticPath:
    """The adapter and the simulated store, both with an offset cap of `cap`."""
    assert isinstance(adapter, elastic_path.ElasticPath)
    adapter.offset_cap = sim.state.offset_cap = cap
    return adapter


async def test_a_listing_past_the_offset_cap_goes_on_from_the_last_created_at(
    ep_sim: EpSimulator, ep_admin: EpAdmin, session: aiohttp.ClientSession, sim_clock: ManualClock
) -> None:
    for _ in range(12):  # pairs created in the same millisecond, so resuming re-reads some
        sim_clock.advance(0.0005)
        ep_sim.state.create_order({"customer_id": CUSTOMER})
        ep_sim.state.create_order({"customer_id": CUSTOMER})
    adapter = capped(make_adapter(ep_sim, session, page_size=4), ep_sim, cap=6)

    orders = await adapter.fetch_orders(CUSTOMER, since=None)

    expected = [o.id for o in ep_sim.state.all_orders() if o.customer_id == CUSTOMER]
    assert len(expected) == EP_ORDERS_PER_OWNER + 24
    assert sorted(order.order_id for order in orders) == sorted(expected)
    queries = [parse_qs(urlsplit(call["path_qs"]).query) for call in await api_calls(ep_admin)]
    assert all(int(query["page[offset]"][0]) <= 6 for query in queries)
    resumed = [q["filter"][0] for q in queries if "ge(created_at" in q["filter"][0]]
    assert resumed, "the listing never went past the cap"
    assert len(queries) <= len(expected) // 4 + len(resumed) + 2


async def test_more_orders_than_the_offset_cap_in_one_millisecond_is_a_permanent_error(
    ep_sim: EpSimulator, ep_admin: EpAdmin, session: aiohttp.ClientSession
) -> None:
    for _ in range(10):
        ep_sim.state.create_order({"customer_id": CUSTOMER})
    adapter = capped(make_adapter(ep_sim, session, page_size=4), ep_sim, cap=6)

    with pytest.raises(PermanentProviderError, match="more than 6 orders") as caught:
        await adapter.fetch_orders(CUSTOMER, since=None)

    assert "within one millisecond" in str(caught.value)
    assert f"eq(customer_id,{CUSTOMER})" in str(caught.value)
    assert all(call["status"] == 200 for call in await api_calls(ep_admin))


async def test_a_bad_client_secret_is_permanent_and_never_quoted(
    ep_sim: EpSimulator, ep_admin: EpAdmin, session: aiohttp.ClientSession
) -> None:
    sleep = RecordingSleep()
    adapter = make_adapter(ep_sim, session, sleep=sleep, secret="wrong-secret-0xdeadbeef")

    with pytest.raises(PermanentProviderError, match="HTTP 401") as caught:
        await adapter.fetch_orders(CUSTOMER, since=None)

    assert "wrong-secret-0xdeadbeef" not in error_texts(caught.value)
    assert sleep.delays == []
    assert await api_calls(ep_admin) == []


async def test_a_customer_id_that_would_break_the_filter_is_refused(
    ep_sim: EpSimulator, ep_admin: EpAdmin, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(ep_sim, session)

    with pytest.raises(PermanentProviderError, match="cannot be used in a filter"):
        await adapter.fetch_orders("c1):eq(status,complete", since=None)

    assert await ep_admin.requests() == []


# --- changes become typed events --------------------------------------------------------


def routed(before: list[Order], after: list[Order]) -> list[tuple[str, str | None]]:
    """The (routing key, line key) of each event `after` raises against `before`."""
    stored = {order.order_id: Snapshot(order=order, sequence=1) for order in before}
    result = sync.reconcile(after, stored, baseline=False, now=SIM_NOW)
    return [(events.routing_key(event), event.affected_line()) for event in result.events]


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"payment": "paid"}, "elastic_path.order.payment_changed.paid"),
        ({"shipping": "fulfilled"}, "elastic_path.order.provisioning_changed.provisioned"),
        ({"status": "cancelled"}, "elastic_path.order.status_changed.cancelled"),
    ],
)
async def test_each_field_raises_its_own_event(
    ep_sim: EpSimulator,
    ep_admin: EpAdmin,
    session: aiohttp.ClientSession,
    patch: dict[str, str],
    expected: str,
) -> None:
    adapter = make_adapter(ep_sim, session, page_size=100)
    before = await adapter.fetch_orders(CUSTOMER, since=None)
    await ep_admin.patch_order(EP_OPEN_ORDERS[0], patch)
    after = await adapter.fetch_orders(CUSTOMER, since=None)

    keys = [key for key, line in routed(before, after) if line is None]

    assert keys == [expected]


async def test_completing_an_order_raises_typed_events(
    ep_sim: EpSimulator, ep_admin: EpAdmin, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(ep_sim, session, page_size=100)
    await ep_admin.patch_order(EP_OPEN_ORDERS[0], {"status": "processing", "payment": "paid"})
    before = await adapter.fetch_orders(CUSTOMER, since=None)
    await ep_admin.patch_order(EP_OPEN_ORDERS[0], {"status": "complete", "shipping": "fulfilled"})
    after = await adapter.fetch_orders(CUSTOMER, since=None)

    stored = {o.order_id: Snapshot(order=o, sequence=1) for o in before}
    result = sync.reconcile(after, stored, baseline=False, now=SIM_NOW)
    order_events = [e for e in result.events if e.affected_line() is None]

    assert {type(e) for e in order_events} == {
        events.ProvisioningChanged,
        events.OrderStatusChanged,
    }
    assert {events.routing_key(e) for e in order_events} == {
        "elastic_path.order.status_changed.completed",
        "elastic_path.order.provisioning_changed.provisioned",
    }
    assert [e for e in result.events if e.affected_line() is not None] == [], "no per-line echo"


async def test_a_quantity_change_raises_a_line_event(
    ep_sim: EpSimulator, ep_admin: EpAdmin, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(ep_sim, session, page_size=100)
    before = await adapter.fetch_orders(CUSTOMER, since=None)
    [item] = ep_sim.state.stored(EP_OPEN_ORDERS[0]).items
    await ep_admin.patch_order(
        EP_OPEN_ORDERS[0], {"items": [{"id": item.id, "quantity": item.quantity + 3}]}
    )
    after = await adapter.fetch_orders(CUSTOMER, since=None)

    assert routed(before, after) == [("elastic_path.order.line_item.quantity_changed", item.id)]
