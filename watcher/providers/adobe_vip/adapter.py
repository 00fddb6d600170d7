"""Adobe VIP Marketplace (Commerce Partner API v3): one customer's orders as canonical Orders.

Listing is `GET {base_url}/v3/customers/{id}/orders?limit=&offset=0&start-date=`, then the
`links.next.uri` of each page (a path relative to base_url that keeps the query) until a
page has none: the vendor's own next link decides, whatever page length it served.
start-date is `since`, or 2000-01-01 for a full re-list: Adobe's default window starts at
the customer's current term start and would hide older orders.

Every call carries the bearer token, the API key (`auth.api_key`, else the client id) and a
fresh uuid4 X-Request-Id and X-Correlation-Id. Adobe replays the cached reply of a
correlation id it has seen for ten days, so a reused id reads stale orders, and a retry
with the id of a 500 would read the 500 again. Each page is retried on its own by the
client; one page that still fails fails the fetch and nothing is returned. An order seen
twice while paging (orders shift when one is created mid-listing) is kept as first seen.
Customers (`customers = "all"`): `GET {base_url}/v3/resellers/{reseller_id}/customers` by
`offset` and `limit=50` (Adobe refuses more) until `totalCount` are read (`list_customers`).

Mapping: `mapping`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from watcher import vendors
from watcher.core.errors import ConfigError, MalformedReplyError
from watcher.core.models import Order
from watcher.core.ports import Listing
from watcher.providers.adobe_vip import mapping, replies
from watcher.providers.client import Dialect, VendorClient, trace_id
from watcher.providers.reply import validate
from watcher.settings import SourceSettings

log = logging.getLogger(__name__)

PROVIDER = mapping.PROVIDER
SCOPE = "openid,AdobeID,read_organizations"
CUSTOMERS_PAGE_SIZE = 50  # Adobe's largest customer page


def _trace_headers() -> dict[str, str]:
    return {"X-Request-Id": trace_id(), "X-Correlation-Id": trace_id()}


DIALECT = Dialect(trace_headers=_trace_headers)


class AdobeVip:
    """The `Provider` of one Adobe VIP Marketplace account (one configured source)."""

    def __init__(self, source: SourceSettings, client: VendorClient) -> None:
        if not source.auth.token_url:
            raise ConfigError(
                f"sources.{source.name}.auth.token_url", "adobe_vip needs a token_url"
            )
        self._source = source
        self._client = client
        self._base_url = source.base_url.rstrip("/")
        self._tokens = client.tokens(
            token_url=source.auth.token_url, fields={"scope": source.auth.scope or SCOPE}
        )
        self._reseller_id = source.options_as(vendors.AdobeVipOptions).reseller_id
        if source.discovers and self._reseller_id is None:
            raise ConfigError(
                f"sources.{source.name}.adobe_vip.reseller_id",
                'customers = "all" needs the reseller whose customers to list',
            )
        api_key = source.auth.api_key
        self._headers = {
            "X-Api-Key": api_key.get_secret_value() if api_key else source.auth.client_id,
            "Content-Type": "application/json",
        }

    async def fetch_orders(
        self, customer_id: str, *, since: datetime | None, changed_since: datetime | None = None
    ) -> list[Order]:
        """Every page of the customer's orders from `since`, or a ProviderError and nothing.

        Adobe cannot filter by update time, so `changed_since` is not used.
        """
        listing = await self.fetch_listing(
            customer_id, since=since, changed_since=changed_since, known={}
        )
        return listing.orders

    async def fetch_listing(
        self,
        customer_id: str,
        *,
        since: datetime | None,
        changed_since: datetime | None,
        known: Mapping[str, str],
    ) -> Listing:
        """`fetch_orders`, with the orders listed with their `known` digest left unmapped."""
        url: str | None = self._first_url(customer_id, since=since)
        visited: set[str] = set()
        orders: dict[str, Order] = {}
        same: set[str] = set()
        digests: dict[str, str] = {}
        while url is not None:
            visited.add(url)
            page = await self._page(customer_id, url, known=known)
            for order in page.orders:
                if order.order_id not in same:
                    orders.setdefault(order.order_id, order)
            same.update(order_id for order_id in page.same if order_id not in orders)
            digests = page.digests | digests  # the first seen of an order is kept
            url = self._next_url(page.next_uri, visited=visited, what=self._what(customer_id, url))
        log.debug(
            "%s customer %s: %d orders (%d as before) in %d pages",
            self._source.name,
            customer_id,
            len(orders) + len(same),
            len(same),
            len(visited),
        )
        return Listing(
            list(orders.values()),
            same=frozenset(same),
            digests={order_id: digests[order_id] for order_id in orders},
        )

    async def list_customers(self) -> list[str]:
        """Every customer of the reseller, page by page, or a ProviderError and nothing."""
        assert self._reseller_id is not None, "checked when the adapter was built"
        reseller = quote(self._reseller_id, safe="")
        found: dict[str, None] = {}
        offset = 0
        while True:
            path = f"/v3/resellers/{reseller}/customers"
            query = urlencode({"offset": offset, "limit": CUSTOMERS_PAGE_SIZE})
            what = f"{self._source.name} ({PROVIDER}) customers: GET {path}?{query}"
            page = await self._client.get(
                f"{self._base_url}{path}?{query}",
                what=what,
                tokens=self._tokens,
                parse=_customer_page,
                headers=self._headers,
            )
            found.update(dict.fromkeys(page.ids))
            offset += len(page.ids)
            # An empty page before totalCount: the list shrank while it was read.
            if not page.ids or offset >= page.total_count:
                return list(found)

    def _first_url(self, customer_id: str, *, since: datetime | None) -> str:
        query = urlencode(
            {"limit": self._source.page_size, "offset": 0, "start-date": mapping.start_date(since)},
            safe=":",
        )
        return f"{self._base_url}/v3/customers/{quote(customer_id, safe='')}/orders?{query}"

    def _next_url(self, uri: str | None, *, visited: Collection[str], what: str) -> str | None:
        if uri is None:
            return None
        url = (
            uri
            if uri.startswith(("http://", "https://"))
            else f"{self._base_url}/{uri.lstrip('/')}"
        )
        # Only the link's path is quoted: its query is the vendor's and may carry anything.
        if not url.startswith(f"{self._base_url}/"):
            raise MalformedReplyError(
                f"{what}: links.next leaves {self._base_url}: {urlsplit(uri).path!r}"
            )
        if url in visited:
            raise MalformedReplyError(
                f"{what}: links.next points back to a page already read: {urlsplit(uri).path!r}"
            )
        return url

    async def _page(self, customer_id: str, url: str, *, known: Mapping[str, str]) -> mapping.Page:
        def parse(document: Any, *, what: str) -> mapping.Page:
            return mapping.parse_page(
                document, source=self._source.name, customer_id=customer_id, what=what, known=known
            )

        what = self._what(customer_id, url)
        return await self._client.get(
            url, what=what, tokens=self._tokens, parse=parse, headers=self._headers
        )

    def _what(self, customer_id: str, url: str) -> str:
        path = url.removeprefix(self._base_url)
        return f"{self._source.name} ({PROVIDER}) customer {customer_id}: GET {path}"


def _customer_page(document: Any, *, what: str) -> replies.CustomerPage:
    return validate(replies.CustomerPage, document, what=what)
