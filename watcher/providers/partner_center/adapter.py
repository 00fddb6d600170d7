"""Microsoft Partner Center (CSP): one customer's orders as canonical Orders.

Listing is one call, `GET {base_url}/v1/customers/{tenant}/orders`: the whole collection,
no paging, no date filter. The window is applied here, on creationDate, and in-flight
orders stay in view whatever their age, so an old order that completes is still diffed.
An order is returned when

    since is None (a full re-list), or it was created at or after `since`,
    or its status is not terminal (pending, unknown), or provisioning of one of its lines
    is still being followed, or it was in flight at this customer's previous fetch.

New orders may take minutes to enter the collection (GET by id sees them at once); an order
missing from a fetch is never reported removed (`core.sync` leaves it alone) and shows up
once listed. An order remembered in flight that has left the collection is read by id
(`GET .../orders/{id}`); if that is refused it is forgotten, with a warning.

Provisioning: `GET .../orders/{id}/provisioningstatus` needs an app+user token (the
refresh-token grant with `auth.refresh_token`); the list and get calls use the app-only
token (client credentials). It is asked only for orders whose `links.provisioningStatus`
is populated and that are not known to be fully provisioned: every line's last status
final (fulfilled or unfulfilled) at its current quantity. Lines not asked keep their last
known provisioning, or pending. With `partner_center.provisioning` on but no refresh
token, orders are still listed and a warning says once that provisioning is skipped.

What the adapter learnt (each order's line provisioning and whether it is in flight) is
kept in memory, per customer, and replaced only when a whole fetch succeeds; after a
restart provisioning is asked once more and the daily full re-list brings back any order
that settled meanwhile.

Customers (`customers = "all"`): `GET /v1/customers?size=100`, then each page's
`links.next` with its continuation token in `MS-ContinuationToken` (`list_customers`).

Every call carries the bearer token and a fresh uuid4 MS-RequestId and MS-CorrelationId.
A 429 is retried after its Retry-After by the client; a call that still fails fails the
fetch and nothing is returned. The rate limit defaults to Partner Center's documented 500
requests per minute per tenant (`watcher.vendors`). Reply models: `replies`; mapping:
`mapping`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TypeVar
from urllib.parse import quote

from watcher import vendors
from watcher.core.errors import ConfigError, MalformedReplyError, PermanentProviderError
from watcher.core.models import TERMINAL_STATUSES, Order
from watcher.providers import tokens
from watcher.providers.client import Dialect, Parse, VendorClient, trace_id
from watcher.providers.partner_center import mapping, replies
from watcher.settings import SourceSettings

log = logging.getLogger(__name__)

PROVIDER = mapping.PROVIDER
RESOURCE = "https://api.partnercenter.microsoft.com"
T = TypeVar("T")
Grant = Literal["client_credentials", "refresh_token"]


def _trace_headers() -> dict[str, str]:
    return {"MS-RequestId": trace_id(), "MS-CorrelationId": trace_id()}


DIALECT = Dialect(trace_headers=_trace_headers)
_HEADERS = {"MS-Contract-Version": "v1"}
CUSTOMERS_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class Known:
    """What one fetch learnt about an order: line key -> (raw provisioning, quantity)."""

    in_flight: bool
    lines: Mapping[str, tuple[str, int]]

    def settled(self, item: replies.VendorOrder) -> bool:
        """Every current line's provisioning is final at its current quantity."""
        return all(
            (known := self.lines.get(str(line.line_item_number))) is not None
            and mapping.settled(known[0])
            and known[1] == line.quantity
            for line in item.line_items
        )

    def provisioning(self) -> dict[str, str]:
        return {key: raw for key, (raw, _) in self.lines.items() if raw}


class PartnerCenter:
    """The `Provider` of one Partner Center partner account (one configured source)."""

    def __init__(self, source: SourceSettings, client: VendorClient) -> None:
        auth = source.auth
        if not auth.token_url:
            raise ConfigError(f"sources.{source.name}.auth.token_url", "partner_center needs one")
        self._source = source
        self._client = client
        self._base_url = source.base_url.rstrip("/")
        self._app_tokens = self._token_cache(auth.token_url, grant="client_credentials")
        self._user_tokens: tokens.TokenCache | None = None
        provisioning = source.options_as(vendors.PartnerCenterOptions).provisioning
        if provisioning and auth.refresh_token is not None:
            self._user_tokens = self._token_cache(auth.token_url, grant="refresh_token")
        elif provisioning:
            log.warning(
                "source %s: no auth.refresh_token, so provisioning status is skipped "
                "(provisioningstatus needs app+user credentials); orders are still listed",
                source.name,
            )
        self._known: dict[str, dict[str, Known]] = {}

    def _token_cache(self, token_url: str, *, grant: Grant) -> tokens.TokenCache:
        resource = self._source.auth.resource or RESOURCE
        return self._client.tokens(token_url=token_url, fields={"resource": resource}, grant=grant)

    async def fetch_orders(
        self, customer_id: str, *, since: datetime | None, changed_since: datetime | None = None
    ) -> list[Order]:
        """The customer's orders in view (see the module docstring), or a ProviderError.

        Partner Center cannot filter by update time, so `changed_since` is not used.
        """
        listed = await self._list(customer_id)
        known = self._known.get(customer_id, {})
        chosen = {item.id: item for item in listed if _in_view(item, since=since, known=known)}
        listed_ids = {item.id for item in listed}
        for order_id, memory in known.items():
            if memory.in_flight and order_id not in listed_ids:
                item = await self._get(customer_id, order_id)
                if item is not None:
                    chosen[item.id] = item
        orders, learnt = [], {}
        for item in chosen.values():
            raw = await self._provisioning(customer_id, item, known.get(item.id))
            learnt[item.id] = self._learnt(item, raw)
            orders.append(
                mapping.to_order(
                    item, source=self._source.name, customer_id=customer_id, provisioning_raw=raw
                )
            )
        self._known[customer_id] = learnt
        log.debug(
            "%s customer %s: %d of %d listed orders in view",
            self._source.name,
            customer_id,
            len(orders),
            len(listed),
        )
        return orders

    async def list_customers(self) -> list[str]:
        """Every customer tenant of the partner, page by page, or a ProviderError.

        The first page is `GET /v1/customers?size=N`; each next one is its `links.next` uri
        (`/v1/customers?seekOperation=Next`) with the page's continuation token in the
        `MS-ContinuationToken` header, until a page has no next link.
        """
        path = f"/v1/customers?size={CUSTOMERS_PAGE_SIZE}"
        headers = _HEADERS
        found: dict[str, None] = {}
        tokens_seen: set[str] = set()
        while True:
            what = f"{self._source.name} ({PROVIDER}) customers: GET {path}"
            page = await self._client.get(
                f"{self._base_url}{path}",
                what=what,
                tokens=self._app_tokens,
                parse=replies.parse_customers,
                headers=headers,
            )
            found.update(dict.fromkeys(page.ids))
            if page.next_uri is None or page.continuation is None:
                return list(found)
            if page.continuation in tokens_seen:
                raise MalformedReplyError(f"{what}: the continuation token repeats itself")
            tokens_seen.add(page.continuation)
            path = _v1_path(page.next_uri, base_url=self._base_url, what=what)
            headers = {**_HEADERS, "MS-ContinuationToken": page.continuation}

    async def _list(self, customer_id: str) -> list[replies.VendorOrder]:
        path = f"/v1/customers/{quote(customer_id, safe='')}/orders"
        what = self._what(customer_id, path)
        return await self._call(
            path, what=what, cache=self._app_tokens, parse=replies.parse_collection
        )

    async def _get(self, customer_id: str, order_id: str) -> replies.VendorOrder | None:
        path = f"/v1/customers/{quote(customer_id, safe='')}/orders/{quote(order_id, safe='')}"
        what = self._what(customer_id, path)
        try:
            return await self._call(
                path, what=what, cache=self._app_tokens, parse=replies.parse_order
            )
        except PermanentProviderError as exc:
            log.warning("%s; order %s is no longer followed", exc, order_id)
            return None

    async def _provisioning(
        self, customer_id: str, item: replies.VendorOrder, known: Known | None
    ) -> dict[str, str]:
        before = known.provisioning() if known is not None else {}
        if self._user_tokens is None or not item.provisioning_populated:
            return before
        if known is not None and known.settled(item):
            return before
        path = (
            f"/v1/customers/{quote(customer_id, safe='')}/orders/"
            f"{quote(item.id, safe='')}/provisioningstatus"
        )
        what = self._what(customer_id, path)
        fetched = await self._call(
            path, what=what, cache=self._user_tokens, parse=replies.parse_provisioning
        )
        return before | fetched

    def _learnt(self, item: replies.VendorOrder, raw: Mapping[str, str]) -> Known:
        lines = {
            str(line.line_item_number): (raw.get(str(line.line_item_number), ""), line.quantity)
            for line in item.line_items
        }
        following = self._user_tokens is not None and item.provisioning_populated
        in_flight = mapping.status(item.status) not in TERMINAL_STATUSES or (
            following and not all(mapping.settled(r) for r, _ in lines.values())
        )
        return Known(in_flight=in_flight, lines=lines)

    async def _call(self, path: str, *, what: str, cache: tokens.TokenCache, parse: Parse[T]) -> T:
        url = f"{self._base_url}{path}"
        return await self._client.get(url, what=what, tokens=cache, parse=parse, headers=_HEADERS)

    def _what(self, customer_id: str, path: str) -> str:
        return f"{self._source.name} ({PROVIDER}) customer {customer_id}: GET {path}"


def _v1_path(uri: str, *, base_url: str, what: str) -> str:
    """A link's uri as a path under base_url: Partner Center writes them relative to /v1
    (`/customers?seekOperation=Next`), or with it, or in full."""
    if uri.startswith(("http://", "https://")):
        if not uri.startswith(f"{base_url}/"):
            raise MalformedReplyError(f"{what}: links.next leaves {base_url}")
        uri = uri.removeprefix(base_url)
    path = "/" + uri.lstrip("/")
    return path if path.startswith("/v1/") else f"/v1{path}"


def _in_view(
    item: replies.VendorOrder, *, since: datetime | None, known: Mapping[str, Known]
) -> bool:
    if since is None or mapping.status(item.status) not in TERMINAL_STATUSES:
        return True
    memory = known.get(item.id)
    if memory is not None and memory.in_flight:
        return True
    start = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
    return item.creation_date >= start
