"""The Zuora Quickstart adapter's pure tables, with no simulator: order and subscription
states mapped to statuses and line provisioning, reply parsing (the documented sample,
bare arrays, a refused nested continuation), and error translation (Zuora's retryable
flag, quoted code, message and request id, a 429 waiting for the rate-limit reset).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from watcher.core.errors import (
    MalformedReplyError,
    PermanentProviderError,
    TransientProviderError,
)
from watcher.core.models import OrderStatus, Provisioning
from watcher.providers import translate
from watcher.providers.reply import Reply
from watcher.providers.zuora import DIALECT, mapping, replies

# --- mapping tables -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("draft", OrderStatus.PENDING),
        ("scheduled", OrderStatus.PENDING),
        ("pending", OrderStatus.PENDING),
        ("executing", OrderStatus.PROCESSING),
        ("complete", OrderStatus.COMPLETED),
        ("completed", OrderStatus.COMPLETED),
        ("failed", OrderStatus.FAILED),
        ("canceled", OrderStatus.CANCELLED),
        ("cancelled", OrderStatus.CANCELLED),
        (None, OrderStatus.UNKNOWN),
        ("archived", OrderStatus.UNKNOWN),
    ],
)
def test_order_state_mapping(raw: str | None, expected: OrderStatus) -> None:
    assert mapping.order_status(raw) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("active", Provisioning.PROVISIONED),
        ("pending_activation", Provisioning.PENDING),
        ("pending_acceptance", Provisioning.PENDING),
        ("draft", Provisioning.PENDING),
        ("canceled", Provisioning.CANCELLED),
        ("expired", Provisioning.CANCELLED),
        ("paused", Provisioning.UNKNOWN),
        ("suspended", Provisioning.UNKNOWN),
        ("", Provisioning.UNKNOWN),
    ],
)
def test_subscription_state_is_line_provisioning(raw: str, expected: Provisioning) -> None:
    assert mapping.subscription_provisioning(raw) is expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ({"state": "canceled", "requires_fulfillment": True}, (Provisioning.CANCELLED, "canceled")),
        ({"requires_fulfillment": False}, (Provisioning.UNKNOWN, "")),
        (
            {"requires_fulfillment": True, "quantity_fulfilled": 1},
            (Provisioning.PENDING, "1/3 fulfilled"),
        ),
        (
            {"requires_fulfillment": True, "quantity_fulfilled": 3},
            (Provisioning.PROVISIONED, "3/3 fulfilled"),
        ),
    ],
)
def test_line_provisioning_follows_fulfilment(
    line: dict[str, Any], expected: tuple[Provisioning, str]
) -> None:
    vendor_line = replies.VendorLine.model_validate({"id": "L1", "quantity": 3} | line)
    assert mapping.line_provisioning(vendor_line) == expected


SEED_ORDER: dict[str, Any] = {
    "id": "8ad09e20858682bc01859fd1633a1de3",
    "created_time": "2023-01-10T23:52:57-08:00",
    "order_number": "O-00021630",
    "line_items": [],
    "subscriptions": [
        {
            "id": "8ad09e20858682bc01859fd164471dea",
            "subscription_number": "A-S00013655",
            "state": "active",
            "actions": [
                {
                    "type": "create",
                    "subscription_plans": [
                        {
                            "subscription_items": [
                                {
                                    "subscription_item_number": "C-00048963",
                                    "quantity": 1,
                                    "state": "active",
                                    "price_id": "8ad09bce8455cd0c01845e8d3c152199",
                                },
                                {
                                    "subscription_item_number": "C-00048961",
                                    "quantity": 1,
                                    "state": "active",
                                    "price_id": "8ad08e0184ade9350184af5bf1f46007",
                                },
                            ]
                        }
                    ],
                }
            ],
        }
    ],
}


def test_the_documented_sample_without_state_and_with_bare_arrays() -> None:
    vendor = replies.VendorOrder.model_validate(SEED_ORDER)
    lines, cursor = mapping.first_lines(vendor)

    order = mapping.to_order(vendor, lines=lines, source="z", customer_id="acc", what="test")

    assert cursor is None
    assert (order.order_id, order.status, order.status_raw) == (
        "O-00021630",
        OrderStatus.UNKNOWN,
        "",
    )
    assert [
        (item.key, item.quantity, item.subscription_id, item.provisioning)
        for item in order.line_items
    ] == [
        ("C-00048963", 1, "A-S00013655", Provisioning.PROVISIONED),
        ("C-00048961", 1, "A-S00013655", Provisioning.PROVISIONED),
    ]


def test_nested_subscription_items_with_a_next_page_are_refused() -> None:
    order = {
        "order_number": "O-1",
        "subscriptions": [
            {
                "subscription_number": "A-S1",
                "subscription_plans": {
                    "data": [{"subscription_items": {"data": [], "next_page": "abc"}}],
                    "next_page": None,
                },
            }
        ],
    }
    vendor = replies.VendorOrder.model_validate(order)
    with pytest.raises(MalformedReplyError, match="subscription_items has a next page"):
        mapping.to_order(vendor, lines=[], source="z", customer_id="acc", what="test")


# --- error translation ----------------------------------------------------------------


def reply(status: int, body: dict[str, Any], **headers: str) -> Reply:
    named = {key.replace("_", "-"): value for key, value in headers.items()}
    return Reply(status=status, headers=named, body=orjson.dumps(body))


def raise_for_status(answer: Reply, *, what: str, reset_s: float | None = None) -> None:
    """The client's status translation, as it runs for Zuora."""
    translate.raise_for_status(
        answer,
        what=what,
        secrets=(),
        read_error=DIALECT.read_error,
        request_id_header=DIALECT.request_id_header,
        reset_s=reset_s,
    )


def conflict(*, retryable: bool) -> dict[str, Any]:
    error = {"code": "lock_competition", "parameter": "id", "message": "Try again"}
    return {"type": "conflict", "errors": [error], "retryable": retryable}


def test_a_retryable_4xx_is_transient_and_quotes_code_message_and_request_id() -> None:
    with pytest.raises(TransientProviderError) as caught:
        raise_for_status(reply(409, conflict(retryable=True), zuora_request_id="rid-1"), what="w")
    assert str(caught.value) == (
        "w: HTTP 409 (conflict: code lock_competition: Try again; parameter id) "
        "[zuora-request-id rid-1]"
    )


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (409, conflict(retryable=False), PermanentProviderError),
        (400, {"type": "bad_request", "errors": [], "retryable": False}, translate.BadRequest),
        (401, {"type": "unauthorized", "errors": [], "retryable": False}, translate.Unauthorized),
        (404, {"type": "not_found", "errors": []}, PermanentProviderError),
        (500, {"type": "internal_server_error", "errors": []}, TransientProviderError),
        (
            503,
            {"type": "service_unavailable", "errors": [], "retryable": False},
            TransientProviderError,
        ),
    ],
)
def test_error_classification(status: int, body: dict[str, Any], kind: type[Exception]) -> None:
    with pytest.raises(kind):
        raise_for_status(reply(status, body), what="w")


def test_a_429_waits_for_the_rate_limit_reset() -> None:
    with pytest.raises(TransientProviderError) as caught:
        raise_for_status(
            reply(429, {"type": "too_many_requests", "errors": []}), what="w", reset_s=12.0
        )
    assert caught.value.retry_after_s == 12.0
