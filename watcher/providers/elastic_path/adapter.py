"""Elastic Path Commerce Cloud: a customer's (or account's) orders, or the whole store's.

Listing is `GET {base_url}/v2/orders` with a client-credentials token, asking for pages of
`page[limit]` (the source's page_size, at most 100). A store serves at most its own page
length (25 by default, configurable per store), whatever is asked, so the next
`page[offset]` is the previous one plus the orders the page actually held, until an empty
page or `meta.results.total`:

    filter = eq(customer_id,<id>)                       full re-list (since None)
           = eq(customer_id,<id>):ge(created_at,<since>) windowed
           = eq(customer_id,<id>):ge(updated_at,<changed_since - overlap>)  incremental
           = ge(updated_at,<changed_since - overlap>)   incremental, the whole store
    sort = created_at      include = items

`customer_id` becomes `account_id` with `elastic_path.customer_filter = "account_id"`.
Clauses are joined by `:` (AND); times are UTC with milliseconds, as in the vendor's own
delta-sync example. The overlap (`elastic_path.updated_overlap_s`) covers the vendor's
eventual consistency (about a minute) and clock skew; orders read twice are harmless.

Paging is sorted by created_at ascending because that key never changes: an order updated
or created while we page can only be read twice (it joins the filtered set, or it lands on
the last page), never skipped. Sorting by updated_at would move an updated order from an
early page to the end and shift a later one into a page already read. An order read twice
is kept as last read. Reply models: `replies`; mapping: `mapping`.

`/v2/orders` refuses offsets past 10,000. Since pages are sorted by created_at, a listing
that runs into that cap goes on from the created_at of the last order read (at the
millisecond, `ge(created_at,...)` added to the filter) at offset 0; the orders of that last
millisecond are read again and skipped. Paging costs no extra call that way, whatever the
size of the store. Only more than 10,000 orders created within one millisecond cannot be
read: a PermanentProviderError naming the filter. Items come with the page
(`include=items`); an order whose items the page does not carry (the include ignored, an
item missing) gets `GET /v2/orders/{id}/items`.

Store-wide (`customers = "all"`, `store_orders`): the same listing without the owner
clause, so a poll costs a page per 100 changed orders whatever the number of customers.
Each order's customer is `relationships.customer` (or `relationships.account`, with
`customer_filter = "account_id"`); orders with none (guest checkouts) are counted in the
log and not watched. A full re-list keeps a `ge(created_at,...)` clause (the epoch at
least), since the store refuses an unfiltered listing once it holds more orders than the
offset cap.

Rate: Elastic Path allows 100 requests/s per production store and 25 per development
store, counted for every client of the store together (storefront included) and without
any rate-limit headers. The default (`watcher.vendors`) is 10/s with bursts of 10, so even
on a development store the watcher never uses more than 20 of its 25 requests in a second.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from urllib.parse import quote, urlencode

from watcher import vendors
from watcher.core.errors import PermanentProviderError
from watcher.core.models import Order
from watcher.providers.client import Dialect, Parse, VendorClient
from watcher.providers.elastic_path import mapping, replies
from watcher.settings import SourceSettings

log = logging.getLogger(__name__)

PROVIDER = mapping.PROVIDER
TOKEN_PATH = "/oauth/access_token"
OFFSET_CAP = 10_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STORE_WIDE = "store-wide"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]+$")
DIALECT = Dialect()
T = TypeVar("T")
Listed = tuple[replies.VendorOrder, list[replies.Item]]  # an order and its items


def filter_time(moment: datetime) -> str:
    """A filter timestamp: UTC with milliseconds, e.g. 2018-04-16T10:11:59.715Z."""
    utc = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def order_filter(
    owner: str,
    owner_id: str | None,
    *,
    since: datetime | None,
    changed_since: datetime | None,
    overlap_s: float,
) -> str:
    """The `filter` value for one customer's (or account's) listing; the whole store's
    when `owner_id` is None."""
    clauses = [] if owner_id is None else [f"eq({owner},{owner_id})"]
    if changed_since is not None:
        start = changed_since - timedelta(seconds=overlap_s)
        clauses.append(f"ge(updated_at,{filter_time(start)})")
    elif since is not None or owner_id is None:
        clauses.append(f"ge(created_at,{filter_time(since or EPOCH)})")
    return ":".join(clauses)


def resumed_filter(query: str, start: datetime | None) -> str:
    """`query` narrowed to orders created at `start` or later."""
    if start is None:
        return query
    return ":".join([*filter(None, [query]), f"ge(created_at,{filter_time(start)})"])


class ElasticPath:
    """The `Provider` of one Elastic Path store (one configured source), and its
    `StoreFeed` for `customers = "all"`."""

    offset_cap = OFFSET_CAP  # the deepest page[offset] the store serves

    def __init__(self, source: SourceSettings, client: VendorClient) -> None:
        self._source = source
        self._client = client
        self._base_url = source.base_url.rstrip("/")
        self._tokens = client.tokens(token_url=source.auth.token_url or self._base_url + TOKEN_PATH)
        self._options = source.options_as(vendors.ElasticPathOptions)

    async def fetch_orders(
        self, customer_id: str, *, since: datetime | None, changed_since: datetime | None = None
    ) -> list[Order]:
        """Every page of the customer's orders, or a ProviderError and nothing."""
        self._check_id(customer_id)
        query = self._filter(customer_id, since=since, changed_since=changed_since)
        who = f"customer {customer_id}"
        orders: dict[str, Order] = {}
        async for page in self._pages(query, who=who):
            for vendor, items in page:
                order = mapping.to_order(
                    vendor, items, source=self._source.name, customer_id=customer_id
                )
                orders[order.order_id] = order
        log.debug("%s customer %s: %d orders", self._source.name, customer_id, len(orders))
        return list(orders.values())

    async def store_orders(
        self, *, since: datetime | None, changed_since: datetime | None
    ) -> AsyncGenerator[list[Order], None]:
        """The orders of the whole store, a page at a time, each with its customer."""
        kind = self._options.customer_filter.removesuffix("_id")
        query = self._filter(None, since=since, changed_since=changed_since)
        unowned = 0
        async for page in self._pages(query, who=STORE_WIDE):
            found = []
            for vendor, items in page:
                owner = vendor.owner(kind)
                if owner is None:
                    unowned += 1
                    continue
                found.append(
                    mapping.to_order(vendor, items, source=self._source.name, customer_id=owner)
                )
            yield found
        if unowned:
            log.info(
                "%s: %d orders listed belong to no %s and are not watched",
                self._source.name,
                unowned,
                kind,
            )

    def _filter(
        self, owner_id: str | None, *, since: datetime | None, changed_since: datetime | None
    ) -> str:
        return order_filter(
            self._options.customer_filter,
            owner_id,
            since=since,
            changed_since=changed_since,
            overlap_s=self._options.updated_overlap_s,
        )

    async def _pages(self, query: str, *, who: str) -> AsyncIterator[list[Listed]]:
        """Every page of the listing, each order with its items and read once. Past the
        offset cap the listing goes on from the last order's created_at (see above)."""
        start: datetime | None = None
        offset = 0
        again: set[str] = set()  # the orders of `start`'s millisecond, read already
        while True:
            narrowed = resumed_filter(query, start)
            page = await self._page(narrowed, offset=offset, who=who)
            fresh = [order for order in page.data if order.id not in again]
            yield await self._with_items(page, fresh, who=who)
            offset += len(page.data)
            if not page.data or offset >= page.meta.results.total:
                return
            if offset > self.offset_cap:
                start, again = self._resume(page, start, query=narrowed, who=who)
                offset = 0

    def _resume(
        self, page: replies.Page, start: datetime | None, *, query: str, who: str
    ) -> tuple[datetime, set[str]]:
        """Where a listing stopped by the offset cap goes on: the millisecond of the last
        order read, and the orders of that millisecond already read."""
        last = page.data[-1].meta.timestamps.created_at
        resume = None if last is None else _millisecond(last)
        if resume is None or (start is not None and resume <= start):
            raise PermanentProviderError(
                f"{self._source.name} ({PROVIDER}) {who}: more than {self.offset_cap} orders "
                f"match filter={query} within one millisecond of created_at, and /v2/orders "
                f"pages only through the first {self.offset_cap}"
            )
        again = {
            order.id
            for order in page.data
            if order.meta.timestamps.created_at is not None
            and _millisecond(order.meta.timestamps.created_at) == resume
        }
        return resume, again

    async def _with_items(
        self, page: replies.Page, orders: list[replies.VendorOrder], *, who: str
    ) -> list[Listed]:
        """Each of `orders` with its items, from the page or asked for."""
        included = page.included_items()
        found = []
        for vendor in orders:
            ids = vendor.item_ids()
            if ids is not None and all(item_id in included for item_id in ids):
                items = [included[item_id] for item_id in ids]
            else:
                items = await self._items(vendor.id, who=who)
            found.append((vendor, items))
        return found

    async def _page(self, query: str, *, offset: int, who: str) -> replies.Page:
        params = {
            "page[limit]": str(self._source.page_size),
            "page[offset]": str(offset),
            "sort": "created_at",
            "filter": query,
            "include": "items",
        }
        path = f"/v2/orders?{urlencode(params, safe='[]():,')}"
        return await self._get(path, what=self._what(who, path), parse=replies.parse_page)

    async def _items(self, order_id: str, *, who: str) -> list[replies.Item]:
        path = f"/v2/orders/{quote(order_id, safe='')}/items"
        return await self._get(path, what=self._what(who, path), parse=replies.parse_items)

    async def _get(self, path: str, *, what: str, parse: Parse[T]) -> T:
        url = self._base_url + path
        return await self._client.get(url, what=what, tokens=self._tokens, parse=parse)

    def _check_id(self, customer_id: str) -> None:
        if not _SAFE_ID.match(customer_id):
            raise PermanentProviderError(
                f"{self._source.name} ({PROVIDER}): customer {customer_id!r} cannot be used "
                "in a filter (letters, digits, '.', '_' and '-' only)"
            )

    def _what(self, who: str, path: str) -> str:
        return f"{self._source.name} ({PROVIDER}) {who}: GET {path}"


def _millisecond(moment: datetime) -> datetime:
    """`moment` cut to the millisecond (filters carry no finer time)."""
    utc = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond - utc.microsecond % 1000)
