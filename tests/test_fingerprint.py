"""The essence fingerprint is exactly as strict as the full diff.

Over generated orders of every vendor: two orders have the same fingerprint if and only if
moving from one to the other raises no event. Values are drawn from small sets so that
equal essences, and orders differing in one field only, come up often. Fields outside the
essence (references, dates, offers) are drawn too, and must change nothing.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.orders import line, order
from watcher import vendors
from watcher.core import classify, essence
from watcher.core.models import LineItem, Order, OrderStatus, Provisioning

RAW = st.sampled_from(["", "1000", "1002", "complete", "Pending"])
STATUS = st.sampled_from(list(OrderStatus))


@st.composite
def lines(draw: st.DrawFn) -> tuple[LineItem, ...]:
    keys = draw(st.lists(st.sampled_from(["1", "2", "3"]), unique=True, max_size=3))
    return tuple(
        line(
            key,
            offer=draw(st.sampled_from(["A", "B"])),
            quantity=draw(st.integers(1, 3)),
            status=draw(STATUS),
            status_raw=draw(RAW),
            subscription_id=draw(st.sampled_from([None, "", "sub-1"])),
            provisioning=draw(st.sampled_from(list(Provisioning))),
            provisioning_raw=draw(RAW),
        )
        for key in keys
    )


@st.composite
def orders(draw: st.DrawFn, *, provider: str) -> Order:
    fields: dict[str, Any] = {
        "provider": provider,
        "status": draw(STATUS),
        "status_raw": draw(RAW),
        "payment": draw(st.sampled_from([None, "paid", "unpaid"])),
        "payment_raw": draw(st.sampled_from([None, "", "Paid"])),
        "fulfilment": draw(st.sampled_from([None, *Provisioning])),
        "fulfilment_raw": draw(st.sampled_from([None, "", "fulfilled"])),
        "reference": draw(st.sampled_from([None, "PO-1", "PO-2"])),
        "line_items": draw(lines()),
    }
    return order(**fields)


@st.composite
def pairs(draw: st.DrawFn) -> tuple[Order, Order]:
    """Two orders of one vendor: independent, or the second a copy of the first with one
    field (or one line) drawn again."""
    provider = draw(st.sampled_from(vendors.NAMES))
    first = draw(orders(provider=provider))
    if draw(st.booleans()):
        return first, draw(orders(provider=provider))
    other = draw(orders(provider=provider))
    field = draw(st.sampled_from([*essence.of(first), "reference", "line_items"]))
    name = {"lines": "line_items"}.get(field, field)
    return first, first.model_copy(update={name: getattr(other, name)})


@settings(max_examples=600, deadline=None)
@given(pairs())
def test_a_fingerprint_is_equal_exactly_when_no_event_is_raised(pair: tuple[Order, Order]) -> None:
    before, after = pair
    quiet = classify.changes(before, after, sequence=2, baseline=False) == []

    assert (essence.fingerprint(before) == essence.fingerprint(after)) is quiet


@settings(max_examples=200, deadline=None)
@given(lines())
def test_a_line_essence_is_its_json_form(items: tuple[LineItem, ...]) -> None:
    for item in items:
        dumped = item.model_dump(include=set(essence.LINE_FIELDS), mode="json")
        assert essence.of(order(line_items=(item,)))["lines"][item.key] == dumped
