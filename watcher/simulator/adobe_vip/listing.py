"""Adobe's order list: query parameters, filters, and pages with links.

`parse` reads the query string the way the Commerce Partner API documents it:

- start-date / end-date: `YYYY-MM-DD` (midnight UTC) or ISO-8601 with Z, both inclusive;
  start-date defaults to 365 days before now (standing in for the current term start),
  end-date to now.
- limit 1..100, default 25, larger values clamped to 100; offset 0..N.
- status, order-type, offer-id and reference-order-id filters: repeated values are ORed,
  different parameters ANDed. reseller-id, fetch-price and unknown parameters are ignored.
- An unreadable value gives 400 code 1132 (invalid search parameter).

`page` slices orders that are already filtered and sorted (newest first) and writes the
links: self always, next and prev only when such a page exists. Each link is a path relative
to the base URL that keeps the caller's other parameters, so following `links.next.uri`
walks the same query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from multidict import MultiMapping

from watcher.simulator.adobe_vip import orders as adobe_orders

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
DEFAULT_WINDOW = timedelta(days=365)
_FILTERS = {
    "status": "status",
    "order-type": "orderType",
    "reference-order-id": "referenceOrderId",
    "offer-id": "offerId",
}
_PAGING = frozenset({"offset", "limit"})


@dataclass(frozen=True, slots=True)
class Query:
    start: datetime
    end: datetime
    limit: int
    offset: int
    filters: tuple[tuple[str, frozenset[str]], ...]
    passthrough: tuple[tuple[str, str], ...]

    def accepts(self, order: Mapping[str, Any]) -> bool:
        """Whether `order` passes every filter of this query (dates are checked by the caller)."""
        return all(_matches(order, field, values) for field, values in self.filters)


def parse(params: MultiMapping[str], *, now: datetime, page_limit: int | None = None) -> Query:
    """The query in `params`, its limit cut to the world's `page_limit`; ApiError 1132 when a
    value cannot be read."""
    return Query(
        start=_moment(params, "start-date", default=now - DEFAULT_WINDOW),
        end=_moment(params, "end-date", default=now),
        limit=min(
            _integer(params, "limit", default=DEFAULT_LIMIT, minimum=1),
            MAX_LIMIT,
            page_limit or MAX_LIMIT,
        ),
        offset=_integer(params, "offset", default=0, minimum=0),
        filters=tuple(
            (field, frozenset(params.getall(name)))
            for name, field in _FILTERS.items()
            if name in params
        ),
        passthrough=tuple((k, v) for k, v in params.items() if k not in _PAGING),
    )


def page(orders: Sequence[Mapping[str, Any]], query: Query, *, path: str) -> dict[str, Any]:
    """One page of `orders` in Adobe's list shape; ApiError 1133 past the end."""
    total = len(orders)
    if query.offset > total:
        raise adobe_orders.ApiError(400, "1133", "Offset out of range")
    items = orders[query.offset : query.offset + query.limit]
    links = {"self": _link(path, query, offset=query.offset)}
    if query.offset + query.limit < total:
        links["next"] = _link(path, query, offset=query.offset + query.limit)
    if query.offset > 0:
        links["prev"] = _link(path, query, offset=max(0, query.offset - query.limit))
    return {
        "totalCount": total,
        "count": len(items),
        "offset": query.offset,
        "limit": query.limit,
        "items": list(items),
        "links": links,
    }


def _link(path: str, query: Query, *, offset: int) -> dict[str, Any]:
    pairs = [("offset", str(offset)), ("limit", str(query.limit)), *query.passthrough]
    return adobe_orders.self_link(f"{path}?{urlencode(pairs, safe=':')}")


def _matches(order: Mapping[str, Any], field: str, values: frozenset[str]) -> bool:
    if field == "offerId":
        return any(line.get("offerId") in values for line in order["lineItems"])
    return order.get(field) in values


def _moment(params: MultiMapping[str], name: str, *, default: datetime) -> datetime:
    if name not in params:
        return default
    try:
        return adobe_orders.parse_time(params[name])
    except ValueError as exc:
        raise _bad_parameter(name, params[name]) from exc


def _integer(params: MultiMapping[str], name: str, *, default: int, minimum: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < minimum:
        raise _bad_parameter(name, raw)
    return int(raw)


def _bad_parameter(name: str, value: str) -> adobe_orders.ApiError:
    return adobe_orders.ApiError(400, "1132", f"Invalid search parameter {name}={value!r}")


CUSTOMERS_DEFAULT_LIMIT, CUSTOMERS_MAX_LIMIT = 20, 50


def customer_page(
    params: MultiMapping[str], customers: Sequence[Mapping[str, Any]], *, key: str
) -> dict[str, Any]:
    """A page of a reseller's `customers` in Adobe's shape, under `key` ("accounts" in the
    current documentation's sample, "customers" in its field table). A limit outside 1..50
    is refused, as Adobe refuses it (1132)."""
    limit = _integer(params, "limit", default=CUSTOMERS_DEFAULT_LIMIT, minimum=1)
    if limit > CUSTOMERS_MAX_LIMIT:
        raise _bad_parameter("limit", str(limit))
    offset = _integer(params, "offset", default=0, minimum=0)
    items = list(customers[offset : offset + limit])
    return {
        "totalCount": len(customers),
        "count": len(items),
        "offset": offset,
        "limit": limit,
        key: items,
    }
