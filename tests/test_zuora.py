"""The Zuora Quickstart adapter: mapping tables, error translation, and the adapter against
the Zuora simulator over real sockets on 127.0.0.1.

Covers cursor paging, line items as arrays and as {data, next_page} (continued), the
updated_time window and its fallback, tokens (expiry, revocation), a fresh zuora-track-id
per call, RateLimit-* headers pausing the source's limiter, Zuora's retryable flag,
malformed and partial replies, every order and subscription transition as typed events
with their routing keys, and secrets kept out of errors. What every adapter does alike is
in test_vendor_contract.py.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from pydantic import SecretStr

from tests import doubles
from tests.doubles import error_texts
from tests.plugins.simulator import SIM_NOW, ManualClock
from tests.plugins.zuora import ZUORA_ACCOUNTS, ZuoraAdmin, ZuoraSimulator
from watcher.core import sync
from watcher.core.errors import (
    MalformedReplyError,
    PermanentProviderError,
    TransientProviderError,
)
from watcher.core.models import Order, OrderStatus, Provisioning
from watcher.core.ports import Provider, Snapshot
from watcher.providers import connect, translate
from watcher.providers.reply import Reply
from watcher.providers.zuora import DIALECT, mapping, replies
from watcher.settings import AuthSettings
from watcher.simulator.zuora.world import CLIENT_ID, CLIENT_SECRET

ACCOUNT = ZUORA_ACCOUNTS[0]
NEW_ACCOUNT = "2c92c0f8ffffffffffffffffffffffff"


# --- mapping tables -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("draft", OrderStatus.PENDING),
        ("scheduled", OrderStatus.PENDING),
        ("pending", OrderStatus.PENDING),
        ("executing", OrderStatus.PROCESSING),
        ("complete", OrderStatus.COMPLETED),
        ("completed", OrderStatus.COMPLETED),
        ("failed", OrderStatus.FAILED),
        ("canceled", OrderStatus.CANCELLED),
        ("cancelled", OrderStatus.CANCELLED),
        (None, OrderStatus.UNKNOWN),
        ("archived", OrderStatus.UNKNOWN),
    ],
)
def test_order_state_mapping(raw: str | None, expected: OrderStatus) -> None:
    assert mapping.order_status(raw) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("active", Provisioning.PROVISIONED),
        ("pending_activation", Provisioning.PENDING),
        ("pending_acceptance", Provisioning.PENDING),
        ("draft", Provisioning.PENDING),
        ("canceled", Provisioning.CANCELLED),
        ("expired", Provisioning.CANCELLED),
        ("paused", Provisioning.UNKNOWN),
        ("suspended", Provisioning.UNKNOWN),
        ("", Provisioning.UNKNOWN),
    ],
)
def test_subscription_state_is_line_provisioning(raw: str, expected: Provisioning) -> None:
    assert mapping.subscription_provisioning(raw) is expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ({"state": "canceled", "requires_fulfillment": True}, (Provisioning.CANCELLED, "canceled")),
        ({"requires_fulfillment": False}, (Provisioning.UNKNOWN, "")),
        (
            {"requires_fulfillment": True, "quantity_fulfilled": 1},
            (Provisioning.PENDING, "1/3 fulfilled"),
        ),
        (
            {"requires_fulfillment": True, "quantity_fulfilled": 3},
            (Provisioning.PROVISIONED, "3/3 fulfilled"),
        ),
    ],
)
def test_line_provisioning_follows_fulfilment(
    line: dict[str, Any], expected: tuple[Provisioning, str]
) -> None:
    vendor_line = replies.VendorLine.model_validate({"id": "L1", "quantity": 3} | line)
    assert mapping.line_provisioning(vendor_line) == expected


SEED_ORDER: dict[str, Any] = {
    "id": "8ad09e20858682bc01859fd1633a1de3",
    "created_time": "2023-01-10T23:52:57-08:00",
    "order_number": "O-00021630",
    "line_items": [],
    "subscriptions": [
        {
            "id": "8ad09e20858682bc01859fd164471dea",
            "subscription_number": "A-S00013655",
            "state": "active",
            "actions": [
                {
                    "type": "create",
                    "subscription_plans": [
                        {
                            "subscription_items": [
                                {
                                    "subscription_item_number": "C-00048963",
                                    "quantity": 1,
                                    "state": "active",
                                    "price_id": "8ad09bce8455cd0c01845e8d3c152199",
                                },
                                {
                                    "subscription_item_number": "C-00048961",
                                    "quantity": 1,
                                    "state": "active",
                                    "price_id": "8ad08e0184ade9350184af5bf1f46007",
                                },
                            ]
                        }
                    ],
                }
            ],
        }
    ],
}


def test_the_documented_sample_without_state_and_with_bare_arrays() -> None:
    vendor = replies.VendorOrder.model_validate(SEED_ORDER)
    lines, cursor = mapping.first_lines(vendor)

    order = mapping.to_order(vendor, lines=lines, source="z", customer_id="acc", what="test")

    assert cursor is None
    assert (order.order_id, order.status, order.status_raw) == (
        "O-00021630",
        OrderStatus.UNKNOWN,
        "",
    )
    assert [
        (item.key, item.quantity, item.subscription_id, item.provisioning)
        for item in order.line_items
    ] == [
        ("C-00048963", 1, "A-S00013655", Provisioning.PROVISIONED),
        ("C-00048961", 1, "A-S00013655", Provisioning.PROVISIONED),
    ]


def test_nested_subscription_items_with_a_next_page_are_refused() -> None:
    order = {
        "order_number": "O-1",
        "subscriptions": [
            {
                "subscription_number": "A-S1",
                "subscription_plans": {
                    "data": [{"subscription_items": {"data": [], "next_page": "abc"}}],
                    "next_page": None,
                },
            }
        ],
    }
    vendor = replies.VendorOrder.model_validate(order)
    with pytest.raises(MalformedReplyError, match="subscription_items has a next page"):
        mapping.to_order(vendor, lines=[], source="z", customer_id="acc", what="test")


# --- error translation ----------------------------------------------------------------


def reply(status: int, body: dict[str, Any], **headers: str) -> Reply:
    named = {key.replace("_", "-"): value for key, value in headers.items()}
    return Reply(status=status, headers=named, body=orjson.dumps(body))


def raise_for_status(answer: Reply, *, what: str, reset_s: float | None = None) -> None:
    """The client's status translation, as it runs for Zuora."""
    translate.raise_for_status(
        answer,
        what=what,
        secrets=(),
        read_error=DIALECT.read_error,
        request_id_header=DIALECT.request_id_header,
        reset_s=reset_s,
    )


def conflict(*, retryable: bool) -> dict[str, Any]:
    error = {"code": "lock_competition", "parameter": "id", "message": "Try again"}
    return {"type": "conflict", "errors": [error], "retryable": retryable}


def test_a_retryable_4xx_is_transient_and_quotes_code_message_and_request_id() -> None:
    with pytest.raises(TransientProviderError) as caught:
        raise_for_status(reply(409, conflict(retryable=True), zuora_request_id="rid-1"), what="w")
    assert str(caught.value) == (
        "w: HTTP 409 (conflict: code lock_competition: Try again; parameter id) "
        "[zuora-request-id rid-1]"
    )


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (409, conflict(retryable=False), PermanentProviderError),
        (400, {"type": "bad_request", "errors": [], "retryable": False}, translate.BadRequest),
        (401, {"type": "unauthorized", "errors": [], "retryable": False}, translate.Unauthorized),
        (404, {"type": "not_found", "errors": []}, PermanentProviderError),
        (500, {"type": "internal_server_error", "errors": []}, TransientProviderError),
        (
            503,
            {"type": "service_unavailable", "errors": [], "retryable": False},
            TransientProviderError,
        ),
    ],
)
def test_error_classification(status: int, body: dict[str, Any], kind: type[Exception]) -> None:
    with pytest.raises(kind):
        raise_for_status(reply(status, body), what="w")


def test_a_429_waits_for_the_rate_limit_reset() -> None:
    with pytest.raises(TransientProviderError) as caught:
        raise_for_status(
            reply(429, {"type": "too_many_requests", "errors": []}), what="w", reset_s=12.0
        )
    assert caught.value.retry_after_s == 12.0


# --- against the simulator ------------------------------------------------------------


class FakeTime:
    """Injected monotonic clock and sleep: sleeping moves this clock and the simulator's."""

    def __init__(self, sim_clock: ManualClock | None = None) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._sim_clock = sim_clock

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        if self._sim_clock is not None:
            self._sim_clock.advance(seconds)


def make_adapter(
    sim: ZuoraSimulator,
    session: aiohttp.ClientSession,
    *,
    time: FakeTime | None = None,
    secret: str = CLIENT_SECRET,
    page_size: int = 3,
    attempts: int = 3,
) -> Provider:
    source = doubles.sim_source(
        "zuora-test",
        "zuora",
        base_url=sim.base_url + "/v2",
        customer=ACCOUNT,
        auth=AuthSettings(client_id=CLIENT_ID, client_secret=SecretStr(secret)),
        attempts=attempts,
        page_size=page_size,
    )
    time = time or FakeTime()
    return connect.adapter(
        source, session, sleep=time.sleep, rng=random.Random(3), clock=time.clock
    )


async def api_calls(admin: ZuoraAdmin) -> list[dict[str, Any]]:
    return [entry for entry in await admin.requests() if entry["path_qs"].startswith("/v2/")]


async def token_calls(admin: ZuoraAdmin) -> int:
    return sum(entry["path_qs"] == "/oauth/token" for entry in await admin.requests())


async def seed_orders(admin: ZuoraAdmin, count: int) -> list[str]:
    await admin.create_account(NEW_ACCOUNT)
    numbers = []
    for hours in range(count):
        created = (SIM_NOW - timedelta(hours=hours)).isoformat()
        order = await admin.create_order(NEW_ACCOUNT, {"created_time": created})
        numbers.append(order["order_number"])
    return numbers


async def test_cursor_paging_reads_every_page(
    zuora_sim: ZuoraSimulator, zuora_admin: ZuoraAdmin, session: aiohttp.ClientSession
) -> None:
    numbers = await seed_orders(zuora_admin, 7)

    orders = await make_adapter(zuora_sim, session, page_size=3).fetch_orders(
        NEW_ACCOUNT, since=None
    )

    assert [order.order_id for order in orders] == numbers
    calls = await api_calls(zuora_admin)
    assert len(calls) == 3
    assert all(f"account_id.EQ:{NEW_ACCOUNT}" in call["path_qs"] for call in calls)
    assert ["cursor=" in call["path_qs"] for call in calls] == [False, True, True]
    assert all("page_size=3" in call["path_qs"] for call in calls)
    assert all("updated_time" not in call["path_qs"] for call in calls)


async def test_maps_subscriptions_and_lines_of_the_seeded_world(
    zuora_sim: ZuoraSimulator, session: aiohttp.ClientSession
) -> None:
    orders = await make_adapter(zuora_sim, session).fetch_orders(ACCOUNT, since=None)

    by_id = {order.order_id: order for order in orders}
    assert sorted(by_id) == [f"O-0000000{n}" for n in range(1, 6)]
    pending = by_id["O-00000001"]
    assert (pending.status, pending.status_raw) == (OrderStatus.PENDING, "pending")
    assert [(line.key, line.quantity, line.subscription_id) for line in pending.line_items] == [
        ("C-00000001", 42, "A-S00000001"),
        ("C-00000002", 4, "A-S00000001"),
    ]
    assert {(line.provisioning, line.provisioning_raw) for line in pending.line_items} == {
        (Provisioning.PENDING, "pending_activation")
    }
    complete = by_id["O-00000002"]
    one_off, item = complete.line_items
    assert (one_off.status, one_off.provisioning) == (
        OrderStatus.COMPLETED,
        Provisioning.PROVISIONED,
    )
    assert (item.key, item.provisioning) == ("C-00000003", Provisioning.PROVISIONED)


@pytest.mark.parametrize("shape", ["object", "array"])
async def test_line_items_as_a_paged_object_or_as_an_array(
    zuora_sim: ZuoraSimulator,
    zuora_admin: ZuoraAdmin,
    session: aiohttp.ClientSession,
    shape: str,
) -> None:
    lines = [{"product_code": f"SKU-{n}", "quantity": n + 1} for n in range(5)]
    created = await zuora_admin.create_order(NEW_ACCOUNT, {"line_items": lines})
    await zuora_admin.shape(list_shape=shape, nested_page_size=2)

    [order] = await make_adapter(zuora_sim, session).fetch_orders(NEW_ACCOUNT, since=None)

    assert [line.key for line in order.line_items[:5]] == [
        line["id"] for line in created["line_items"]
    ]
    assert [line.quantity for line in order.line_items[:5]] == [1, 2, 3, 4, 5]
    continuations = [
        call for call in await api_calls(zuora_admin) if call["path_qs"].startswith("/v2/orders/")
    ]
    # The listing showed two lines; one continuation of up to 99 brought the other three.
    assert len(continuations) == (1 if shape == "object" else 0)
    assert all("cursor=" in call["path_qs"] for call in continuations)


async def test_a_failing_line_continuation_fails_the_whole_fetch(
    zuora_sim: ZuoraSimulator, zuora_admin: ZuoraAdmin, session: aiohttp.ClientSession
) -> None:
    lines = [{"quantity": 1}, {"quantity": 2}, {"quantity": 3}]
    order = await zuora_admin.create_order(NEW_ACCOUNT, {"line_items": lines})
    await zuora_admin.shape(nested_page_size=2)
    await zuora_admin.fault(kind="truncated", count=-1, path_contains=order["order_number"])

    with pytest.raises(MalformedReplyError, match="no line_items"):
        await make_adapter(zuora_sim, session, attempts=2).fetch_orders(NEW_ACCOUNT, since=None)


async def test_changed_since_asks_for_updated_orders_only(
    zuora_sim: ZuoraSimulator, zuora_admin: ZuoraAdmin, session: aiohttp.ClientSession
) -> None:
    await zuora_admin.patch_order("O-00000004", {"description": "changed"})
    adapter = make_adapter(zuora_sim, session, page_size=10)

    orders = await adapter.fetch_orders(
        ACCOUNT, since=SIM_NOW - timedelta(days=30), changed_since=SIM_NOW - timedelta(minutes=1)
    )

    assert [order.order_id for order in orders] == ["O-00000004"]
    [call] = await api_calls(zuora_admin)
    assert "updated_time.GT:2026-11-20T09:54:00%2B00:00" in call["path_qs"]


async def test_a_refused_update_filter_falls_back_to_full_listing(
    zuora_sim: ZuoraSimulator, zuora_admin: ZuoraAdmin, session: aiohttp.ClientSession
) -> None:
    await zuora_admin.queue_error(
        status=400,
        type="bad_request",
        code="invalid_parameter",
        parameter="filter[]",
        message="updated_time is not filterable",
        path_contains="updated_time",
    )
    adapter = make_adapter(zuora_sim, session, page_size=10)
    changed_since = SIM_NOW - timedelta(minutes=1)

    first = await adapter.fetch_orders(ACCOUNT, since=None, changed_since=changed_since)
    second = await adapter.fetch_orders(ACCOUNT, since=None, changed_since=changed_since)

    assert len(first) == len(second) == 5
    calls = [call["path_qs"] for call in await api_calls(zuora_admin)]
    assert ["updated_time" in path for path in calls] == [True, False, False]


async def test_since_keeps_orders_created_in_the_window(
    zuora_sim: ZuoraSimulator, session: aiohttp.ClientSession
) -> None:
    orders = await make_adapter(zuora_sim, session).fetch_orders(
        ACCOUNT, since=SIM_NOW - timedelta(days=10)
    )
    assert sorted(order.order_id for order in orders) == ["O-00000001", "O-00000002", "O-00000003"]


async def test_every_call_has_its_own_track_id(
    zuora_sim: ZuoraSimulator, zuora_admin: ZuoraAdmin, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(zuora_sim, session, page_size=2)
    await zuora_admin.fault(kind="status", status=503)

    await adapter.fetch_orders(ACCOUNT, since=None)
    await adapter.fetch_orders(ACCOUNT, since=None)

    track_ids = await zuora_admin.track_ids()
    assert len(track_ids) == 7  # 503 + 3 pages, then 3 pages
    assert None not in track_ids
    assert len(set(track_ids)) == len(track_ids)


async def test_tokens_are_reused_then_refreshed_before_expiry_and_after_revocation(
    zuora_sim: ZuoraSimulator,
    zuora_admin: ZuoraAdmin,
    sim_clock: ManualClock,
    session: aiohttp.ClientSession,
) -> None:
    time = FakeTime(sim_clock)
    adapter = make_adapter(zuora_sim, session, time=time, page_size=10)
    await adapter.fetch_orders(ACCOUNT, since=None)
    time.advance(1000)
    await adapter.fetch_orders(ACCOUNT, since=None)
    assert await token_calls(zuora_admin) == 1

    time.advance(3599 - 1000 - 60)  # inside the refresh margin of the 3599 s token
    await adapter.fetch_orders(ACCOUNT, since=None)
    assert await token_calls(zuora_admin) == 2

    await zuora_admin.revoke_tokens()
    await adapter.fetch_orders(ACCOUNT, since=None)
    assert await token_calls(zuora_admin) == 3
    assert [call["status"] for call in await api_calls(zuora_admin)] == [200, 200, 200, 401, 200]


async def test_a_spent_rate_budget_pauses_the_limiter_until_reset(
    zuora_sim: ZuoraSimulator,
    zuora_admin: ZuoraAdmin,
    sim_clock: ManualClock,
    session: aiohttp.ClientSession,
) -> None:
    await zuora_admin.rate_limit(limit=100, window_s=7, remaining=1)
    time = FakeTime(sim_clock)
    adapter = make_adapter(zuora_sim, session, time=time, page_size=3)

    orders = await adapter.fetch_orders(ACCOUNT, since=None)

    assert len(orders) == 5
    assert time.sleeps == [7.0]  # the first page spent the budget; the second waited
    assert [call["status"] for call in await api_calls(zuora_admin)] == [200, 200]


async def test_a_budget_resetting_too_late_fails_fast_with_retry_after(
    zuora_sim: ZuoraSimulator,
    zuora_admin: ZuoraAdmin,
    sim_clock: ManualClock,
    session: aiohttp.ClientSession,
) -> None:
    await zuora_admin.rate_limit(limit=100, window_s=3600, remaining=1)
    time = FakeTime(sim_clock)

    with pytest.raises(TransientProviderError, match="budget is spent") as caught:
        await make_adapter(zuora_sim, session, time=time).fetch_orders(ACCOUNT, since=None)

    assert caught.value.retry_after_s == pytest.approx(3600)
    assert time.sleeps == []
    assert len(await api_calls(zuora_admin)) == 1


async def test_a_budget_spent_before_the_first_call_is_waited_out_not_hit(
    zuora_sim: ZuoraSimulator,
    zuora_admin: ZuoraAdmin,
    sim_clock: ManualClock,
    session: aiohttp.ClientSession,
) -> None:
    await zuora_admin.rate_limit(limit=100, window_s=5, remaining=0)
    time = FakeTime(sim_clock)

    orders = await make_adapter(zuora_sim, session, time=time, page_size=10).fetch_orders(
        ACCOUNT, since=None
    )

    # The token reply already says the budget is spent: the listing waits for the reset
    # instead of going out into a certain 429.
    assert len(orders) == 5
    assert [call["status"] for call in await api_calls(zuora_admin)] == [200]
    assert sum(time.sleeps) >= 5.0


async def test_a_retryable_4xx_is_retried(
    zuora_sim: ZuoraSimulator, zuora_admin: ZuoraAdmin, session: aiohttp.ClientSession
) -> None:
    await zuora_admin.queue_error(
        status=409, type="conflict", code="lock_competition", retryable=True
    )
    orders = await make_adapter(zuora_sim, session, page_size=10).fetch_orders(ACCOUNT, since=None)
    assert len(orders) == 5
    assert [call["status"] for call in await api_calls(zuora_admin)] == [409, 200]


async def test_a_non_retryable_4xx_is_permanent_and_quoted(
    zuora_sim: ZuoraSimulator, zuora_admin: ZuoraAdmin, session: aiohttp.ClientSession
) -> None:
    await zuora_admin.queue_error(
        status=422, type="unprocessable_entity", code="invalid_account", message="No such account"
    )
    with pytest.raises(PermanentProviderError) as caught:
        await make_adapter(zuora_sim, session).fetch_orders(ACCOUNT, since=None)

    text = str(caught.value)
    assert f"account {ACCOUNT}" in text
    assert "HTTP 422 (unprocessable_entity: code invalid_account: No such account)" in text
    assert "[zuora-request-id " in text
    assert len(await api_calls(zuora_admin)) == 1


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("malformed", "not valid JSON"),
        ("truncated", "unexpected reply shape: data: Field required"),
    ],
)
async def test_unreadable_replies_give_malformed_reply_and_no_orders(
    zuora_sim: ZuoraSimulator,
    zuora_admin: ZuoraAdmin,
    session: aiohttp.ClientSession,
    kind: str,
    message: str,
) -> None:
    await zuora_admin.fault(kind=kind, count=-1, path_contains="cursor=")
    adapter = make_adapter(zuora_sim, session, attempts=2)
    with pytest.raises(MalformedReplyError, match=message):
        await adapter.fetch_orders(ACCOUNT, since=None)


async def test_secrets_never_reach_errors(
    zuora_sim: ZuoraSimulator, zuora_admin: ZuoraAdmin, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(PermanentProviderError, match="invalid_client") as bad_secret:
        await make_adapter(zuora_sim, session, secret="s3cret-0xdeadbeef").fetch_orders(
            ACCOUNT, since=None
        )
    assert "s3cret-0xdeadbeef" not in error_texts(bad_secret.value)

    token = await zuora_admin.token()
    await zuora_admin.queue_error(
        status=403, type="forbidden", code="denied", message=f"token {token}"
    )
    await zuora_admin.revoke_tokens()
    with pytest.raises(PermanentProviderError) as echoed:
        await make_adapter(zuora_sim, session).fetch_orders(ACCOUNT, since=None)
    assert CLIENT_SECRET not in error_texts(echoed.value)


# --- transitions as typed events --------------------------------------------------------


async def changes_after(
    adapter: Provider, admin: ZuoraAdmin, order: str, patch: dict[str, Any]
) -> list[tuple[str, str, str | None]]:
    """(type, routing key, line key) of the events a patch of `order` raises."""
    before = {o.order_id: o for o in await adapter.fetch_orders(ACCOUNT, since=None)}
    await admin.patch_order(order, patch)
    after = await adapter.fetch_orders(ACCOUNT, since=None)
    stored = {key: Snapshot(order=value, sequence=1) for key, value in before.items()}
    result = sync.reconcile(after, stored, baseline=False, now=SIM_NOW)
    return [
        (e.type, r.routing_key, e.affected_line())
        for e, r in zip(result.events, result.records, strict=True)
    ]


def subscription(number: str, state: str | None = None, **items: dict[str, Any]) -> dict[str, Any]:
    """A patch of one subscription; `items` by subscription item number."""
    patch: dict[str, Any] = {"subscription_number": number}
    if state is not None:
        patch["state"] = state
    if items:
        patch["subscription_items"] = [
            {"subscription_item_number": key.replace("_", "-")} | change
            for key, change in items.items()
        ]
    return {"subscriptions": [patch]}


def event(kind: str, value: str | None = None, line: str | None = None) -> Change:
    """(type, routing key, line key) of one expected event."""
    key = f"zuora.order.{kind}" + (f".{value}" if value else "")
    return (f"order.{kind}", key, line)


Change = tuple[str, str, str | None]
TRANSITIONS: list[tuple[str, dict[str, Any], list[Change]]] = [
    ("O-00000001", {"state": "complete"}, [event("status_changed", "completed")]),
    ("O-00000001", {"state": "executing"}, [event("status_changed", "processing")]),
    ("O-00000001", {"state": "failed"}, [event("status_changed", "failed")]),
    (
        "O-00000001",
        {"state": "canceled"} | subscription("A-S00000001", "canceled"),
        [
            event("provisioning_changed", "cancelled", "C-00000001"),
            event("provisioning_changed", "cancelled", "C-00000002"),
            event("status_changed", "cancelled"),
        ],
    ),
    (
        "O-00000004",
        subscription("A-S00000004", "active"),
        [event("provisioning_changed", "provisioned", "C-00000006")],
    ),
    (
        "O-00000002",
        subscription("A-S00000002", "paused"),
        [event("provisioning_changed", "unknown", "C-00000003")],
    ),
    (
        "O-00000002",
        subscription("A-S00000002", "expired"),
        [event("provisioning_changed", "cancelled", "C-00000003")],
    ),
    (
        "O-00000001",
        subscription("A-S00000001", C_00000002={"quantity": 9}),
        [event("line_item.quantity_changed", line="C-00000002")],
    ),
    (
        "O-00000001",
        subscription("A-S00000001", C_00000001={"state": "active"}),
        [event("line_item.status_changed", line="C-00000001")],
    ),
]


@pytest.mark.parametrize("case", TRANSITIONS, ids=[str(n) for n in range(len(TRANSITIONS))])
async def test_transitions_raise_typed_events(
    zuora_sim: ZuoraSimulator,
    zuora_admin: ZuoraAdmin,
    session: aiohttp.ClientSession,
    case: tuple[str, dict[str, Any], list[Change]],
) -> None:
    order, patch, expected = case
    adapter = make_adapter(zuora_sim, session, page_size=10)
    assert await changes_after(adapter, zuora_admin, order, patch) == expected


async def test_one_off_lines_added_changed_fulfilled_and_removed(
    zuora_sim: ZuoraSimulator, zuora_admin: ZuoraAdmin, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(zuora_sim, session, page_size=10)
    [line] = (await zuora_admin.patch_order("O-00000004", {}))["line_items"]
    line_id = line["id"]

    added = await changes_after(adapter, zuora_admin, "O-00000001", {"add_line_items": [{}]})
    fulfilled = await changes_after(
        adapter,
        zuora_admin,
        "O-00000004",
        {
            "line_items": [
                {"id": line_id, "quantity_fulfilled": line["quantity"], "state": "booked"}
            ]
        },
    )
    more = await changes_after(
        adapter, zuora_admin, "O-00000004", {"line_items": [{"id": line_id, "quantity": 99}]}
    )
    removed = await changes_after(
        adapter, zuora_admin, "O-00000004", {"remove_line_items": [line_id]}
    )

    assert [kind for kind, _, _ in added] == ["order.line_item.added"]
    assert [key for _, key, _ in fulfilled] == [
        "zuora.order.provisioning_changed.provisioned",
        "zuora.order.line_item.status_changed",
    ]
    assert sorted(key for _, key, _ in more) == [
        "zuora.order.line_item.quantity_changed",
        "zuora.order.provisioning_changed.pending",
    ]
    assert removed == [("order.line_item.removed", "zuora.order.line_item.removed", line_id)]


async def test_scenario_lifecycles_reach_the_adapter(
    zuora_sim: ZuoraSimulator, zuora_admin: ZuoraAdmin, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(zuora_sim, session, page_size=10)
    seen: dict[str, Order] = {
        o.order_id: o for o in await adapter.fetch_orders(ACCOUNT, since=None)
    }
    kinds: set[str] = set()
    for _ in range(8):
        kinds |= {c["kind"] for c in await zuora_admin.advance() if c["account_id"] == ACCOUNT}
    after = {o.order_id: o for o in await adapter.fetch_orders(ACCOUNT, since=None)}

    assert "completed" in kinds
    completed = [
        order
        for order in after.values()
        if order.status is OrderStatus.COMPLETED
        and seen[order.order_id].status is OrderStatus.PENDING
    ]
    assert completed
    assert all(
        line.provisioning is Provisioning.PROVISIONED for o in completed for line in o.line_items
    )


async def test_the_token_call_carries_a_track_id_too(
    zuora_sim: ZuoraSimulator, zuora_admin: ZuoraAdmin, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(zuora_sim, session)

    await adapter.fetch_orders(ACCOUNT, since=None)

    token_calls = [e for e in await zuora_admin.requests() if "/oauth/token" in e["path_qs"]]
    assert len(token_calls) == 1
    assert token_calls[0]["headers"]["zuora-track-id"]
