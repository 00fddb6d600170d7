"""The part of an order whose change means something to a consumer.

Links, etags, display prices, the creation date and references are left out, so they
never raise events. The essence is plain, JSON-like data: the input of `diff.compute`.
"""

from __future__ import annotations

from typing import Any

from watcher.core.models import LineItem, Order

LINE_FIELDS = (
    "quantity",
    "status",
    "status_raw",
    "subscription_id",
    "provisioning",
    "provisioning_raw",
)


def of(order: Order) -> dict[str, Any]:
    return {
        "status": order.status.value,
        "status_raw": order.status_raw,
        "payment": order.payment,
        "payment_raw": order.payment_raw,
        "fulfilment": order.fulfilment.value if order.fulfilment else None,
        "fulfilment_raw": order.fulfilment_raw,
        "lines": {item.key: _line(item) for item in order.line_items},
    }


def _line(item: LineItem) -> dict[str, Any]:
    values = item.model_dump(include=set(LINE_FIELDS), mode="json")
    return {name: values[name] for name in LINE_FIELDS}
