"""Adobe VIP Marketplace (Commerce Partner API v3): one customer's orders as canonical Orders.

Listing is `GET {base_url}/v3/customers/{id}/orders?limit=&offset=0&start-date=`, then the
`links.next.uri` of each page (a path relative to base_url that keeps the query) until a
page has none. start-date is `since`, or 2000-01-01 for a full re-list: Adobe's default
window starts at the customer's current term start and would hide older orders.

Every call carries the bearer token, the API key (`auth.api_key`, else the client id) and a
fresh uuid4 X-Request-Id and X-Correlation-Id. Adobe replays the cached reply of a
correlation id it has seen for ten days, so a reused id reads stale orders, and a retry
with the id of a 500 would read the 500 again. Each page is retried on its own
(`http.with_retries` around `tokens.authorized`); one page that still fails fails the fetch
and nothing is returned.

Mapping (order and line `status`, a 4-digit string):

    1000 completed, 1002 pending, 1008 cancelled,
    1004 / 1020 / 1022 / 1024 / 1026 failed, anything else unknown (raw kept)

A line's provisioning: 1008 -> cancelled, a failure code -> failed, a subscriptionId ->
provisioned, otherwise pending; its raw value is the subscriptionId. PREVIEW* orders are
quotes Adobe never persists and are skipped. An order seen twice while paging (orders shift
when one is created mid-listing) is kept as first seen.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from pydantic import Field

from watcher.core.errors import ConfigError, MalformedReplyError
from watcher.core.models import LineItem, Order, OrderStatus, Provisioning
from watcher.providers import guard, http, tokens
from watcher.settings import SourceSettings

log = logging.getLogger(__name__)

PROVIDER = "adobe_vip"
FULL_RELIST_START = datetime(2000, 1, 1, tzinfo=UTC)
SCOPE = "openid,AdobeID,read_organizations"
# Adobe documents no rate limit ("no limiting is done"), yet has a 429 code: stay modest.
RATE_PER_S = 10.0
BURST = 20
FAILED_CODES = frozenset({"1004", "1020", "1022", "1024", "1026"})
_STATUSES = {
    "1000": OrderStatus.COMPLETED,
    "1002": OrderStatus.PENDING,
    "1008": OrderStatus.CANCELLED,
} | dict.fromkeys(FAILED_CODES, OrderStatus.FAILED)


class _Vendor(http.CamelCaseReply):
    """A part of a reply, in the vendor's camelCase."""


class _Line(_Vendor):
    ext_line_item_number: int
    offer_id: str
    quantity: int
    status: str
    subscription_id: str | None = None


class _Order(_Vendor):
    order_id: str = Field(min_length=1)
    order_type: str = ""
    status: str
    creation_date: datetime | None = None
    external_reference_id: str | None = None
    line_items: list[_Line] = Field(default_factory=list)


class _Link(_Vendor):
    uri: str


class _Links(_Vendor):
    next: _Link | None = None


class _Page(_Vendor):
    items: list[_Order]
    links: _Links = Field(default_factory=_Links)


@dataclass(frozen=True, slots=True)
class Page:
    """One listing page: its orders (previews skipped) and the next page's URI, if any."""

    orders: list[Order]
    next_uri: str | None


def status(raw: str) -> OrderStatus:
    """The normalised status of an Adobe order or line status code."""
    return _STATUSES.get(raw.strip(), OrderStatus.UNKNOWN)


def provisioning(status_raw: str, subscription_id: str) -> Provisioning:
    """Provisioning of a line: Adobe shows it only as the status and the subscriptionId."""
    code = status_raw.strip()
    if code == "1008":
        return Provisioning.CANCELLED
    if code in FAILED_CODES:
        return Provisioning.FAILED
    return Provisioning.PROVISIONED if subscription_id else Provisioning.PENDING


def parse_page(document: Any, *, source: str, customer_id: str, what: str) -> Page:
    """A decoded listing reply as canonical orders, or MalformedReplyError."""
    page = http.validate(_Page, document, what=what)
    orders = [
        _to_order(item, source=source, customer_id=customer_id)
        for item in page.items
        if not item.order_type.upper().startswith("PREVIEW")
    ]
    return Page(orders=orders, next_uri=page.links.next.uri if page.links.next else None)


def _to_order(item: _Order, *, source: str, customer_id: str) -> Order:
    return Order(
        provider=PROVIDER,
        source=source,
        customer_id=customer_id,
        order_id=item.order_id,
        status=status(item.status),
        status_raw=item.status,
        created_at=item.creation_date,
        reference=item.external_reference_id or None,
        line_items=tuple(_to_line(line) for line in item.line_items),
    )


def _to_line(line: _Line) -> LineItem:
    subscription_id = (line.subscription_id or "").strip()
    return LineItem(
        key=str(line.ext_line_item_number),
        offer=line.offer_id,
        quantity=line.quantity,
        status=status(line.status),
        status_raw=line.status,
        subscription_id=subscription_id or None,
        provisioning=provisioning(line.status, subscription_id),
        provisioning_raw=subscription_id,
    )


def start_date(since: datetime | None) -> str:
    """The start-date query value: `since` in UTC ('Z'), or the far past for a full re-list."""
    moment = FULL_RELIST_START if since is None else since
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AdobeVip:
    """The `Provider` of one Adobe VIP Marketplace account (one configured source)."""

    def __init__(
        self,
        source: SourceSettings,
        session: aiohttp.ClientSession,
        *,
        sleep: http.Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        clock: tokens.Clock = time.monotonic,
    ) -> None:
        if not source.auth.token_url:
            raise ConfigError(
                f"sources.{source.name}.auth.token_url", "adobe_vip needs a token_url"
            )
        self._source = source
        self._session = session
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._base_url = source.base_url.rstrip("/")
        self._limiter = guard.RateLimiter.for_source(
            source.limits, default_rate_per_s=RATE_PER_S, default_burst=BURST
        )
        self._tokens = tokens.TokenCache(
            session,
            source.auth,
            token_url=source.auth.token_url,
            timeout_s=source.timeout_s,
            fields={"scope": source.auth.scope or SCOPE},
            limiter=self._limiter,
            clock=clock,
        )
        api_key = source.auth.api_key
        self._api_key = api_key.get_secret_value() if api_key else source.auth.client_id
        self._key_secret = api_key.get_secret_value() if api_key else ""

    async def fetch_orders(
        self, customer_id: str, *, since: datetime | None, changed_since: datetime | None = None
    ) -> list[Order]:
        """Every page of the customer's orders from `since`, or a ProviderError and nothing.

        Adobe cannot filter by update time, so `changed_since` is not used.
        """
        url: str | None = self._first_url(customer_id, since=since)
        visited: set[str] = set()
        orders: dict[str, Order] = {}
        while url is not None:
            visited.add(url)
            page = await self._page(customer_id, url)
            for order in page.orders:
                orders.setdefault(order.order_id, order)
            url = self._next_url(page.next_uri, visited=visited, what=self._what(customer_id, url))
        log.debug(
            "%s customer %s: %d orders in %d pages",
            self._source.name,
            customer_id,
            len(orders),
            len(visited),
        )
        return list(orders.values())

    def _first_url(self, customer_id: str, *, since: datetime | None) -> str:
        query = urlencode(
            {"limit": self._source.page_size, "offset": 0, "start-date": start_date(since)},
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
        if not url.startswith(f"{self._base_url}/"):
            raise MalformedReplyError(f"{what}: links.next leaves {self._base_url}: {uri!r}")
        if url in visited:
            raise MalformedReplyError(
                f"{what}: links.next points back to a page already read: {uri!r}"
            )
        return url

    async def _page(self, customer_id: str, url: str) -> Page:
        what = self._what(customer_id, url)

        async def attempt(token: str) -> Page:
            reply = await http.request(
                self._session,
                "GET",
                url,
                what=what,
                timeout_s=self._source.timeout_s,
                headers=self._headers(token),
                secrets=(token, *self._tokens.secrets, self._key_secret),
                limiter=self._limiter,
            )
            document = http.decode_json(reply, what=what)
            return parse_page(
                document, source=self._source.name, customer_id=customer_id, what=what
            )

        return await http.with_retries(
            lambda: self._tokens.authorized(attempt),
            retry=self._source.retry,
            sleep=self._sleep,
            rng=self._rng,
        )

    def _headers(self, token: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {token}",
            "X-Api-Key": self._api_key,
            "X-Request-Id": str(uuid.uuid4()),
            "X-Correlation-Id": str(uuid.uuid4()),
            "Accept": "application/json",
            "Content-Type": "application/json",
        }

    def _what(self, customer_id: str, url: str) -> str:
        path = url.removeprefix(self._base_url)
        return f"{self._source.name} ({PROVIDER}) customer {customer_id}: GET {path}"
