"""Small builders for canonical orders, with the defaults of an Adobe VIP Marketplace order.

`order(**overrides)` is a pending Adobe order of customer 9876543210 with one line "1";
`line(key, **overrides)` is a pending line of ten seats. Pass only what a test is about:

    order(status=OrderStatus.COMPLETED, status_raw="1000", line_items=(line("1", quantity=12),))
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from watcher.core.models import LineItem, Order, OrderStatus, Provisioning

PROVIDER = "adobe_vip"
SOURCE = "adobe-prod"
CUSTOMER_ID = "9876543210"
ORDER_ID = "5123456789"
CREATED_AT = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


def line(key: str = "1", **overrides: Any) -> LineItem:
    """A pending, not yet provisioned line of ten seats, keyed `key`."""
    values: dict[str, Any] = {
        "key": key,
        "offer": "65304578CA01A12",
        "quantity": 10,
        "status": OrderStatus.PENDING,
        "status_raw": "1002",
        "subscription_id": None,
        "provisioning": Provisioning.PENDING,
        "provisioning_raw": "1002",
    }
    values.update(overrides)
    return LineItem(**values)


def order(**overrides: Any) -> Order:
    """A pending Adobe VIP order with one line "1"."""
    values: dict[str, Any] = {
        "provider": PROVIDER,
        "source": SOURCE,
        "customer_id": CUSTOMER_ID,
        "order_id": ORDER_ID,
        "status": OrderStatus.PENDING,
        "status_raw": "1002",
        "created_at": CREATED_AT,
        "reference": "PO-4711",
        "line_items": (line("1"),),
    }
    values.update(overrides)
    return Order(**values)
