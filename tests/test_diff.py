"""diff.compute: literal tables of inputs and expected Diff tuples, and its properties.

The properties: a value never differs from itself; replaying the diffs of a -> b on a
gives b; every reported path exists in a or in b; records come out ordered by path.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.core import diff
from watcher.core.diff import Diff

TABLE: list[tuple[str, Any, Any, tuple[Diff, ...]]] = [
    ("equal scalars", 1, 1, ()),
    ("equal nested", {"a": {"b": [1, 2]}}, {"a": {"b": [1, 2]}}, ()),
    ("empty mappings", {}, {}, ()),
    ("scalar change", "pending", "completed", (Diff("change", (), "pending", "completed"),)),
    ("to None", {"a": 1}, {"a": None}, (Diff("change", ("a",), 1, None),)),
    ("from None", {"a": None}, {"a": "x"}, (Diff("change", ("a",), None, "x"),)),
    ("add", {}, {"a": 1}, (Diff("add", ("a",), None, 1),)),
    ("remove", {"a": 1}, {}, (Diff("remove", ("a",), 1, None),)),
    ("remove a None", {"a": None}, {}, (Diff("remove", ("a",), None, None),)),
    (
        "add a whole subtree",
        {"lines": {}},
        {"lines": {"7": {"quantity": 3}}},
        (Diff("add", ("lines", "7"), None, {"quantity": 3}),),
    ),
    (
        "remove a whole subtree",
        {"lines": {"7": {"quantity": 3}}},
        {"lines": {}},
        (Diff("remove", ("lines", "7"), {"quantity": 3}, None),),
    ),
    (
        "nested change",
        {"lines": {"1": {"quantity": 10, "status": "pending"}}},
        {"lines": {"1": {"quantity": 12, "status": "pending"}}},
        (Diff("change", ("lines", "1", "quantity"), 10, 12),),
    ),
    (
        "mapping replaced by a scalar",
        {"a": {"b": 1}},
        {"a": 5},
        (Diff("change", ("a",), {"b": 1}, 5),),
    ),
    ("lists are leaves", {"a": [1, 2]}, {"a": [2, 1]}, (Diff("change", ("a",), [1, 2], [2, 1]),)),
    (
        "ordered by path, not by insertion",
        {"z": 1, "b": {"y": 1, "x": 1}, "a": 1},
        {"a": 2, "b": {"x": 2, "y": 2}, "c": 1},
        (
            Diff("change", ("a",), 1, 2),
            Diff("change", ("b", "x"), 1, 2),
            Diff("change", ("b", "y"), 1, 2),
            Diff("add", ("c",), None, 1),
            Diff("remove", ("z",), 1, None),
        ),
    ),
    (
        "an essence-like change of several fields",
        {
            "status": "pending",
            "payment": None,
            "lines": {"1": {"quantity": 10}, "2": {"quantity": 1}},
        },
        {
            "status": "completed",
            "payment": "paid",
            "lines": {"1": {"quantity": 12}, "3": {"quantity": 5}},
        },
        (
            Diff("change", ("lines", "1", "quantity"), 10, 12),
            Diff("remove", ("lines", "2"), {"quantity": 1}, None),
            Diff("add", ("lines", "3"), None, {"quantity": 5}),
            Diff("change", ("payment",), None, "paid"),
            Diff("change", ("status",), "pending", "completed"),
        ),
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [case[1:] for case in TABLE],
    ids=[case[0] for case in TABLE],
)
def test_compute(old: Any, new: Any, expected: tuple[Diff, ...]) -> None:
    assert diff.compute(old, new) == expected


def test_compute_returns_a_tuple_and_does_not_touch_its_inputs() -> None:
    old = {"a": {"b": 1}}
    new = {"a": {"b": 2}, "c": 3}
    result = diff.compute(old, new)
    assert isinstance(result, tuple)
    assert old == {"a": {"b": 1}}
    assert new == {"a": {"b": 2}, "c": 3}


def test_records_are_immutable() -> None:
    record = Diff("change", ("a",), 1, 2)
    with pytest.raises(AttributeError):
        record.op = "add"  # type: ignore[misc]


# Plain JSON-like values as the essence is made of. NaN is left out: it is unequal to
# itself, and no essence ever holds a float.
_KEYS = st.sampled_from(["a", "b", "c", "lines", "status"])
_LEAVES = st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["", "x", "1002"])
_VALUES = st.recursive(
    _LEAVES | st.lists(_LEAVES, max_size=2),
    lambda children: st.dictionaries(_KEYS, children, max_size=4),
    max_leaves=12,
)
_TREES = st.dictionaries(_KEYS, _VALUES, max_size=4)


def apply(value: Any, diffs: tuple[Diff, ...]) -> Any:
    """`value` with every record of `diffs` replayed on it (a copy; the input is left alone)."""
    result = copy.deepcopy(value)
    for record in diffs:
        if not record.path:
            result = copy.deepcopy(record.new)
            continue
        *parents, last = record.path
        node = result
        for key in parents:
            node = node[key]
        if record.op == "remove":
            del node[last]
        else:
            node[last] = copy.deepcopy(record.new)
    return result


def _exists(value: Any, path: tuple[str, ...]) -> bool:
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return False
        value = value[key]
    return True


@settings(max_examples=100, deadline=None)
@given(_VALUES)
def test_nothing_differs_from_itself(value: Any) -> None:
    assert diff.compute(value, value) == ()
    assert diff.compute(value, copy.deepcopy(value)) == ()


@settings(max_examples=100, deadline=None)
@given(_TREES, _TREES)
def test_applying_the_diffs_of_a_to_b_on_a_gives_b(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert apply(a, diff.compute(a, b)) == b


@settings(max_examples=100, deadline=None)
@given(_VALUES, _VALUES)
def test_applying_works_for_any_pair_of_values(a: Any, b: Any) -> None:
    assert apply(a, diff.compute(a, b)) == b


@settings(max_examples=100, deadline=None)
@given(_TREES, _TREES)
def test_every_path_exists_where_its_op_says(a: dict[str, Any], b: dict[str, Any]) -> None:
    for record in diff.compute(a, b):
        assert _exists(a, record.path) or _exists(b, record.path)
        if record.op == "add":
            assert _exists(b, record.path)
            assert not _exists(a, record.path)
        elif record.op == "remove":
            assert _exists(a, record.path)
            assert not _exists(b, record.path)
        else:
            assert _exists(a, record.path)
            assert _exists(b, record.path)


@settings(max_examples=100, deadline=None)
@given(_TREES, _TREES)
def test_records_are_ordered_by_path_and_never_repeat_one(
    a: dict[str, Any], b: dict[str, Any]
) -> None:
    paths = [record.path for record in diff.compute(a, b)]
    assert paths == sorted(paths)
    assert len(paths) == len(set(paths))


@settings(max_examples=100, deadline=None)
@given(_TREES, _TREES)
def test_some_diff_exactly_when_the_values_differ(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert (diff.compute(a, b) == ()) == (a == b)
