"""classify: which events a move from one order snapshot to the next raises.

A table of literal (before, after) orders with the expected events, in order, with their
line keys and before/after values; the baseline rule for new orders; and properties over
generated orders: unchanged essences raise nothing, no step repeats an (event type, line
key) pair, and a -> b -> c ends on the same values as a -> c.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.orders import line, order
from tests.strategies import orders, same_essence
from watcher.core import classify, essence, events
from watcher.core.models import LineItem, Order, OrderStatus, Provisioning

PENDING, COMPLETED, FAILED = OrderStatus.PENDING, OrderStatus.COMPLETED, OrderStatus.FAILED
SUBSCRIPTION = "a1b2c3d4e5f60718293a4b5c6d7e8f90"

STATUS = events.OrderStatusChanged.type
PAYMENT = events.PaymentChanged.type
PROVISIONING = events.ProvisioningChanged.type
ADDED = events.LineItemAdded.type
REMOVED = events.LineItemRemoved.type
QUANTITY = events.LineItemQuantityChanged.type
LINE_STATUS = events.LineItemStatusChanged.type

Summary = tuple[str, str | None, Any, Any]


def summary(event: events.OrderEvent) -> Summary:
    """(type, line key, before, after); values as (normalised, raw), lines as their dump."""
    if isinstance(event, events.LineItemAdded):
        return event.type, event.line_key, None, event.line
    if isinstance(event, events.LineItemRemoved):
        return event.type, event.line_key, event.line, None
    if isinstance(event, events.LineItemQuantityChanged):
        return event.type, event.line_key, event.before, event.after
    if isinstance(
        event, events.OrderStatusChanged | events.PaymentChanged | events.LineItemStatusChanged
    ):
        return event.type, event.affected_line(), _pair(event.before), _pair(event.after)
    if isinstance(event, events.ProvisioningChanged):
        return event.type, event.line_key, _pair(event.before), _pair(event.after)
    return event.type, None, None, None


def _pair(value: events.Value) -> tuple[str | None, str | None]:
    return value.value, value.raw


def _dump(item: LineItem) -> dict[str, Any]:
    return item.model_dump(mode="json")


def step(before: Order | None, after: Order, *, baseline: bool = False) -> list[Summary]:
    return [summary(e) for e in classify.changes(before, after, sequence=2, baseline=baseline)]


CASES: list[tuple[str, Order, Order, list[Summary]]] = [
    (
        "order status, normalised and raw",
        order(),
        order(status=COMPLETED, status_raw="1000"),
        [(STATUS, None, ("pending", "1002"), ("completed", "1000"))],
    ),
    (
        "order status, raw only",
        order(),
        order(status_raw="1012"),
        [(STATUS, None, ("pending", "1002"), ("pending", "1012"))],
    ),
    (
        "order status, normalised only",
        order(status_raw="X"),
        order(status=FAILED, status_raw="X"),
        [(STATUS, None, ("pending", "X"), ("failed", "X"))],
    ),
    (
        "line quantity",
        order(),
        order(line_items=(line("1", quantity=12),)),
        [(QUANTITY, "1", 10, 12)],
    ),
    (
        "line status, normalised and raw: one event",
        order(),
        order(line_items=(line("1", status=COMPLETED, status_raw="1000"),)),
        [(LINE_STATUS, "1", ("pending", "1002"), ("completed", "1000"))],
    ),
    (
        "line status, raw only",
        order(),
        order(line_items=(line("1", status_raw="1012"),)),
        [(LINE_STATUS, "1", ("pending", "1002"), ("pending", "1012"))],
    ),
    (
        "subscription id set",
        order(),
        order(line_items=(line("1", subscription_id=SUBSCRIPTION),)),
        [(PROVISIONING, "1", ("pending", "1002"), ("pending", "1002"))],
    ),
    (
        "line provisioned, with its subscription id: one event",
        order(),
        order(
            line_items=(
                line(
                    "1",
                    subscription_id=SUBSCRIPTION,
                    provisioning=Provisioning.PROVISIONED,
                    provisioning_raw="1000",
                ),
            )
        ),
        [(PROVISIONING, "1", ("pending", "1002"), ("provisioned", "1000"))],
    ),
    (
        "line added",
        order(),
        order(line_items=(line("1"), line("2", offer="65322651CA01A12", quantity=1))),
        [(ADDED, "2", None, _dump(line("2", offer="65322651CA01A12", quantity=1)))],
    ),
    (
        "line removed",
        order(line_items=(line("1"), line("2"))),
        order(line_items=(line("1"),)),
        [(REMOVED, "2", _dump(line("2")), None)],
    ),
    (
        "payment set",
        order(),
        order(payment="paid", payment_raw="PAID"),
        [(PAYMENT, None, (None, None), ("paid", "PAID"))],
    ),
    (
        "payment raw only",
        order(payment="paid", payment_raw="captured"),
        order(payment="paid", payment_raw="settled"),
        [(PAYMENT, None, ("paid", "captured"), ("paid", "settled"))],
    ),
    (
        "order fulfilment",
        order(fulfilment=Provisioning.PENDING, fulfilment_raw="unfulfilled"),
        order(fulfilment=Provisioning.PROVISIONED, fulfilment_raw="fulfilled"),
        [(PROVISIONING, None, ("pending", "unfulfilled"), ("provisioned", "fulfilled"))],
    ),
    (
        "fulfilment first appears",
        order(),
        order(fulfilment=Provisioning.PENDING, fulfilment_raw="unfulfilled"),
        [(PROVISIONING, None, (None, None), ("pending", "unfulfilled"))],
    ),
    (
        "several changes: one event each, in path order",
        order(line_items=(line("1"), line("2"))),
        order(
            status=COMPLETED,
            status_raw="1000",
            payment="paid",
            payment_raw="PAID",
            fulfilment=Provisioning.PROVISIONED,
            fulfilment_raw="fulfilled",
            line_items=(
                line(
                    "1",
                    quantity=12,
                    status=COMPLETED,
                    status_raw="1000",
                    subscription_id=SUBSCRIPTION,
                ),
                line("3"),
            ),
        ),
        [
            (PROVISIONING, None, (None, None), ("provisioned", "fulfilled")),
            (QUANTITY, "1", 10, 12),
            (LINE_STATUS, "1", ("pending", "1002"), ("completed", "1000")),
            (PROVISIONING, "1", ("pending", "1002"), ("pending", "1002")),
            (REMOVED, "2", _dump(line("2")), None),
            (ADDED, "3", None, _dump(line("3"))),
            (PAYMENT, None, (None, None), ("paid", "PAID")),
            (STATUS, None, ("pending", "1002"), ("completed", "1000")),
        ],
    ),
    (
        "non-essence fields only",
        order(),
        order(
            reference="PO-9999",
            created_at=datetime(2025, 1, 1, tzinfo=UTC),
            line_items=(line("1", offer="65322651CA01A12"),),
        ),
        [],
    ),
    (
        "lines listed in another order",
        order(line_items=(line("1"), line("2", quantity=3))),
        order(line_items=(line("2", quantity=3), line("1"))),
        [],
    ),
    ("nothing at all", order(), order(), []),
]


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_changes(before: Order, after: Order, expected: list[Summary]) -> None:
    assert step(before, after) == expected


def test_subscription_id_travels_with_the_provisioning_event() -> None:
    found = classify.changes(
        order(),
        order(line_items=(line("1", subscription_id=SUBSCRIPTION),)),
        sequence=2,
        baseline=False,
    )
    assert len(found) == 1
    event = found[0]
    assert isinstance(event, events.ProvisioningChanged)
    assert event.line_key == "1"
    assert event.subscription_id == SUBSCRIPTION


def test_order_fulfilment_is_not_a_line_event() -> None:
    (event,) = classify.changes(
        order(),
        order(fulfilment=Provisioning.FAILED, fulfilment_raw="x"),
        sequence=2,
        baseline=False,
    )
    assert isinstance(event, events.ProvisioningChanged)
    assert event.line_key is None
    assert event.affected_line() is None
    assert event.subscription_id is None


def test_every_event_carries_the_order_identity_sequence_and_snapshot_after() -> None:
    before = order(line_items=(line("1"), line("2")))
    after = order(status=COMPLETED, status_raw="1000", line_items=(line("1", quantity=2),))
    found = classify.changes(before, after, sequence=7, baseline=False)
    assert [e.type for e in found] == [QUANTITY, REMOVED, STATUS]
    for event in found:
        assert (event.provider, event.source, event.customer_id, event.order_id) == (
            "adobe_vip",
            "adobe-prod",
            "9876543210",
            "5123456789",
        )
        assert event.sequence == 7
        assert event.order == after.model_dump(mode="json")


def test_a_new_order_is_created_outside_the_baseline() -> None:
    new = order()
    (event,) = classify.changes(None, new, sequence=1, baseline=False)
    assert isinstance(event, events.OrderCreated)
    assert event.sequence == 1
    assert event.order == new.model_dump(mode="json")
    assert event.order_id == "5123456789"


def test_the_baseline_suppresses_order_created() -> None:
    assert classify.changes(None, order(), sequence=1, baseline=True) == []


def test_the_baseline_does_not_suppress_changes_of_known_orders() -> None:
    found = step(order(), order(status=COMPLETED, status_raw="1000"), baseline=True)
    assert found == [(STATUS, None, ("pending", "1002"), ("completed", "1000"))]


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_no_event_from_an_unchanged_essence(data: st.DataObject) -> None:
    before = data.draw(orders())
    after = data.draw(same_essence(before))
    assert essence.of(before) == essence.of(after)
    assert classify.changes(before, before, sequence=2, baseline=False) == []
    assert classify.changes(before, after, sequence=2, baseline=False) == []


@settings(max_examples=100, deadline=None)
@given(orders(), orders())
def test_events_exactly_when_the_essence_changed(before: Order, after: Order) -> None:
    found = classify.changes(before, after, sequence=2, baseline=False)
    assert (found == []) == (essence.of(before) == essence.of(after))


@settings(max_examples=100, deadline=None)
@given(orders(), orders())
def test_no_step_repeats_a_type_and_line_key(before: Order, after: Order) -> None:
    kinds = [
        (e.type, e.affected_line())
        for e in classify.changes(before, after, sequence=2, baseline=False)
    ]
    assert len(kinds) == len(set(kinds))


def _by_kind(before: Order, after: Order) -> dict[classify.Kind, events.OrderEvent]:
    found = classify.changes(before, after, sequence=2, baseline=False)
    return {(e.type, e.affected_line()): e for e in found}


_ValueEvent = (
    events.OrderStatusChanged
    | events.PaymentChanged
    | events.LineItemStatusChanged
    | events.LineItemQuantityChanged
    | events.ProvisioningChanged
)


def _before(event: events.OrderEvent) -> Any:
    assert isinstance(event, _ValueEvent)
    return event.before


def _final(event: events.OrderEvent) -> Any:
    """What a value event says the value is now (with the subscription id for provisioning)."""
    assert isinstance(event, _ValueEvent)
    if isinstance(event, events.ProvisioningChanged):
        return event.after, event.subscription_id
    return event.after


def _final_in_line(event_type: str, dumped: dict[str, Any]) -> Any:
    """What an added line says the value of `event_type` is."""
    if event_type == QUANTITY:
        return dumped["quantity"]
    if event_type == LINE_STATUS:
        return events.Value(value=dumped["status"], raw=dumped["status_raw"])
    value = events.Value(value=dumped["provisioning"], raw=dumped["provisioning_raw"])
    return value, dumped["subscription_id"]


@settings(max_examples=150, deadline=None)
@given(orders(), orders(), orders())
def test_two_steps_end_where_one_step_ends(a: Order, b: Order, c: Order) -> None:
    """a -> b -> c reports the same final values as a -> c.

    For every event E of the step a -> c, keyed by K = (type, line key):

    - line_item.added of line k: k is in c and not in a, so the step that added k reports
      it: a -> b if k is in b (and b -> c neither adds nor removes k), otherwise b -> c,
      whose added line equals E's line.
    - line_item.removed of line k: likewise, the step that removed k reports it: b -> c if
      k is in b (with b's line), otherwise a -> b (with E's line).
    - every other event (status, payment, provisioning, quantity, line status): its
      "after" (and, for provisioning, its subscription id) equals
        * the "after" of b -> c's event with the same K, if b -> c has one;
        * else, for a line k absent from b (removed, then added again), the value in the
          line that b -> c's line_item.added carries;
        * else the "after" of a -> b's event with the same K, which must exist.
      Symmetrically its "before" equals a -> b's "before" for K when a -> b has one, and
      else (k present in b, or an order-level K) b -> c's "before" for K.
    """
    ab, bc, ac = _by_kind(a, b), _by_kind(b, c), _by_kind(a, c)
    for (event_type, key), event in ac.items():
        in_b = key is None or b.line(key) is not None
        if isinstance(event, events.LineItemAdded):
            if in_b:
                assert (ADDED, key) in ab
                assert (ADDED, key) not in bc
                assert (REMOVED, key) not in bc
            else:
                assert summary(bc[(ADDED, key)]) == summary(event)
        elif isinstance(event, events.LineItemRemoved):
            if in_b:
                assert key is not None
                kept = b.line(key)
                assert kept is not None
                assert summary(bc[(REMOVED, key)]) == (REMOVED, key, _dump(kept), None)
                assert (REMOVED, key) not in ab
            else:
                assert summary(ab[(REMOVED, key)]) == summary(event)
        else:
            if (event_type, key) in bc:
                assert _final(bc[(event_type, key)]) == _final(event)
            elif not in_b:
                readded = bc[(ADDED, key)]
                assert isinstance(readded, events.LineItemAdded)
                assert _final_in_line(event_type, readded.line) == _final(event)
            else:
                assert _final(ab[(event_type, key)]) == _final(event)
            first = ab.get((event_type, key)) or (bc[(event_type, key)] if in_b else None)
            if first is not None:
                assert _before(first) == _before(event)
