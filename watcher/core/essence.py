"""The part of an order whose change means something to a consumer.

Links, etags, display prices, the creation date and references are left out, so they
never raise events. The essence is plain, JSON-like data: the input of `diff.compute`.

`fingerprint` is a digest of the essence: two orders with the same fingerprint raise no
event between them, so a stored snapshot whose fingerprint is the fetched order's need not
be read back (`SnapshotStore.load_priors`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

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


def fingerprint(order: Order) -> str:
    """A digest of the order's essence (BLAKE2b, 128 bits, hex)."""
    data = orjson.dumps(of(order), option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _line(item: LineItem) -> dict[str, Any]:
    """The line's `LINE_FIELDS` as `model_dump(mode="json")` gives them, read directly:
    this runs for every line of every order fetched."""
    return {
        "quantity": item.quantity,
        "status": item.status.value,
        "status_raw": item.status_raw,
        "subscription_id": item.subscription_id,
        "provisioning": item.provisioning.value,
        "provisioning_raw": item.provisioning_raw,
    }
