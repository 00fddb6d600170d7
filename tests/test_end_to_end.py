"""End to end: the simulator, the watcher service and a real RabbitMQ broker.

The watcher runs in this process (`app.serve`) against the simulator over real sockets and
a broker on loopback; a consumer bound through the watcher's own queue declaration receives
exactly the events the changes imply, with the right routing keys, ids and data.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests import harness
from tests.plugins.simulator import AdobeSimulator, SimAdmin
from watcher import app
from watcher.settings import Settings

CUSTOMERS = ["1000000001", "1000000002"]
OPEN_ORDER = ("1000000001", "5120000001")
DONE_ORDER = ("1000000002", "5120000006")
pytestmark = pytest.mark.timeout(60)


def subject(customer_id: str, order_id: str) -> str:
    return f"adobe_vip/{customer_id}/{order_id}"


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(app.serve(settings, stop=stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)


async def listings(admin: SimAdmin, customer_id: str) -> int:
    """How many listings of `customer_id`'s orders the simulator has begun serving (first
    pages); a poll cycle of that customer lists its orders once."""
    first_page = f"/v3/customers/{customer_id}/orders?"
    return sum(
        entry["path_qs"].startswith(first_page)
        and parse_qs(urlsplit(entry["path_qs"]).query).get("offset") == ["0"]
        for entry in await admin.requests()
    )


async def more_listings(admin: SimAdmin, customers: list[str], *, cycles: int) -> None:
    """Wait until every customer has been listed `cycles` more times than now.

    The log records a request when its reply is sent, and each customer's polls run one
    after another, so `cycles` more first pages mean at least `cycles - 1` whole cycles
    (fetch, diff, commit) finished after this call.
    """
    floor = {customer_id: await listings(admin, customer_id) for customer_id in customers}

    async def listed() -> bool:
        counts = {customer_id: await listings(admin, customer_id) for customer_id in customers}
        return all(counts[c] >= floor[c] + cycles for c in customers)

    await harness.eventually(listed, what=f"{cycles} more poll cycles of {customers}")


def complete_patch(sim: AdobeSimulator, customer_id: str, order_id: str) -> dict[str, object]:
    lines = sim.state.order(customer_id, order_id)["lineItems"]
    return {
        "status": "1000",
        "lineItems": [
            {
                "extLineItemNumber": line["extLineItemNumber"],
                "status": "1000",
                "subscriptionId": f"sub-{order_id}-{line['extLineItemNumber']}",
            }
            for line in lines
        ],
    }


async def test_changes_reach_a_consumer_as_typed_cloudevents(
    adobe_sim: AdobeSimulator, sim_admin: SimAdmin, amqp_url: str, tmp_path: Path
) -> None:
    db = tmp_path / "watcher.db"
    settings = harness.settings(adobe_sim, db=db, amqp_url=amqp_url, customers=CUSTOMERS)
    async with serving(settings), harness.consuming(amqp_url) as consumer:
        await harness.eventually(
            lambda: harness.baseline_done(db, CUSTOMERS), what="the baseline sync"
        )
        open_lines = adobe_sim.state.order(*OPEN_ORDER)["lineItems"]
        await sim_admin.patch_order(*OPEN_ORDER, complete_patch(adobe_sim, *OPEN_ORDER))
        done_line = adobe_sim.state.order(*DONE_ORDER)["lineItems"][0]
        await sim_admin.patch_order(
            *DONE_ORDER,
            {"lineItems": [{**done_line, "quantity": done_line["quantity"] + 5}]},
        )
        created = await sim_admin.create_order(
            "1000000002", {"lineItems": [{"offerId": "65304578CA01A12", "quantity": 3}]}
        )
        expected: set[harness.EventKey] = {
            ("order.status_changed", subject(*OPEN_ORDER), None),
            ("order.line_item.quantity_changed", subject(*DONE_ORDER), "1"),
            ("order.created", subject("1000000002", created["orderId"]), None),
        }
        for line in open_lines:
            key = str(line["extLineItemNumber"])
            expected.add(("order.line_item.status_changed", subject(*OPEN_ORDER), key))
            expected.add(("order.provisioning_changed", subject(*OPEN_ORDER), key))

        await consumer.wait_for(expected)
        # Several more poll cycles of every customer, all they wrote published and received:
        # nothing else may arrive.
        await more_listings(sim_admin, CUSTOMERS, cycles=3)
        await harness.eventually(
            lambda: harness.outbox_backlog_at_least(db, 0, at_most=0), what="the outbox drained"
        )
        await consumer.flush()

    assert sorted(d.key for d in consumer.received) == sorted(expected), "exactly once each"
    by_type = {d.body["type"]: d for d in consumer.received}
    status = by_type["order.status_changed"]
    assert status.routing_key == "adobe_vip.order.status_changed.completed"
    assert status.body["data"]["before"] == {"value": "pending", "raw": "1002"}
    assert status.body["data"]["after"] == {"value": "completed", "raw": "1000"}
    assert status.body["data"]["sequence"] == 2
    assert status.body["data"]["order"]["status"] == "completed"
    quantity = by_type["order.line_item.quantity_changed"]
    assert quantity.routing_key == "adobe_vip.order.line_item.quantity_changed"
    assert quantity.body["data"]["after"] == quantity.body["data"]["before"] + 5
    provisioning = [d for d in consumer.received if d.body["type"] == "order.provisioning_changed"]
    assert {d.routing_key for d in provisioning} == {
        "adobe_vip.order.provisioning_changed.provisioned"
    }
    assert {d.body["data"]["subscription_id"] for d in provisioning} == {
        f"sub-{OPEN_ORDER[1]}-{line['extLineItemNumber']}" for line in open_lines
    }
    assert by_type["order.created"].body["data"]["sequence"] == 1
    for delivery in consumer.received:
        assert delivery.message_id == delivery.body["id"]
        assert delivery.type == delivery.body["type"]
        assert delivery.content_type == "application/cloudevents+json"
        assert delivery.persistent
        assert delivery.body["specversion"] == "1.0"
        assert delivery.body["source"] == f"order-watcher/{harness.SOURCE}"
        assert delivery.body["time"].endswith("Z")
    assert len({d.message_id for d in consumer.received}) == len(consumer.received)


async def test_nothing_is_lost_while_the_broker_is_down(
    adobe_sim: AdobeSimulator,
    sim_admin: SimAdmin,
    outage_broker: harness.BrokerLike,
    tmp_path: Path,
) -> None:
    db = tmp_path / "watcher.db"
    url = outage_broker.url
    settings = harness.settings(adobe_sim, db=db, amqp_url=url, customers=CUSTOMERS)
    async with serving(settings):
        await harness.eventually(
            lambda: harness.baseline_done(db, CUSTOMERS), what="the baseline sync"
        )
        async with harness.consuming(url):
            pass  # the watcher has declared its queue: it survives the outage
        outage_broker.stop()
        await sim_admin.patch_order(*OPEN_ORDER, complete_patch(adobe_sim, *OPEN_ORDER))
        await harness.eventually(
            lambda: harness.outbox_backlog_at_least(db, 3), what="events held in the outbox"
        )
        outage_broker.start()
        async with harness.consuming(url) as consumer:
            expected: set[harness.EventKey] = {("order.status_changed", subject(*OPEN_ORDER), None)}
            await consumer.wait_for(expected, timeout_s=30)
            await harness.eventually(
                lambda: harness.outbox_backlog_at_least(db, 0, at_most=0),
                what="the outbox drained",
            )
            await consumer.flush()  # a duplicate already published would arrive before this
    lines = len(adobe_sim.state.order(*OPEN_ORDER)["lineItems"])
    assert len(consumer.received) == 1 + 2 * lines
    assert len({d.message_id for d in consumer.received}) == len(consumer.received)
