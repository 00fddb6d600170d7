"""A tiny, generic, pure diff of plain values.

`compute(old, new)` walks nested dicts and returns an immutable tuple of `Diff` records,
ordered by path. Mappings are descended into; every other value is a leaf compared with
`==`. A key present on one side only is an "add" or a "remove" of the whole subtree.
Nothing here knows about orders: `classify` gives the records their meaning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Op = Literal["add", "remove", "change"]
Path = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Diff:
    op: Op
    path: Path
    old: Any
    new: Any


def compute(old: Any, new: Any, path: Path = ()) -> tuple[Diff, ...]:
    """Every difference between `old` and `new`, ordered by path."""
    if old == new:  # equal subtrees are common and cheap to compare as a whole
        return ()
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return tuple(_mapping_diffs(old, new, path))
    return (Diff("change", path, old, new),)


def _mapping_diffs(old: Mapping[str, Any], new: Mapping[str, Any], path: Path) -> list[Diff]:
    diffs: list[Diff] = []
    for key in sorted(old.keys() | new.keys()):
        child = (*path, key)
        if key not in new:
            diffs.append(Diff("remove", child, old[key], None))
        elif key not in old:
            diffs.append(Diff("add", child, None, new[key]))
        else:
            diffs.extend(compute(old[key], new[key], child))
    return diffs
