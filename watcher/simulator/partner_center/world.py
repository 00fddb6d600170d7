"""The simulated Partner Center world: customers, orders, Entra ID tokens, the listing lag.

`PartnerCenterState` holds customer tenants (GUIDs) and their orders besides what every
world has (`server.World`); its tokens are those the simulated Entra ID endpoint issued,
and its request log records Partner Center's trace headers (MS-RequestId,
MS-CorrelationId) instead of Adobe's.

- Listing lag: a new order is visible to GET by id at once, but enters the customer's
  collection only `listing_lag_s` after its creation, on the state's clock (Partner Center
  documents up to 15 minutes). An order created with an older creationDate is listed at
  once; `listingLagS` on an admin order overrides the lag, and the admin patch
  `{"listed": false}` takes an order out of the collection again (eventual consistency).
- Tokens: the app-only grant (client credentials) and the app+user grant (the refresh
  token) give tokens of two kinds; only app+user tokens may read provisioning status.
  Lifetimes follow Entra ID (3600 s app-only, 3599 s app+user) on the state's clock.
- Time comes only from the injected clock; randomness only from the injected Random
  (tokens). Order ids come from a counter, so a seeded world is the same on every run.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Unpack

from aiohttp import web

from watcher.simulator.partner_center import orders as pc_orders
from watcher.simulator.partner_center.orders import ApiError
from watcher.simulator.server import Clock, Credentials, Tuning, World, utc_now

NAME = "partner_center"
PARTNER_TENANT = "6a7f0b7e-2c51-4cf8-9a5e-5b0f8a7c1d23"
CLIENT_ID = "0b8c2d4e-5f60-4a71-8b92-a3b4c5d6e7f8"
CLIENT_SECRET = "sim-pc-secret"
REFRESH_TOKEN = "sim-pc-refresh-token"
CREDENTIALS = Credentials(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN)
RESOURCE = "https://api.partnercenter.microsoft.com"
APP_TOKEN_TTL_S = 3600
USER_TOKEN_TTL_S = 3599
DEFAULT_LISTING_LAG_S = 120.0
CUSTOMERS_PAGE_SIZE = 100  # a customer listing's page when the call names no size
TokenKind = Literal["app", "user"]
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(slots=True)
class StoredOrder:
    created_at: datetime
    listed_at: datetime | None
    payload: dict[str, Any]
    provisioning: pc_orders.Provisioning = field(default_factory=dict)


class PartnerCenterState(World[TokenKind]):
    """Customers -> orders and the listing lag, besides what every world has."""

    ACCEPTS = CREDENTIALS
    TOKEN_TTL_S = APP_TOKEN_TTL_S
    TRACE_HEADERS = ("MS-RequestId", "MS-CorrelationId", "MS-ContinuationToken")
    CREDENTIAL_HEADERS = ("Authorization",)

    def __init__(
        self,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
        *,
        listing_lag_s: float = DEFAULT_LISTING_LAG_S,
        **tuning: Unpack[Tuning],
    ) -> None:
        super().__init__(clock, rng, **tuning)
        self.listing_lag_s = listing_lag_s
        self._customers: dict[str, dict[str, StoredOrder]] = {}
        self._next_order = 1
        # Customer listings in progress: continuation token -> (next offset, page size).
        self._continuations: dict[str, tuple[int, int]] = {}

    def issue_token(self, kind: TokenKind) -> tuple[str, int]:
        """A new access token of `kind` and its lifetime in seconds."""
        ttl_s = self.token_ttl_s if kind == "app" else USER_TOKEN_TTL_S
        token = f"eyJ0eXAiOiJKV1Qi.{self.rng.getrandbits(256):064x}"
        self.tokens.add(token, ttl_s=ttl_s, kind=kind)
        return token, ttl_s

    def token_kind(self, token: str) -> TokenKind | None:
        """The kind of a live token; None when unknown, expired or revoked."""
        return self.tokens.kind(token)

    def add_customer(self, customer_id: str) -> bool:
        """Create a customer without orders; False when it already exists."""
        if customer_id in self._customers:
            return False
        self._customers[customer_id] = {}
        return True

    def remove_customer(self, customer_id: str) -> bool:
        """Take a customer and its orders away (the relationship ended); False if unknown."""
        return self._customers.pop(customer_id, None) is not None

    def customer_ids(self) -> list[str]:
        return list(self._customers)

    def list_customers(self, *, size: int | None, continuation: str | None) -> dict[str, Any]:
        """A page of the partner's customers: the first of `size`, or the one a continuation
        token (`MS-ContinuationToken`, from the previous page) points at."""
        if continuation is not None:
            if continuation not in self._continuations:
                raise ApiError(400, 400, "The continuation token is invalid or has expired.")
            offset, size = self._continuations.pop(continuation)
        else:
            offset, size = 0, size or CUSTOMERS_PAGE_SIZE
        ids = list(self._customers)
        items = [_customer_resource(customer_id) for customer_id in ids[offset : offset + size]]
        page = _collection(items, uri=f"/customers?size={size}")
        if offset + size < len(ids):
            token = f"{self.rng.getrandbits(96):024x}"
            self._continuations[token] = (offset + size, size)
            header = {"key": "MS-ContinuationToken", "value": token}
            page["links"]["next"] = pc_orders.link("/customers?seekOperation=Next") | {
                "headers": [header]
            }
            page["continuationToken"] = token
        return page

    def stored(self, customer_id: str) -> list[StoredOrder]:
        """Every order of a customer, oldest first (ties by id). Treat them as read-only."""
        orders = self._customer(customer_id).values()
        return sorted(orders, key=lambda s: (s.created_at, s.payload["id"]))

    def create_order(self, customer_id: str, partial: object) -> dict[str, Any]:
        """Store an order built from `partial`, creating the customer if needed."""
        partial = partial if isinstance(partial, Mapping) else None
        if partial is None:
            raise pc_orders.invalid("the order must be a JSON object")
        order_id = partial.get("id") or self._new_order_id()
        if not isinstance(order_id, str) or order_id in self._customers.get(customer_id, {}):
            raise pc_orders.invalid(f"id {order_id!r} is not a new string id")
        now = self.clock()
        raw_date = partial.get("creationDate")
        created_at = now if raw_date is None else pc_orders.parse_time(raw_date)
        alternate_id = hashlib.sha256(order_id.encode()).hexdigest()[:12]
        payload, provisioning = pc_orders.build(
            partial,
            customer_id=customer_id,
            order_id=order_id,
            alternate_id=alternate_id,
            created_at=created_at,
        )
        lag = timedelta(seconds=_lag_s(partial.get("listingLagS", self.listing_lag_s)))
        self.add_customer(customer_id)
        stored = StoredOrder(created_at, created_at + lag, payload, provisioning)
        self._customers[customer_id][order_id] = stored
        return self.served(customer_id, stored)

    def patch_order(self, customer_id: str, order_id: str, patch: object) -> dict[str, Any]:
        stored = self._stored(customer_id, order_id)
        stored.payload, stored.provisioning = pc_orders.patched(
            stored.payload, stored.provisioning, patch
        )
        if isinstance(patch, Mapping) and "listed" in patch:
            stored.listed_at = min(stored.created_at, self.clock()) if patch["listed"] else None
        return self.served(customer_id, stored)

    def set_provisioning(self, customer_id: str, order_id: str, statuses: object) -> dict[str, Any]:
        stored = self._stored(customer_id, order_id)
        stored.provisioning = pc_orders.with_provisioning(
            stored.payload, stored.provisioning, statuses
        )
        return self.provisioning_status(customer_id, order_id)

    def order(self, customer_id: str, order_id: str) -> dict[str, Any]:
        """GET by id: sees an order at once, listed or not."""
        return self.served(customer_id, self._stored(customer_id, order_id))

    def list_orders(self, customer_id: str, *, billing_type: str | None = None) -> dict[str, Any]:
        """The customer's collection: every listed order, no paging, no date filter."""
        now = self.clock()
        items = [
            self.served(customer_id, stored)
            for stored in self.stored(customer_id)
            if stored.listed_at is not None and stored.listed_at <= now
        ]
        if billing_type:
            wanted = billing_type.lower()
            items = [item for item in items if item["billingCycle"].lower() == wanted]
        return _collection(items, uri=f"/customers/{customer_id}/orders")

    def provisioning_status(self, customer_id: str, order_id: str) -> dict[str, Any]:
        stored = self._stored(customer_id, order_id)
        quantities = {
            line["lineItemNumber"]: line["quantity"] for line in stored.payload["lineItems"]
        }
        items = [
            {
                "orderLineItemId": number,
                "lineItemNumber": number,
                "status": status,
                "quantityProvisioningInformation": [
                    {"quantity": quantities.get(number, 0), "status": status}
                ],
            }
            for number, status in sorted(stored.provisioning.items())
        ]
        return _collection(items, uri=None)

    def served(self, customer_id: str, stored: StoredOrder) -> dict[str, Any]:
        """The Order as the API returns it, links included."""
        path = pc_orders.order_path(customer_id, stored.payload["id"])
        links = {"self": pc_orders.link(path)}
        if stored.provisioning:
            links = {"provisioningStatus": pc_orders.link(path + "/provisioningstatus")} | links
        return stored.payload | {"links": links, "attributes": {"objectType": "Order"}}

    def _new_order_id(self) -> str:
        digest = int.from_bytes(hashlib.sha256(f"order-{self._next_order}".encode()).digest())
        self._next_order += 1
        chars = []
        for _ in range(32):
            digest, index = divmod(digest, 62)
            chars.append(_BASE62[index])
        return "".join(chars)

    def _customer(self, customer_id: str) -> dict[str, StoredOrder]:
        customer = self._customers.get(customer_id)
        if customer is None:
            raise ApiError(404, 404, f"Customer {customer_id} was not found.")
        return customer

    def _stored(self, customer_id: str, order_id: str) -> StoredOrder:
        stored = self._customer(customer_id).get(order_id)
        if stored is None:
            raise ApiError(404, 404, f"Order {order_id} was not found.")
        return stored


def _customer_resource(customer_id: str) -> dict[str, Any]:
    return {
        "id": customer_id,
        "companyProfile": {
            "tenantId": customer_id,
            "domain": f"{customer_id[:8]}.onmicrosoft.com",
            "companyName": f"Customer {customer_id[:8]}",
        },
        "relationshipToPartner": "reseller",
        "attributes": {"objectType": "Customer"},
    }


def _collection(items: list[dict[str, Any]], *, uri: str | None) -> dict[str, Any]:
    collection: dict[str, Any] = {"totalCount": len(items), "items": items}
    if uri is not None:
        collection["links"] = {"self": pc_orders.link(uri)}
    return collection | {"attributes": {"objectType": "Collection"}}


def _lag_s(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise pc_orders.invalid(f"listingLagS must be a non-negative number, not {value!r}")
    return float(value)


STATE = web.AppKey("partner_center_state", PartnerCenterState)
