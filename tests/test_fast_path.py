"""The fast path of an unchanged order: an order listed exactly as before.

Every order is stored with the digest of the vendor's JSON it was read from; the next
listing of the same JSON names it in `Listing.same`, unmapped, and the sync leaves it alone,
but for judging an order in flight stuck from its stored episode. Over the Adobe simulator
(sockets), the SQLite store and the real adapter: which orders a listing recognises, that
any change of the vendor's JSON takes the full path again (an event when the essence
changed, a new digest and no event when it did not), that an order whose order.stuck falls
due is read in full and reported, and that an unchanged order in flight keeps its customer
hot. The properties at the end hold the fast path to the full one over generated input: a
change that raises an event always changes the digest, and an episode judges an unchanged
order as its snapshot does.
"""

from __future__ import annotations

import contextlib
import copy
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.plugins.simulator import AdobeSimulator, SimAdmin
from tests.poller_cases import (
    COMPLETED,
    CUSTOMER,
    CUSTOMER_ORDERS,
    FULL_RELIST_S,
    SOURCE,
    Rig,
    completed_after_the_baseline,
    kinds,
    opened_rig,
)
from watcher.core import classify, stuck, sync
from watcher.core.events import OrderStuck
from watcher.core.models import OrderStatus
from watcher.core.ports import Episode, ListsByDigest, Snapshot
from watcher.providers import reply
from watcher.providers.adobe_vip import mapping

OPEN = {"5120000001", "5120000002"}  # "1002" in the simulator's seed; the rest are "1000"
PENDING_40_DAYS = {"pending": 40 * 86_400.0}  # the simulator seeds orders up to 20 days old


@pytest.fixture
async def rig(adobe_sim: AdobeSimulator, sim_admin: SimAdmin, tmp_path: Path) -> AsyncIterator[Rig]:
    async with opened_rig(adobe_sim, sim_admin, tmp_path) as opened:
        yield opened


async def digests(rig: Rig) -> dict[str, str]:
    return dict((await rig.store.prior_poll(SOURCE, CUSTOMER)).digests)


async def test_the_baseline_stores_a_digest_for_every_order_and_the_episodes_in_flight(
    rig: Rig,
) -> None:
    await rig.poller().sync_customer(CUSTOMER)

    prior = await rig.store.prior_poll(SOURCE, CUSTOMER)
    assert set(prior.digests) == set(CUSTOMER_ORDERS)
    assert set(prior.episodes) == OPEN
    assert {episode.status for episode in prior.episodes.values()} == {OrderStatus.PENDING}


async def test_a_listing_names_every_order_listed_as_before(rig: Rig) -> None:
    await rig.poller().sync_customer(CUSTOMER)
    adapter = rig.adapter(rig.source())
    assert isinstance(adapter, ListsByDigest)
    known = await digests(rig)
    await rig.admin.patch_order(CUSTOMER, "5120000003", {"externalReferenceId": "PO-9"})

    listing = await adapter.fetch_listing(CUSTOMER, since=None, changed_since=None, known=known)

    assert listing.same == set(CUSTOMER_ORDERS) - {"5120000003"}
    assert [order.order_id for order in listing.orders] == ["5120000003"]
    assert set(listing.digests) == {"5120000003"}


async def test_a_settled_order_listed_as_before_raises_nothing_and_writes_nothing(
    rig: Rig,
) -> None:
    poller = rig.poller()
    await poller.sync_customer(CUSTOMER)
    before = await rig.store.load_snapshots(SOURCE, CUSTOMER, CUSTOMER_ORDERS)
    rig.clock.advance(60)

    result = await poller.sync_customer(CUSTOMER)

    assert result.error is None
    assert result.orders == len(CUSTOMER_ORDERS)
    assert result.events == []
    assert await rig.store.load_snapshots(SOURCE, CUSTOMER, CUSTOMER_ORDERS) == before


async def test_a_change_to_a_settled_order_takes_the_full_path_and_gets_a_new_digest(
    rig: Rig,
) -> None:
    poller = rig.poller()
    await poller.sync_customer(CUSTOMER)
    first = await digests(rig)
    await rig.admin.patch_order(
        CUSTOMER, "5120000003", {"lineItems": [{"extLineItemNumber": 1, "quantity": 9}]}
    )
    rig.clock.advance(60)

    changed = await poller.sync_customer(CUSTOMER)
    rig.clock.advance(60)
    again = await poller.sync_customer(CUSTOMER)

    assert kinds(changed) == [("order.line_item.quantity_changed", "5120000003", "1")]
    assert (await digests(rig))["5120000003"] != first["5120000003"]
    assert again.events == []
    assert (await rig.store.load_snapshots(SOURCE, CUSTOMER, ["5120000003"]))[
        "5120000003"
    ].sequence == 2


async def test_a_change_outside_the_essence_records_a_new_digest_and_no_event(rig: Rig) -> None:
    poller = rig.poller()
    await poller.sync_customer(CUSTOMER)
    first = await digests(rig)
    await rig.admin.patch_order(CUSTOMER, "5120000004", {"externalReferenceId": "PO-77"})
    rig.clock.advance(60)

    result = await poller.sync_customer(CUSTOMER)
    adapter = rig.adapter(rig.source())
    assert isinstance(adapter, ListsByDigest)
    listing = await adapter.fetch_listing(
        CUSTOMER, since=None, changed_since=None, known=await digests(rig)
    )

    assert result.events == []
    assert (await digests(rig))["5120000004"] != first["5120000004"]
    assert listing.same == set(CUSTOMER_ORDERS)
    stored = await rig.store.load_snapshots(SOURCE, CUSTOMER, ["5120000004"])
    assert stored["5120000004"].sequence == 1


async def test_an_order_that_settles_gets_its_events_and_leaves_the_orders_in_flight(
    rig: Rig,
) -> None:
    result = await completed_after_the_baseline(rig, rig.poller())

    state = await rig.store.poll_state(SOURCE, CUSTOMER)
    prior = await rig.store.prior_poll(SOURCE, CUSTOMER)
    assert ("order.status_changed", "5120000001", None) in kinds(result)
    assert set(prior.digests) == set(CUSTOMER_ORDERS)
    assert set(prior.episodes) == {"5120000002"}
    assert state is not None
    assert state.in_flight == {"5120000002"}


async def test_an_order_in_flight_due_a_report_is_read_in_full_then_judged_from_its_episode(
    rig: Rig,
) -> None:
    poller = rig.poller(stuck=PENDING_40_DAYS)
    baseline = await poller.sync_customer(CUSTOMER)
    rig.clock.advance(60 * 86_400)

    reported = await poller.sync_customer(CUSTOMER)
    rig.clock.advance(FULL_RELIST_S)  # a full re-list again: the orders are past the window
    prior = await rig.store.prior_poll(SOURCE, CUSTOMER)
    offered = sync.offered(prior, thresholds=PENDING_40_DAYS, now=rig.clock())
    again = await poller.sync_customer(CUSTOMER)

    stuck = [event for event in reported.events if isinstance(event, OrderStuck)]
    assert baseline.events == []
    assert sorted(event.order_id for event in stuck) == sorted(OPEN)
    assert all(event.order["line_items"] for event in stuck)  # the whole order, read in full
    assert offered == prior.digests  # reported: nothing falls due, every order as before
    assert again.events == []
    assert {order.order_id for order in again.stuck} == OPEN
    assert poller.stuck_by_status == Counter({"pending": 2})


async def test_a_stuck_order_the_window_no_longer_shows_stays_counted_until_it_moves(
    rig: Rig,
) -> None:
    poller = rig.poller(stuck=PENDING_40_DAYS)
    await poller.sync_customer(CUSTOMER)
    rig.clock.advance(60 * 86_400)
    await poller.sync_customer(CUSTOMER)  # a full re-list: both open orders reported
    rig.clock.advance(60)

    windowed = await poller.sync_customer(CUSTOMER)  # they are older than the window
    counted = poller.stuck_by_status
    await rig.admin.patch_order(CUSTOMER, "5120000001", COMPLETED)
    rig.clock.advance(FULL_RELIST_S)
    relisted = await poller.sync_customer(CUSTOMER)

    assert (windowed.full, windowed.orders) == (False, 0)
    assert counted == Counter({"pending": 2})
    assert relisted.full
    assert {order.order_id for order in relisted.stuck} == {"5120000002"}
    assert poller.stuck_by_status == Counter({"pending": 1})


async def test_an_order_in_flight_listed_as_before_keeps_its_customer_hot(rig: Rig) -> None:
    poller = rig.poller()
    await poller.sync_customer(CUSTOMER)
    rig.clock.advance(60)
    windowed = await poller.sync_customer(CUSTOMER)
    rig.clock.advance(FULL_RELIST_S)
    relisted = await poller.sync_customer(CUSTOMER)

    state = await rig.store.poll_state(SOURCE, CUSTOMER)
    assert (windowed.full, relisted.full) == (False, True)
    assert windowed.hot
    assert relisted.hot
    assert state is not None
    assert state.in_flight == OPEN
    assert relisted.events == []


async def test_a_poll_that_wrote_nothing_waits_to_be_written_but_a_baseline_does_not(
    rig: Rig, tmp_path: Path
) -> None:
    poller = rig.poller()
    path = tmp_path / "watcher.db"
    await poller.sync_customer(CUSTOMER)
    baselined = written_state(path)
    rig.clock.advance(60)

    await poller.sync_customer(CUSTOMER)

    assert baselined == written_state(path)  # the second poll's state is not written yet
    assert baselined is not None
    state = await rig.store.poll_state(SOURCE, CUSTOMER)
    assert state is not None
    assert state.last_success_at == rig.clock()


def written_state(path: Path) -> tuple[object, ...] | None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        row: tuple[object, ...] | None = db.execute(
            "SELECT baseline_done, last_success_at FROM poll_state WHERE customer_id = ?",
            (CUSTOMER,),
        ).fetchone()
    return row


STATUSES = st.sampled_from(["1000", "1002", "1004", "1008", "1020", "9999", " 1000"])
TEXT = st.text(alphabet="abcXYZ019-", max_size=6)


@st.composite
def adobe_items(draw: st.DrawFn) -> dict[str, Any]:
    """An Adobe order as the listing gives it, with a field the watcher does not read."""
    numbers = draw(st.lists(st.integers(1, 6), unique=True, max_size=3))
    return {
        "orderId": draw(st.sampled_from(["5120000001", "5120000002"])),
        "orderType": draw(st.sampled_from(["NEW", "RENEWAL"])),
        "status": draw(STATUSES),
        "creationDate": draw(st.sampled_from(["2026-11-01T10:00:00Z", "2026-11-02T10:00:00Z"])),
        "externalReferenceId": draw(st.none() | TEXT),
        "currencyCode": draw(st.sampled_from(["USD", "EUR"])),
        "lineItems": [
            {
                "extLineItemNumber": number,
                "offerId": draw(st.sampled_from(["65304921CA01A12", "65322651CA01A12"])),
                "quantity": draw(st.integers(1, 3)),
                "status": draw(STATUSES),
                "subscriptionId": draw(st.sampled_from(["", "sub-1", "sub-2", None])),
            }
            for number in numbers
        ],
    }


@st.composite
def item_pairs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two items: independent, or the first with one field (of the order or a line) redrawn."""
    first, other = draw(adobe_items()), draw(adobe_items())
    if draw(st.booleans()):
        return first, other
    second = copy.deepcopy(first)
    if second["lineItems"] and other["lineItems"] and draw(st.booleans()):
        field = draw(st.sampled_from(sorted(other["lineItems"][0])))
        second["lineItems"][0][field] = other["lineItems"][0][field]
    else:
        field = draw(st.sampled_from(sorted(first)))
        second[field] = other[field]
    return first, second


def mapped(item: dict[str, Any]) -> Any:
    page = mapping.parse_page(
        {"items": [item], "links": {}}, source=SOURCE, customer_id=CUSTOMER, what="test"
    )
    return page.orders[0]


@settings(max_examples=400, deadline=None)
@given(item_pairs())
def test_a_change_that_raises_an_event_always_changes_the_digest(
    pair: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    before, after = pair
    loud = classify.changes(mapped(before), mapped(after), sequence=2, baseline=False) != []

    if loud:
        assert reply.digest(before) != reply.digest(after)
    if reply.digest(before) == reply.digest(after):
        assert mapped(before) == mapped(after)


@settings(max_examples=300, deadline=None)
@given(
    adobe_items(),
    st.integers(0, 90 * 86_400),
    st.integers(0, 90 * 86_400),
    st.booleans(),
    st.dictionaries(
        st.sampled_from(["1002", "1004", "pending", "processing"]), st.integers(0, 10_000_000)
    ),
)
def test_an_episode_judges_an_unchanged_order_as_its_snapshot_does(
    item: dict[str, Any], age_s: int, elapsed_s: int, reported: bool, thresholds: dict[str, int]
) -> None:
    order = mapped(item)
    since = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=age_s)
    now = since + timedelta(seconds=elapsed_s)
    prior = Snapshot(order=order, sequence=3, status_since=since, stuck_reported=reported)
    episode = Episode(order.status, order.status_raw, since=since, reported=reported)
    limits = {status: float(seconds) for status, seconds in thresholds.items()}

    assert stuck.judge_unchanged(episode, thresholds=limits, now=now) == stuck.judge(
        order, prior, thresholds=limits, now=now
    )


@settings(max_examples=100, deadline=None)
@given(adobe_items())
def test_the_digest_of_an_item_does_not_depend_on_the_order_of_its_keys(
    item: dict[str, Any],
) -> None:
    shuffled = dict(reversed(list(item.items())))
    shuffled["lineItems"] = [dict(reversed(list(line.items()))) for line in item["lineItems"]]

    assert reply.digest(shuffled) == reply.digest(item)


def test_a_listed_item_with_its_known_digest_is_named_and_not_read() -> None:
    item = {"orderId": "5120000003", "status": "1000", "lineItems": []}
    broken = {"orderId": "5120000004", "status": 1000}  # not a valid order: status is a number
    known = {"5120000003": reply.digest(item), "5120000004": reply.digest(broken)}

    page = mapping.parse_page(
        {"items": [item, broken], "links": {}},
        source=SOURCE,
        customer_id=CUSTOMER,
        what="test",
        known=known,
    )

    assert page.same == ["5120000003", "5120000004"]
    assert page.orders == []
