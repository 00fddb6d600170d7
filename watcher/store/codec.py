"""How a canonical `Order` is stored: compact JSON bytes, the same for every store.

Snapshots are stored whole, as the JSON form of the model (`model_dump(mode="json")`), so a
store never needs to know the order's shape and a new model field needs no migration. The
encoding runs in pydantic-core's own JSON serialiser and parser, which produce the same bytes
as `orjson.dumps(order.model_dump(mode="json"))` while skipping the intermediate dict: this
path runs for every snapshot written and read, ten thousand times a poll cycle.

Stored bytes that no longer parse as an `Order` are a store failure, not a caller's bug, so
`decode` raises `StoreError` naming the order.
"""

from __future__ import annotations

from pydantic import ValidationError

from watcher.core.errors import StoreError
from watcher.core.models import Order


def encode(order: Order) -> bytes:
    """The order as compact JSON bytes; datetimes become RFC 3339 text."""
    return order.model_dump_json().encode()


def decode(body: bytes, *, order_id: str) -> Order:
    """The order stored as `body`; `order_id` only names it in the error."""
    try:
        return Order.model_validate_json(body)
    except ValidationError as exc:
        raise StoreError(f"the stored snapshot of order {order_id} is unreadable") from exc
