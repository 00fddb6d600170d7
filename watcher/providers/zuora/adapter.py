"""Zuora Quickstart API v2: one account's orders as canonical Orders.

`base_url` is the REST host (`https://rest.zuora.com`, with or without `/v2`); tokens come
from `{host}/oauth/token` (no /v2; `auth.token_url` overrides it) with the
client-credentials grant and are reused until shortly before `expires_in` runs out.

Listing is `GET /v2/orders?filter[]=account_id.EQ:<account>&expand[]=line_items
&expand[]=subscriptions&expand[]=subscriptions.subscription_plans
&expand[]=subscriptions.subscription_plans.subscription_items&page_size=<=99`, then the
same query with `cursor=<next_page>` until a page has none. Every level of the expansion
is named, so the reply holds line items, subscriptions and their items whether or not
Zuora expands parents of a nested path. Expanded line items with a `next_page` are
continued with `GET /v2/orders/{order_number}?expand[]=line_items&page_size=99&cursor=`
until they end; the document gives cursors only to list operations, so this continuation
is inferred from the shape of the expanded list.

Time window. With `changed_since` (the last successful sync), the listing adds
`filter[]=updated_time.GT:<changed_since - UPDATED_OVERLAP_S>`: Zuora's filter tutorial
shows GT on `updated_time`, but not for orders. If Zuora refuses the filter (400 naming a
filter), the adapter lists every order of the account instead, now and for the rest of
its life, and says so once in the log: slower, never less complete. The periodic full
re-list (`since=None`) never filters. `since` (the creation look-back) is applied to
`created_time` here, after listing, since no creation filter is documented either.

Every call carries a fresh `zuora-track-id` (token calls too); the client reads the
RateLimit-* headers and pauses the source when the budget is spent (`guard.Budget`), and
reads Zuora's error bodies with `replies.read_error` (the `zuora-request-id` goes into
every message). Each page and each line continuation is
retried on its own; one that still fails fails the whole fetch and nothing is returned.
An order seen twice while paging (it moved when updated mid-listing) is kept as first seen.

Tenant-wide (`customers = "all"`, `store_orders`): the same listing without the account
filter, so a poll costs a page per 99 changed orders whatever the number of accounts; each
order's customer is its `account_id`, and an order without one is counted in the log and
not watched.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from urllib.parse import quote, urlencode

from pydantic import BaseModel

from watcher.core.errors import MalformedReplyError
from watcher.core.models import Order
from watcher.providers.client import Dialect, VendorClient, trace_id
from watcher.providers.reply import validate
from watcher.providers.translate import BadRequest
from watcher.providers.zuora import mapping, replies
from watcher.settings import SourceSettings

log = logging.getLogger(__name__)

PROVIDER = mapping.PROVIDER
MAX_PAGE_SIZE = 99
UPDATED_OVERLAP_S = 300.0
STORE_WIDE = "store-wide"
EXPAND = (
    "line_items",
    "subscriptions",
    "subscriptions.subscription_plans",
    "subscriptions.subscription_plans.subscription_items",
)
M = TypeVar("M", bound=BaseModel)


def _trace_headers() -> dict[str, str]:
    return {"zuora-track-id": trace_id().replace("-", "")}


DIALECT = Dialect(
    trace_headers=_trace_headers,
    read_error=replies.read_error,
    request_id_header="zuora-request-id",
)


class Zuora:
    """The `Provider` of one Zuora tenant (one configured source), and its `StoreFeed` for
    `customers = "all"`; customers are accounts."""

    def __init__(self, source: SourceSettings, client: VendorClient) -> None:
        host = source.base_url.rstrip("/").removesuffix("/v2")
        self._source = source
        self._client = client
        self._api = f"{host}/v2"
        self._tokens = client.tokens(token_url=source.auth.token_url or f"{host}/oauth/token")
        self._filter_by_update = True

    async def fetch_orders(
        self, customer_id: str, *, since: datetime | None, changed_since: datetime | None = None
    ) -> list[Order]:
        """Every page of the account's orders (changed since `changed_since`), or nothing."""
        orders: list[Order] = []
        async for page in self._orders(customer_id, since=since, changed_since=changed_since):
            orders += page
        log.debug("%s account %s: %d orders", self._source.name, customer_id, len(orders))
        return orders

    async def store_orders(
        self, *, since: datetime | None, changed_since: datetime | None
    ) -> AsyncGenerator[list[Order], None]:
        """The orders of every account of the tenant, a page at a time."""
        async for page in self._orders(None, since=since, changed_since=changed_since):
            yield page

    async def _orders(
        self, account_id: str | None, *, since: datetime | None, changed_since: datetime | None
    ) -> AsyncGenerator[list[Order], None]:
        """The orders of one account, or of all (None), a page at a time, each once."""
        changed_after = None
        if changed_since is not None and self._filter_by_update:
            changed_after = changed_since - timedelta(seconds=UPDATED_OVERLAP_S)
        seen: set[str] = set()
        unowned = 0
        async for page in self._pages(account_id, changed_after=changed_after):
            found = []
            for vendor_order in page.data:
                owner = account_id or vendor_order.account_id
                if vendor_order.key in seen:
                    continue
                seen.add(vendor_order.key)
                if owner is None:
                    unowned += 1
                    continue
                order = await self._order(owner, vendor_order)
                if _created_since(order, since):
                    found.append(order)
            yield found
        if unowned:
            log.warning("%s: %d orders listed name no account_id", self._source.name, unowned)

    async def _pages(
        self, account_id: str | None, *, changed_after: datetime | None
    ) -> AsyncIterator[replies.OrderPage]:
        cursors: set[str] = set()
        cursor: str | None = None
        who = STORE_WIDE if account_id is None else f"account {account_id}"
        while True:
            url = self._list_url(account_id, changed_after=changed_after, cursor=cursor)
            what = self._what(who, url)
            try:
                page = await self._get(url, replies.OrderPage, what=what)
            except BadRequest as exc:
                if cursor is not None or changed_after is None or "filter" not in str(exc):
                    raise
                log.warning("%s: listing every order from now on: %s", self._source.name, exc)
                self._filter_by_update = False
                changed_after = None
                continue
            yield page
            if page.next_page is None:
                return
            if page.next_page in cursors:
                raise MalformedReplyError(f"{what}: next_page repeats a cursor already read")
            cursors.add(cursor := page.next_page)

    async def _order(self, customer_id: str, order: replies.VendorOrder) -> Order:
        lines, cursor = mapping.first_lines(order)
        cursors: set[str] = set()
        while cursor is not None:
            cursors.add(cursor)
            url = self._lines_url(order.key, cursor=cursor)
            what = self._what(f"account {customer_id}", url)
            more = await self._get(url, replies.VendorOrder, what=what)
            if more.line_items is None:
                raise MalformedReplyError(f"{what}: the reply has no line_items")
            page, cursor = mapping.first_lines(more)
            lines += page
            if cursor in cursors:
                raise MalformedReplyError(f"{what}: line_items.next_page repeats a cursor")
        return mapping.to_order(
            order,
            lines=lines,
            source=self._source.name,
            customer_id=customer_id,
            what=self._what(f"account {customer_id}", f"{self._api}/orders/{order.key}"),
        )

    async def _get(self, url: str, model: type[M], *, what: str) -> M:
        def parse(document: object, *, what: str) -> M:
            return validate(model, document, what=what)

        return await self._client.get(url, what=what, tokens=self._tokens, parse=parse)

    def _list_url(
        self, account_id: str | None, *, changed_after: datetime | None, cursor: str | None
    ) -> str:
        query = [] if account_id is None else [("filter[]", f"account_id.EQ:{account_id}")]
        if changed_after is not None:
            query.append(("filter[]", f"updated_time.GT:{_timestamp(changed_after)}"))
        query += [("expand[]", value) for value in EXPAND]
        query.append(("page_size", str(min(self._source.page_size, MAX_PAGE_SIZE))))
        if cursor is not None:
            query.append(("cursor", cursor))
        return f"{self._api}/orders?{urlencode(query, quote_via=quote)}"

    def _lines_url(self, order_key: str, *, cursor: str) -> str:
        query = [("expand[]", "line_items"), ("page_size", str(MAX_PAGE_SIZE)), ("cursor", cursor)]
        path = f"/orders/{quote(order_key, safe='')}"
        return f"{self._api}{path}?{urlencode(query, quote_via=quote)}"

    def _what(self, who: str, url: str) -> str:
        path = url.removeprefix(self._api.rsplit("/v2", 1)[0]).split("?", 1)[0]
        return f"{self._source.name} ({PROVIDER}) {who}: GET {path}"


def _timestamp(moment: datetime) -> str:
    return _aware(moment).astimezone(UTC).isoformat(timespec="seconds")


def _created_since(order: Order, since: datetime | None) -> bool:
    if since is None or order.created_at is None:
        return True
    return _aware(order.created_at) >= _aware(since)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
