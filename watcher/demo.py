"""`order-watcher demo` and `order-watcher simulate`: the bundled simulator, shown working.

The demo needs nothing but this package: it starts the Adobe VIP Marketplace simulator on a
free loopback port with a few customers whose orders move every `tick_s` seconds, points a
watcher at it on embedded defaults (an in-memory SQLite store, no broker) and prints every
change event the moment it is detected. With a broker and a config file, `run` publishes
the very same events instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import UTC, datetime
from typing import Any, TextIO

from pydantic import SecretStr

from watcher import app, store
from watcher.core import events
from watcher.poller import CustomerSync, Poller
from watcher.settings import AuthSettings, RetrySettings, SourceSettings
from watcher.simulator import (
    CLIENT_ID,
    CLIENT_SECRET,
    AdobeVipState,
    Simulator,
    adobe,
    scenario,
    server,
)

DEMO_SOURCE = "adobe-demo"


async def run(
    *,
    customers: int,
    tick_s: float,
    poll_interval_s: float,
    duration_s: float | None,
    out: TextIO,
) -> None:
    """Simulator and watcher side by side until interrupted or `duration_s` has passed."""
    state = AdobeVipState(rng=random.Random(7))
    customer_ids = scenario.seed(state, customers=customers, orders_per_customer=4, now=_now())
    ready: asyncio.Future[list[Simulator[Any]]] = asyncio.get_running_loop().create_future()
    async with asyncio.TaskGroup() as group:
        simulator = group.create_task(
            server.serve_forever([adobe.api(state)], tick_s=tick_s, on_ready=ready.set_result)
        )
        [sim] = await ready
        _say(out, f"simulator: Adobe VIP Marketplace API at {sim.base_url}")
        _say(out, f"customers: {', '.join(customer_ids)}; orders change every {tick_s:g}s")
        source = _source(sim, customer_ids, poll_interval_s=poll_interval_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_watch(source, out), timeout=duration_s)
        simulator.cancel()


async def _watch(source: SourceSettings, out: TextIO) -> None:
    async with store.opened("sqlite:///:memory:") as snapshots, app.http_session() as session:
        poller = Poller(
            source,
            app.build_provider(source, session),
            snapshots,
            on_sync=lambda result: _show(result, out),
            clock=_now,
        )
        _say(out, "watcher: first poll records what exists (the baseline); then changes flow")
        await poller.run()


def _source(sim: Simulator[Any], customers: list[str], *, poll_interval_s: float) -> SourceSettings:
    return SourceSettings(
        name=DEMO_SOURCE,
        provider="adobe_vip",
        base_url=sim.base_url,
        customers=customers,
        poll_interval_s=poll_interval_s,
        poll_jitter_s=poll_interval_s / 10,
        auth=AuthSettings(
            token_url=sim.token_url,
            client_id=CLIENT_ID,
            client_secret=SecretStr(CLIENT_SECRET),
        ),
        retry=RetrySettings(attempts=3, base_delay_s=0.2, max_delay_s=2.0),
    )


def _show(result: CustomerSync, out: TextIO) -> None:
    if result.error is not None:
        _say(out, f"poll of customer {result.customer_id} failed: {result.error}")
    elif result.full and not result.events:
        _say(out, f"baseline: customer {result.customer_id}, {result.orders} orders recorded")
    for event in result.events:
        _say(out, describe(event))


def describe(event: events.OrderEvent) -> str:
    """One readable line for an event: routing key, order, line and what changed."""
    where = f"{event.customer_id}/{event.order_id}"
    line = event.affected_line()
    if line is not None:
        where += f" line {line}"
    before, after = getattr(event, "before", None), getattr(event, "after", None)
    change = f"  {_text(before)} -> {_text(after)}" if after is not None else ""
    return f"{events.routing_key(event):<52} {where}{change}"


def _text(value: object) -> str:
    if isinstance(value, events.Value):
        return f"{value.value} ({value.raw})" if value.raw else str(value.value)
    return str(value)


def _say(out: TextIO, text: str) -> None:
    out.write(f"{datetime.now(UTC):%H:%M:%S}  {text}\n")
    out.flush()


def _now() -> datetime:
    return datetime.now(UTC)


async def simulate(*, host: str, port: int, customers: int, orders: int, tick_s: float) -> None:
    """Serve the simulator alone until interrupted."""
    state = AdobeVipState()
    seeded = scenario.seed(state, customers=customers, orders_per_customer=orders, now=_now())
    print(f"simulating customers {seeded[0]}..{seeded[-1]} on http://{host}:{port}", flush=True)
    await server.serve_forever([adobe.api(state)], host=host, port=port, tick_s=tick_s or None)
