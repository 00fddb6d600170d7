"""The Partner Center adapter's pure tables, with no simulator: status and provisioning
mapping, the documented sample with known and unknown provisioning values, wrong collection
shapes refused as malformed, a source without a token URL refused, and the default rate
limit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import aiohttp
import pytest

from watcher.core.errors import ConfigError, MalformedReplyError
from watcher.core.models import OrderStatus, Provisioning
from watcher.providers import connect
from watcher.providers.partner_center import mapping, replies
from watcher.settings import (
    SourceSettings,
)
from watcher.vendors import named

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("pending", OrderStatus.PENDING),
        ("completed", OrderStatus.COMPLETED),
        ("cancelled", OrderStatus.CANCELLED),
        ("Completed", OrderStatus.COMPLETED),
        ("unknown", OrderStatus.UNKNOWN),
        ("refunded", OrderStatus.UNKNOWN),
        ("", OrderStatus.UNKNOWN),
    ],
)
def test_status_mapping(raw: str, expected: OrderStatus) -> None:
    assert mapping.status(raw) is expected


@pytest.mark.parametrize(
    ("raw", "expected", "final"),
    [
        ("fulfilled", Provisioning.PROVISIONED, True),
        ("Fulfilled", Provisioning.PROVISIONED, True),
        ("unfulfilled", Provisioning.CANCELLED, True),
        ("prefulfillmentPending", Provisioning.PENDING, False),
        ("PrefulfillmentPending", Provisioning.PENDING, False),
        ("partiallyFulfilled", Provisioning.UNKNOWN, False),
    ],
)
def test_provisioning_mapping(raw: str, expected: Provisioning, final: bool) -> None:
    assert mapping.provisioning(raw) is expected
    assert mapping.settled(raw) is final


SAMPLE = {
    "id": "YxH1q4KScfvfkJQjgRI8QY1DznnUWZTH1",
    "referenceCustomerId": "b0d70a69-4c42-4b27-b17b-91a835d8686a",
    "billingCycle": "one_time",
    "currencyCode": "USD",
    "lineItems": [
        {"lineItemNumber": 0, "offerId": "DZH318Z0BQ4Z:002L:DZH318Z0CMNP", "quantity": 1}
    ],
    "creationDate": "2018-03-13T22:49:54.3396949Z",
    "status": "completed",
    "links": {"provisioningStatus": {"uri": "/customers/b/orders/Y/provisioningstatus"}},
    "attributes": {"objectType": "Order"},
}


def test_the_documented_sample_maps_with_known_and_unknown_provisioning() -> None:
    item = replies.parse_order(SAMPLE, what="test")
    order = mapping.to_order(item, source="pc", customer_id="b0d7", provisioning_raw={})
    assert item.provisioning_populated
    assert (order.order_id, order.status, order.status_raw) == (
        SAMPLE["id"],
        "completed",
        "completed",
    )
    assert order.created_at == datetime.fromisoformat("2018-03-13T22:49:54.339694+00:00")
    [line] = order.line_items
    assert (line.key, line.quantity, line.subscription_id) == ("0", 1, None)
    assert (line.status, line.status_raw) == (OrderStatus.UNKNOWN, "")
    assert (line.provisioning, line.provisioning_raw) == (Provisioning.PENDING, "")
    known = mapping.to_order(
        item, source="pc", customer_id="b", provisioning_raw={"0": "Fulfilled"}
    )
    assert (known.line_items[0].provisioning, known.line_items[0].provisioning_raw) == (
        Provisioning.PROVISIONED,
        "Fulfilled",
    )


@pytest.mark.parametrize(
    ("document", "mentions"),
    [
        ({"totalCount": 0}, "items"),
        ({"items": [{"status": "pending"}]}, "items.0.id"),
        ({"items": [{k: v for k, v in SAMPLE.items() if k != "lineItems"}]}, "lineItems"),
        ({"items": [SAMPLE | {"creationDate": "yesterday"}]}, "creationDate"),
        ([], "(document)"),
    ],
)
def test_wrong_collection_shapes_are_malformed(document: Any, mentions: str) -> None:
    with pytest.raises(MalformedReplyError, match="unexpected reply shape") as caught:
        replies.parse_collection(document, what="test")
    assert mentions in str(caught.value)


def test_a_source_without_token_url_is_a_config_error() -> None:
    source = SourceSettings(
        name="pc", provider="partner_center", base_url="http://127.0.0.1:1", customers=["c"]
    )
    with pytest.raises(ConfigError, match="token_url"):
        connect.adapter(source, cast(aiohttp.ClientSession, None))


def test_the_default_rate_limit_is_500_requests_a_minute() -> None:
    assert pytest.approx(500) == named("partner_center").rate_per_s * 60
