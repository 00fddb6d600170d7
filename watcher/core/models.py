"""The canonical, vendor-neutral order that every adapter produces.

Adapters translate a vendor's reply into `Order`; everything downstream (essence, diff,
events, store) speaks only this shape. Each normalised value travels with the vendor's own
raw value, so consumers can act on either.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, field_validator


class OrderStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


class Provisioning(StrEnum):
    PENDING = "pending"
    PROVISIONED = "provisioned"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


TERMINAL_STATUSES = frozenset({OrderStatus.COMPLETED, OrderStatus.FAILED, OrderStatus.CANCELLED})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LineItem(_Frozen):
    """One line of an order, keyed by the vendor's own line key."""

    key: str
    offer: str
    quantity: int
    status: OrderStatus
    status_raw: str
    subscription_id: str | None = None
    provisioning: Provisioning = Provisioning.UNKNOWN
    provisioning_raw: str = ""


class Order(_Frozen):
    """One order as a source sees it at one moment."""

    provider: str
    source: str
    customer_id: str
    order_id: str
    status: OrderStatus
    status_raw: str
    created_at: datetime | None = None
    reference: str | None = None
    line_items: tuple[LineItem, ...] = ()
    payment: str | None = None
    payment_raw: str | None = None
    fulfilment: Provisioning | None = None
    fulfilment_raw: str | None = None

    @field_validator("created_at")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        """Vendors that give no offset mean UTC; every time leaves here in UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @property
    def in_flight(self) -> bool:
        """Whether the order or one of its lines is not yet in a terminal state. A line the
        vendor gives no status of its own (Elastic Path's items) follows its order."""
        return self.status not in TERMINAL_STATUSES or any(
            line.status_raw and line.status not in TERMINAL_STATUSES for line in self.line_items
        )

    def line(self, key: str) -> LineItem | None:
        return next((item for item in self.line_items if item.key == key), None)
