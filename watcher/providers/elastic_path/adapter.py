"""Elastic Path Commerce Cloud: one customer's (or account's) orders as canonical Orders.

Listing is `GET {base_url}/v2/orders` with a client-credentials token, asking for pages of
`page[limit]` (the source's page_size, at most 100). A store serves at most its own page
length (25 by default, configurable per store), whatever is asked, so the next
`page[offset]` is the previous one plus the orders the page actually held, until an empty
page or `meta.results.total`:

    filter = eq(customer_id,<id>)                       full re-list (since None)
           = eq(customer_id,<id>):ge(created_at,<since>) windowed
           = eq(customer_id,<id>):ge(updated_at,<changed_since - overlap>)  incremental
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

`/v2/orders` refuses offsets past 10,000. A listing whose `meta.results.total` exceeds
that cannot be read in full, so the fetch fails at once with a PermanentProviderError that
names the filter: no retry widens the cap and a partial listing would silently miss
orders; shorten the source's lookback_days or poll more often. Items come with the page
(`include=items`); an order whose items the page does not carry (the include ignored, an
item missing) gets `GET /v2/orders/{id}/items`.

Rate: Elastic Path allows 100 requests/s per production store and 25 per development
store, counted for every client of the store together (storefront included) and without
any rate-limit headers. The default (`watcher.vendors`) is 10/s with bursts of 10, so even
on a development store the watcher never uses more than 20 of its 25 requests in a second.
"""

from __future__ import annotations

import logging
import re
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
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]+$")
DIALECT = Dialect()
T = TypeVar("T")


def filter_time(moment: datetime) -> str:
    """A filter timestamp: UTC with milliseconds, e.g. 2018-04-16T10:11:59.715Z."""
    utc = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def order_filter(
    owner: str,
    owner_id: str,
    *,
    since: datetime | None,
    changed_since: datetime | None,
    overlap_s: float,
) -> str:
    """The `filter` value for one customer's (or account's) listing."""
    clauses = [f"eq({owner},{owner_id})"]
    if changed_since is not None:
        start = changed_since - timedelta(seconds=overlap_s)
        clauses.append(f"ge(updated_at,{filter_time(start)})")
    elif since is not None:
        clauses.append(f"ge(created_at,{filter_time(since)})")
    return ":".join(clauses)


class ElasticPath:
    """The `Provider` of one Elastic Path store (one configured source)."""

    def __init__(self, source: SourceSettings, client: VendorClient) -> None:
        self._source = source
        self._client = client
        self._base_url = source.base_url.rstrip("/")
        self._tokens = client.tokens(token_url=source.auth.token_url or self._base_url + TOKEN_PATH)

    async def fetch_orders(
        self, customer_id: str, *, since: datetime | None, changed_since: datetime | None = None
    ) -> list[Order]:
        """Every page of the customer's orders, or a ProviderError and nothing."""
        self._check_id(customer_id)
        settings = self._source.options_as(vendors.ElasticPathOptions)
        query = order_filter(
            settings.customer_filter,
            customer_id,
            since=since,
            changed_since=changed_since,
            overlap_s=settings.updated_overlap_s,
        )
        orders: dict[str, Order] = {}
        offset, total = 0, 1
        while offset < total:
            page = await self._page(customer_id, query, offset=offset)
            total = page.meta.results.total
            self._check_cap(customer_id, query, total=total)
            for order in await self._orders(customer_id, page):
                orders[order.order_id] = order
            # The store decides the page length: step by what it served, stop when it
            # serves nothing more.
            offset = offset + len(page.data) if page.data else total
        log.debug("%s customer %s: %d orders", self._source.name, customer_id, len(orders))
        return list(orders.values())

    async def _orders(self, customer_id: str, page: replies.Page) -> list[Order]:
        included = page.included_items()
        found = []
        for vendor in page.data:
            ids = vendor.item_ids()
            if ids is not None and all(item_id in included for item_id in ids):
                items = [included[item_id] for item_id in ids]
            else:
                items = await self._items(customer_id, vendor.id)
            found.append(
                mapping.to_order(vendor, items, source=self._source.name, customer_id=customer_id)
            )
        return found

    async def _page(self, customer_id: str, query: str, *, offset: int) -> replies.Page:
        params = {
            "page[limit]": str(self._source.page_size),
            "page[offset]": str(offset),
            "sort": "created_at",
            "filter": query,
            "include": "items",
        }
        path = f"/v2/orders?{urlencode(params, safe='[]():,')}"
        what = self._what(customer_id, path)
        return await self._get(path, what=what, parse=replies.parse_page)

    async def _items(self, customer_id: str, order_id: str) -> list[replies.Item]:
        path = f"/v2/orders/{quote(order_id, safe='')}/items"
        what = self._what(customer_id, path)
        return await self._get(path, what=what, parse=replies.parse_items)

    async def _get(self, path: str, *, what: str, parse: Parse[T]) -> T:
        url = self._base_url + path
        return await self._client.get(url, what=what, tokens=self._tokens, parse=parse)

    def _check_id(self, customer_id: str) -> None:
        if not _SAFE_ID.match(customer_id):
            raise PermanentProviderError(
                f"{self._source.name} ({PROVIDER}): customer {customer_id!r} cannot be used "
                "in a filter (letters, digits, '.', '_' and '-' only)"
            )

    def _check_cap(self, customer_id: str, query: str, *, total: int) -> None:
        if total > OFFSET_CAP:
            raise PermanentProviderError(
                f"{self._source.name} ({PROVIDER}) customer {customer_id}: {total} orders match "
                f"filter={query}, but /v2/orders pages only through the first {OFFSET_CAP}; "
                f"shorten sources.{self._source.name}.lookback_days or poll more often"
            )

    def _what(self, customer_id: str, path: str) -> str:
        return f"{self._source.name} ({PROVIDER}) customer {customer_id}: GET {path}"
