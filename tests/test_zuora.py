"""The Zuora Quickstart adapter against the Zuora simulator over real sockets on 127.0.0.1.

Covers cursor paging, line items as arrays and as {data, next_page} (continued), the
updated_time window and its fallback, tokens (expiry, revocation), a fresh zuora-track-id
per call (the token call's too), RateLimit-* headers pausing the source's limiter, Zuora's
retryable flag, malformed and partial replies, and secrets kept out of errors. The pure
tables are in test_zuora_mapping.py, transitions as events in test_zuora_events.py, and
what every adapter does alike in test_vendor_contract.py.
"""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import pytest

from tests.doubles import error_texts
from tests.plugins.simulator import SIM_NOW, ManualClock
from tests.plugins.zuora import ZuoraAdmin, ZuoraSimulator
from tests.zuora_cases import (
    ACCOUNT,
    NEW_ACCOUNT,
    FakeTime,
    api_calls,
    make_adapter,
    seed_orders,
    token_calls,
)
from watcher.core.errors import (
    MalformedReplyError,
    PermanentProviderError,
    TransientProviderError,
)
from watcher.core.models import OrderStatus, Provisioning
from watcher.simulator.zuora.world import CLIENT_SECRET


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


async def test_the_token_call_carries_a_track_id_too(
    zuora_sim: ZuoraSimulator, zuora_admin: ZuoraAdmin, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(zuora_sim, session)

    await adapter.fetch_orders(ACCOUNT, since=None)

    token_calls = [e for e in await zuora_admin.requests() if "/oauth/token" in e["path_qs"]]
    assert len(token_calls) == 1
    assert token_calls[0]["headers"]["zuora-track-id"]
