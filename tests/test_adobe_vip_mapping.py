"""The Adobe VIP Marketplace adapter's pure parts, as literal tables and with no simulator:
status and provisioning mapping, page parsing (the documented sample, pending lines, blank
references, unknown statuses kept raw, previews skipped, wrong shapes refused), the
start-date of a window, and a source without a token URL refused.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import aiohttp
import pytest

from watcher.core.errors import (
    ConfigError,
    MalformedReplyError,
)
from watcher.core.models import OrderStatus, Provisioning
from watcher.providers import connect
from watcher.providers.adobe_vip import mapping
from watcher.settings import SourceSettings

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)


# --- status mapping -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1000", OrderStatus.COMPLETED),
        ("1002", OrderStatus.PENDING),
        ("1004", OrderStatus.FAILED),
        ("1008", OrderStatus.CANCELLED),
        ("1020", OrderStatus.FAILED),
        ("1022", OrderStatus.FAILED),
        ("1024", OrderStatus.FAILED),
        ("1026", OrderStatus.FAILED),
        ("1009", OrderStatus.UNKNOWN),
        ("", OrderStatus.UNKNOWN),
        ("completed", OrderStatus.UNKNOWN),
    ],
)
def test_status_mapping(raw: str, expected: OrderStatus) -> None:
    assert mapping.status(raw) is expected


@pytest.mark.parametrize(
    ("status_raw", "subscription_id", "expected"),
    [
        ("1000", "86756309", Provisioning.PROVISIONED),
        ("1002", "", Provisioning.PENDING),
        ("1000", "", Provisioning.PENDING),
        ("1008", "86756309", Provisioning.CANCELLED),
        ("1004", "", Provisioning.FAILED),
        ("1026", "86756309", Provisioning.FAILED),
        ("9999", "86756309", Provisioning.PROVISIONED),
    ],
)
def test_provisioning_mapping(
    status_raw: str, subscription_id: str, expected: Provisioning
) -> None:
    assert mapping.provisioning(status_raw, subscription_id) is expected


# --- page parsing ---------------------------------------------------------------------


def vendor_order(order_id: str, **fields: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "externalReferenceId": "759",
        "orderId": order_id,
        "customerId": "9876543210",
        "orderType": "NEW",
        "referenceOrderId": "",
        "currencyCode": "USD",
        "creationDate": "2019-05-02T22:49:54Z",
        "status": "1000",
        "source": "Bridge",
        "lineItems": [
            {
                "extLineItemNumber": 4,
                "offerId": "80004567EA01A12",
                "quantity": 1,
                "subscriptionId": "86756309",
                "status": "1000",
                "currencyCode": "USD",
                "deploymentId": "12345",
                "promotions": [{"code": "SUMMER_SALE_123", "result": "SUCCESS"}],
            }
        ],
        "links": {"self": {"uri": f"/v3/customers/9876543210/orders/{order_id}"}},
    }
    return order | fields


def listing(*orders: dict[str, Any], next_uri: str | None = None) -> dict[str, Any]:
    links: dict[str, Any] = {"self": {"uri": "/v3/customers/9876543210/orders", "headers": []}}
    if next_uri is not None:
        links["next"] = {"uri": next_uri, "method": "GET", "headers": []}
    return {
        "totalCount": len(orders),
        "count": len(orders),
        "offset": 0,
        "limit": 25,
        "items": list(orders),
        "links": links,
    }


def parse(document: Any) -> mapping.Page:
    return mapping.parse_page(document, source="adobe-test", customer_id="9876543210", what="test")


def test_parse_page_maps_the_documented_sample() -> None:
    page = parse(
        listing(vendor_order("0123456789"), next_uri="/v3/customers/9876543210/orders?offset=3")
    )

    [order] = page.orders
    assert page.next_uri == "/v3/customers/9876543210/orders?offset=3"
    assert (order.provider, order.source, order.customer_id) == (
        "adobe_vip",
        "adobe-test",
        "9876543210",
    )
    assert (order.order_id, order.status, order.status_raw) == (
        "0123456789",
        OrderStatus.COMPLETED,
        "1000",
    )
    assert order.created_at == datetime(2019, 5, 2, 22, 49, 54, tzinfo=UTC)
    assert order.reference == "759"
    [line] = order.line_items
    assert (line.key, line.offer, line.quantity) == ("4", "80004567EA01A12", 1)
    assert (line.status, line.status_raw) == (OrderStatus.COMPLETED, "1000")
    assert (line.subscription_id, line.provisioning, line.provisioning_raw) == (
        "86756309",
        Provisioning.PROVISIONED,
        "86756309",
    )


def test_parse_page_pending_line_blank_reference_and_no_next() -> None:
    pending_line = {
        "extLineItemNumber": 1,
        "offerId": "65304578CA01A12",
        "quantity": 5,
        "subscriptionId": "",
        "status": "1002",
    }
    document = listing(
        vendor_order("5120008001", status="1002", externalReferenceId="", lineItems=[pending_line])
    )

    page = parse(document)

    [order] = page.orders
    assert page.next_uri is None
    assert (order.status, order.reference) == (OrderStatus.PENDING, None)
    [line] = order.line_items
    assert (line.key, line.subscription_id, line.provisioning, line.provisioning_raw) == (
        "1",
        None,
        Provisioning.PENDING,
        "",
    )


def test_parse_page_keeps_unknown_status_raw_and_skips_previews() -> None:
    document = listing(
        vendor_order("1", status="1009"),
        vendor_order("2", orderType="PREVIEW"),
        vendor_order("3", orderType="PREVIEW_RENEWAL"),
        vendor_order("4", orderType="RENEWAL"),
    )

    orders = parse(document).orders

    assert [(order.order_id, order.status, order.status_raw) for order in orders] == [
        ("1", OrderStatus.UNKNOWN, "1009"),
        ("4", OrderStatus.COMPLETED, "1000"),
    ]


@pytest.mark.parametrize(
    ("document", "mentions"),
    [
        ({"totalCount": 0, "links": {}}, "items"),
        (listing({"status": "1000"}), "items.0.orderId"),
        (
            listing(vendor_order("1", lineItems=[{"extLineItemNumber": 1}])),
            "items.0.lineItems.0.offerId",
        ),
        ([], "(document)"),
    ],
)
def test_parse_page_rejects_wrong_shapes(document: Any, mentions: str) -> None:
    with pytest.raises(MalformedReplyError, match="unexpected reply shape") as caught:
        parse(document)
    assert mentions in str(caught.value)


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        (None, "2000-01-01T00:00:00Z"),
        (datetime(2026, 11, 20, 10, 30, 5, 123456, tzinfo=UTC), "2026-11-20T10:30:05Z"),
        (
            datetime(2026, 11, 20, 12, 0, tzinfo=timezone(timedelta(hours=2))),
            "2026-11-20T10:00:00Z",
        ),
        (datetime(2026, 11, 20, 12, 0), "2026-11-20T12:00:00Z"),
    ],
)
def test_start_date(since: datetime | None, expected: str) -> None:
    assert mapping.start_date(since) == expected


def test_a_source_without_token_url_is_a_config_error() -> None:
    source = SourceSettings(
        name="adobe-test", provider="adobe_vip", base_url="http://127.0.0.1:1", customers=["1"]
    )
    with pytest.raises(ConfigError, match="token_url"):
        connect.adapter(source, cast(aiohttp.ClientSession, None))
