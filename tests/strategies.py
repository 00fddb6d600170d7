"""Hypothesis strategies for canonical orders, shared by the property tests.

One identity per order (that of `tests.orders.order`, or another vendor's name), and small
value domains, so that two drawn orders often have the same essence or differ in one field.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

from tests.orders import PROVIDER, line, order
from watcher.core.models import LineItem, Order, OrderStatus, Provisioning

PENDING, COMPLETED, FAILED = OrderStatus.PENDING, OrderStatus.COMPLETED, OrderStatus.FAILED
SUBSCRIPTION = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
_STATUSES = st.sampled_from([PENDING, COMPLETED, FAILED])
_RAW = st.sampled_from(["1000", "1002"])
_PROVISIONING = st.sampled_from([Provisioning.PENDING, Provisioning.PROVISIONED])


@st.composite
def lines(draw: st.DrawFn) -> tuple[LineItem, ...]:
    keys = draw(st.lists(st.sampled_from(["1", "2", "3"]), unique=True, max_size=3))
    return tuple(
        line(
            key,
            offer=draw(st.sampled_from(["65304578CA01A12", "65322651CA01A12"])),
            quantity=draw(st.integers(1, 3)),
            status=draw(_STATUSES),
            status_raw=draw(_RAW),
            subscription_id=draw(st.none() | st.just(SUBSCRIPTION)),
            provisioning=draw(_PROVISIONING),
            provisioning_raw=draw(_RAW),
        )
        for key in keys
    )


@st.composite
def orders(draw: st.DrawFn, *, provider: str = PROVIDER) -> Order:
    return order(
        provider=provider,
        status=draw(_STATUSES),
        status_raw=draw(_RAW),
        payment=draw(st.sampled_from([None, "paid", "pending"])),
        payment_raw=draw(st.sampled_from([None, "PAID"])),
        fulfilment=draw(st.none() | _PROVISIONING),
        fulfilment_raw=draw(st.sampled_from([None, "fulfilled"])),
        reference=draw(st.sampled_from([None, "PO-1", "PO-2"])),
        created_at=draw(st.sampled_from([None, datetime(2024, 5, 1, tzinfo=UTC)])),
        line_items=draw(lines()),
    )


@st.composite
def same_essence(draw: st.DrawFn, original: Order) -> Order:
    """`original` with every non-essence field redrawn and its lines in any order."""
    items = draw(st.permutations(original.line_items))
    return original.model_copy(
        update={
            "reference": draw(st.sampled_from([None, "", "PO-3"])),
            "created_at": draw(st.sampled_from([None, datetime(2020, 2, 29, tzinfo=UTC)])),
            "line_items": tuple(
                item.model_copy(update={"offer": draw(st.sampled_from(["65304578CA01A12", "X"]))})
                for item in items
            ),
        }
    )
