"""The parts of Zuora Quickstart's replies the watcher reads.

Orders: `{data: [order], next_page}` from `GET /v2/orders`, each order with its expanded
`line_items`, `subscriptions`, their `subscription_plans` and `subscription_items`. Lists
come as the document's `{data, next_page}` or as bare arrays (Zuora's samples); both are
read.

Errors: `{type, errors: [{code, parameter, message}], retryable}`. `read_error` turns one
into the client's `VendorError`: the text quotes the type, the first error's code, message
and parameter; `retryable: true` makes any status transient. A body of another shape
(Zuora's v1 `{reasons: [...]}` among them) is read by the client's common reader.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, ValidationError, model_validator

from watcher.providers.reply import VendorReply
from watcher.providers.translate import VendorError, common_error, json_object


class VendorLine(VendorReply):
    id: str = Field(min_length=1)
    name: str = ""
    product_code: str | None = None
    price_id: str | None = None
    quantity: float
    quantity_fulfilled: float | None = None
    requires_fulfillment: bool = False
    state: str = ""


class LinePage(VendorReply):
    data: list[VendorLine]
    next_page: str | None = None


class VendorItem(VendorReply):
    subscription_item_number: str = Field(min_length=1)
    name: str = ""
    price_id: str | None = None
    quantity: float | None = None
    state: str = ""


class ItemPage(VendorReply):
    data: list[VendorItem]
    next_page: str | None = None


class Plan(VendorReply):
    subscription_items: list[VendorItem] | ItemPage | None = None


class PlanPage(VendorReply):
    data: list[Plan]
    next_page: str | None = None


class Action(VendorReply):
    subscription_plans: list[Plan] | PlanPage | None = None


class VendorSubscription(VendorReply):
    subscription_number: str = Field(min_length=1)
    state: str = ""
    subscription_plans: list[Plan] | PlanPage | None = None
    actions: list[Action] = Field(default_factory=list)


class VendorOrder(VendorReply):
    id: str = ""
    order_number: str = ""
    account_id: str | None = None
    state: str | None = None
    created_time: datetime | None = None
    line_items: list[VendorLine] | LinePage | None = None
    subscriptions: list[VendorSubscription] = Field(default_factory=list)

    @model_validator(mode="after")
    def _identified(self) -> VendorOrder:
        if not (self.order_number or self.id):
            raise ValueError("an order needs an order_number or an id")
        return self

    @property
    def key(self) -> str:
        return self.order_number or self.id


class OrderPage(VendorReply):
    data: list[VendorOrder]
    next_page: str | None = None


class _Error(VendorReply):
    code: str | None = None
    parameter: str | None = None
    message: str | None = None


class _ErrorBody(VendorReply):
    type: str = ""
    errors: list[_Error] = Field(default_factory=list)
    retryable: bool | None = None


def read_error(body: bytes) -> VendorError | None:
    """Quickstart's error body as the client's VendorError, else the common shapes."""
    document = json_object(body)
    if document is None or not ({"type", "retryable"} & document.keys()):
        return common_error(body)
    try:
        error = _ErrorBody.model_validate(document)
    except ValidationError:
        return common_error(body)
    return VendorError(_describe(error), retryable=error.retryable)


def _describe(error: _ErrorBody) -> str:
    """'type: code X: message; parameter P' from Quickstart's error body."""
    parts = [error.type] if error.type else []
    first = error.errors[0] if error.errors else _Error()
    if first.code:
        parts.append(f"code {first.code}")
    if first.message:
        parts.append(first.message)
    text = ": ".join(parts)
    if first.parameter:
        text += f"; parameter {first.parameter}"
    return text
