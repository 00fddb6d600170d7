"""`GET /v2/orders` in the simulator: filter, sort and page exactly as Elastic Path documents.

- `filter` is `op(attr,value)` clauses joined by `:` (logical AND). Timestamps contain
  colons too, so clauses are matched whole rather than split. Supported: `eq` on
  customer_id, account_id, status, payment and shipping; `eq/gt/ge/lt/le` on created_at and
  updated_at, with a date (`YYYY-MM-DD`, midnight UTC), a timestamp or epoch milliseconds.
  Values may be quoted. Anything else is the vendor's 400 "Could not parse the supplied
  filter".
- `sort` is one attribute, `-` for descending; the default is `-updated_at`. Ties break on
  the order id so offset paging is stable.
- `page[limit]` defaults to 25 and is clamped to 100; `page[offset]` is zero-based records
  and may not pass the offset cap (10,000; a world's `offset_cap` lowers it for tests). A
  store holding more orders than the cap refuses an unfiltered listing, as the real one
  does.
- The reply has `meta.page {current, limit, offset, total (pages)}`, `meta.results.total`
  and absolute `links {current, first, last, next, prev}`; `prev` is null on the first
  page, `next` on the last, `next` and `last` when there is only one page.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from watcher.simulator.elastic_path import orders
from watcher.simulator.elastic_path.orders import StoredOrder

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
OFFSET_CAP = 10_000
_CLAUSE = re.compile(r"(eq|like|in|gt|ge|lt|le)\(([a-z_.]+),([^()]*)\)(?::|$)")
_TEXT_ATTRS = frozenset({"customer_id", "account_id", "status", "payment", "shipping"})
_TIME_ATTRS = frozenset({"created_at", "updated_at"})
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}
_SORT_KEYS: dict[str, Callable[[StoredOrder], Any]] = {
    "created_at": lambda order: order.created_at,
    "updated_at": lambda order: order.updated_at,
    "status": lambda order: order.status,
    "payment": lambda order: order.payment,
    "shipping": lambda order: order.shipping,
    "with_tax": lambda order: order.total(),
}


@dataclass(frozen=True, slots=True)
class Clause:
    op: str
    attr: str
    value: Any

    def accepts(self, order: StoredOrder) -> bool:
        return _COMPARE[self.op](getattr(order, self.attr), self.value)


@dataclass(frozen=True, slots=True)
class Query:
    clauses: tuple[Clause, ...]
    sort: str
    limit: int
    offset: int
    include_items: bool
    raw: Mapping[str, str]

    def accepts(self, order: StoredOrder) -> bool:
        return all(clause.accepts(order) for clause in self.clauses)


def parse(
    query: Mapping[str, str], *, page_limit: int | None = None, offset_cap: int = OFFSET_CAP
) -> Query:
    """The listing request's parameters, the page length cut to the store's `page_limit`,
    or the vendor's 400."""
    sort = query.get("sort", "-updated_at")
    if sort.lstrip("-") not in _SORT_KEYS:
        raise orders.invalid(f"Cannot sort by {sort!r}")
    offset = _integer(query, "page[offset]", default=0)
    if offset > offset_cap:
        raise orders.invalid(f"page[offset] cannot be greater than {offset_cap}")
    return Query(
        clauses=parse_filter(query.get("filter", "")),
        sort=sort,
        limit=min(
            _integer(query, "page[limit]", default=DEFAULT_LIMIT) or 1,
            MAX_LIMIT,
            page_limit or MAX_LIMIT,
        ),
        offset=offset,
        include_items="items" in query.get("include", "").split(","),
        raw=query,
    )


def parse_filter(text: str) -> tuple[Clause, ...]:
    clauses: list[Clause] = []
    position = 0
    while position < len(text):
        match = _CLAUSE.match(text, position)
        if match is None:
            raise orders.invalid("Could not parse the supplied filter")
        clauses.append(_clause(*match.groups()))
        position = match.end()
    return tuple(clauses)


def _clause(op: str, attr: str, raw: str) -> Clause:
    value = raw.strip().strip("'\"")
    if attr in _TEXT_ATTRS and op == "eq":
        return Clause(op, attr, value)
    if attr in _TIME_ATTRS and op in _COMPARE:
        return Clause(op, attr, _moment(value))
    raise orders.invalid("Could not parse the supplied filter")


def _moment(value: str) -> datetime:
    try:
        if value.isdigit():
            return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
        if len(value) == len("YYYY-MM-DD"):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        return orders.parse_time(value)
    except ValueError as exc:
        raise orders.invalid("Could not parse the supplied filter") from exc


def page(
    matches: Sequence[StoredOrder],
    query: Query,
    *,
    url: str,
    render: Callable[[StoredOrder], dict[str, Any]],
    items: Callable[[StoredOrder], list[dict[str, Any]]],
) -> dict[str, Any]:
    """The listing reply for the sorted `matches`; `url` is the endpoint's absolute URL."""
    chosen = matches[query.offset : query.offset + query.limit]
    total, limit = len(matches), query.limit
    pages = max(1, math.ceil(total / limit))
    last_offset = (pages - 1) * limit
    link = _linker(url, query)
    document: dict[str, Any] = {
        "data": [render(order) for order in chosen],
        "links": {
            "current": link(query.offset),
            "first": link(0),
            "last": link(last_offset) if pages > 1 else None,
            "next": link(query.offset + limit) if query.offset + limit < total else None,
            "prev": link(max(0, query.offset - limit)) if query.offset > 0 else None,
        },
        "meta": {
            "page": {
                "current": query.offset // limit + 1,
                "limit": limit,
                "offset": query.offset,
                "total": pages,
            },
            "results": {"total": total},
        },
    }
    if query.include_items:
        document["included"] = {"items": [item for order in chosen for item in items(order)]}
    return document


def sorted_matches(
    all_orders: Sequence[StoredOrder], query: Query, *, offset_cap: int = OFFSET_CAP
) -> list[StoredOrder]:
    """The orders the query selects, in its sort order (ties by id, ascending)."""
    if not query.clauses and len(all_orders) > offset_cap:
        raise orders.invalid(
            f"The store has more than {offset_cap} orders: use a filter to list them"
        )
    key = _SORT_KEYS[query.sort.lstrip("-")]
    matches = sorted((o for o in all_orders if query.accepts(o)), key=lambda o: o.id)
    return sorted(matches, key=key, reverse=query.sort.startswith("-"))


def _linker(url: str, query: Query) -> Callable[[int], str]:
    kept = {k: v for k, v in query.raw.items() if k not in {"page[offset]", "page[limit]"}}

    def link(offset: int) -> str:
        params = {"page[offset]": str(offset), "page[limit]": str(query.limit)} | kept
        return f"{url}?{urlencode(params, safe='[]():,')}"

    return link


def _integer(query: Mapping[str, str], name: str, *, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise orders.invalid(f"{name} must be an integer") from None
    if value < 0:
        raise orders.invalid(f"{name} must not be negative")
    return value
