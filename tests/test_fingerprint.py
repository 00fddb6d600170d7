"""The essence fingerprint is exactly as strict as the full diff.

Over generated orders of every vendor (`tests.strategies`): two orders have the same
fingerprint if and only if moving from one to the other raises no event. Pairs are drawn
independently, with one essence and everything else redrawn (references, dates, offers,
the order of the lines), or one field apart, so that both sides come up often.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.orders import order
from tests.strategies import lines, orders, same_essence
from watcher import vendors
from watcher.core import classify, essence
from watcher.core.models import LineItem, Order


@st.composite
def pairs(draw: st.DrawFn) -> tuple[Order, Order]:
    """Two orders of one vendor: independent, the second with the first's essence (other
    fields redrawn, lines in any order), or a copy of the first with one field of its
    essence (or its reference) drawn again."""
    provider = draw(st.sampled_from(vendors.NAMES))
    first = draw(orders(provider=provider))
    match draw(st.sampled_from(["independent", "same essence", "one field"])):
        case "independent":
            return first, draw(orders(provider=provider))
        case "same essence":
            return first, draw(same_essence(first))
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
