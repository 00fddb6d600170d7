"""`order-watcher demo` and `order-watcher simulate`: the bundled simulators, shown working.

The demo needs nothing but this package: it starts a simulator for each vendor (Adobe VIP
Marketplace, Microsoft Partner Center, Elastic Path, Zuora) on free loopback ports, each with
a few customers whose orders move every `tick_s` seconds, points one watcher source at each
on embedded defaults (an in-memory SQLite store, no broker) and prints every change event
the moment it is detected. With a broker and a config file, `run` publishes the very same
events instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO, cast

from pydantic import SecretStr

from watcher import app, store, vendors
from watcher.bus import tail
from watcher.core import events
from watcher.poller import CustomerSync, Poller
from watcher.providers import sessions
from watcher.settings import AuthSettings, RetrySettings, SourceSettings
from watcher.simulator import Credentials, Simulator, VendorApi, serve_forever

ORDERS_PER_CUSTOMER = 4
# Orders pending longer than this are reported stuck, so the demo shows order.stuck too.
DEMO_STUCK_AFTER_S = 30.0


@dataclass(frozen=True, slots=True)
class Vendor:
    """One simulated vendor as the demo runs it: a seeded world and the source watching it."""

    title: str
    provider: str
    world: Callable[[int, int, datetime], World]
    auth: Callable[[Simulator[Any]], AuthSettings]


World = tuple[VendorApi[Any], list[str]]


def _seeded(seeded: Callable[..., World]) -> Callable[[int, int, datetime], World]:
    """A vendor package's seeded world, the same on every run (its Random is seeded alike)."""

    def world(customers: int, orders: int, now: datetime) -> World:
        return seeded(
            customers=customers, orders_per_customer=orders, now=now, rng=random.Random(7)
        )

    return world


def _credentials(credentials: Credentials) -> Callable[[Simulator[Any]], AuthSettings]:
    refresh = credentials.refresh_token
    extra = {} if refresh is None else {"refresh_token": SecretStr(refresh)}

    def auth(sim: Simulator[Any]) -> AuthSettings:
        return AuthSettings(
            token_url=sim.token_url,
            client_id=credentials.client_id,
            client_secret=SecretStr(credentials.client_secret),
            **extra,
        )

    return auth


class SimulatedVendor(Protocol):
    """What `watcher.simulator.<name>` exports for the demo."""

    CREDENTIALS: Credentials

    def seeded(
        self, *, customers: int, orders_per_customer: int, now: datetime, rng: random.Random
    ) -> World: ...


def simulated(vendor: vendors.Vendor) -> Vendor:
    """The registry's `vendor` as the demo runs it, from its simulator package."""
    module = importlib.import_module(f"watcher.simulator.{vendor.name}")
    package = cast(SimulatedVendor, module)
    return Vendor(
        vendor.title, vendor.name, _seeded(package.seeded), _credentials(package.CREDENTIALS)
    )


VENDORS: tuple[Vendor, ...] = tuple(simulated(vendor) for vendor in vendors.VENDORS)


async def run(
    *,
    customers: int,
    tick_s: float,
    poll_interval_s: float,
    duration_s: float | None,
    out: TextIO,
) -> None:
    """Simulators and watcher side by side until interrupted or `duration_s` has passed."""
    worlds = [vendor.world(customers, ORDERS_PER_CUSTOMER, _now()) for vendor in VENDORS]
    ready: asyncio.Future[list[Simulator[Any]]] = asyncio.get_running_loop().create_future()
    async with asyncio.TaskGroup() as group:
        simulators = group.create_task(
            serve_forever([api for api, _ in worlds], tick_s=tick_s, on_ready=ready.set_result)
        )
        sims = await ready
        sources = []
        for vendor, sim, (_, ids) in zip(VENDORS, sims, worlds, strict=True):
            _say(out, f"simulator: {vendor.title} at {sim.base_url}; customers {', '.join(ids)}")
            sources.append(_source(vendor, sim, ids, poll_interval_s=poll_interval_s))
        _say(out, f"orders change every {tick_s:g}s")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_watch(sources, out), timeout=duration_s)
        simulators.cancel()


async def _watch(sources: list[SourceSettings], out: TextIO) -> None:
    async with store.opened("sqlite:///:memory:") as snapshots, sessions.pooled() as session:
        pollers = [
            Poller(
                source,
                app.build_provider(source, session),
                snapshots,
                on_sync=lambda result: _show(result, out),
                clock=_now,
            )
            for source in sources
        ]
        _say(out, "watcher: first poll records what exists (the baseline); then changes flow")
        async with asyncio.TaskGroup() as group:
            for poller in pollers:
                group.create_task(poller.run())


def _source(
    vendor: Vendor, sim: Simulator[Any], customers: list[str], *, poll_interval_s: float
) -> SourceSettings:
    return SourceSettings.model_validate(
        {
            "name": f"{vendor.provider.replace('_', '-')}-demo",
            "provider": vendor.provider,
            "base_url": sim.base_url,
            "customers": customers,
            "poll_interval_s": poll_interval_s,
            "poll_jitter_s": poll_interval_s / 10,
            "auth": vendor.auth(sim),
            "retry": RetrySettings(attempts=3, base_delay_s=0.2, max_delay_s=2.0),
            "stuck": {"pending": DEMO_STUCK_AFTER_S},
        }
    )


def _show(result: CustomerSync, out: TextIO) -> None:
    if result.error is not None:
        _say(out, f"{result.source}: poll of customer {result.customer_id} failed: {result.error}")
    elif result.full and all(isinstance(e, events.OrderStuck) for e in result.events):
        _say(out, f"{result.source}: baseline of {result.customer_id}, {result.orders} orders")
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
    subscription = getattr(event, "subscription_id", None)
    if subscription:
        change += f", subscription {subscription}"
    if isinstance(event, events.OrderStuck):
        stuck_for, threshold = _duration(event.stuck_for_s), _duration(event.threshold_s)
        change = f"  {_text(event.status)} for {stuck_for} (threshold {threshold})"
    return f"{events.routing_key(event):<{tail.KEY_WIDTH}} {where}{change}"


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _text(value: object) -> str:
    if isinstance(value, events.Value):
        return f"{value.value} ({value.raw})" if value.raw else str(value.value)
    return str(value)


def _span(ids: list[str]) -> str:
    return ", ".join(ids) if len(ids) <= 4 else f"{ids[0]} .. {ids[-1]} ({len(ids)})"


def _say(out: TextIO, text: str) -> None:
    out.write(f"{datetime.now(UTC):%H:%M:%S}  {text}\n")
    out.flush()


def _now() -> datetime:
    return datetime.now(UTC)


async def simulate(
    *,
    host: str,
    port: int,
    customers: int,
    orders: int,
    tick_s: float,
    providers: list[str] | None = None,
) -> None:
    """Serve the vendors' simulators (all, or those `providers` name) on `port` onwards."""
    chosen = [vendor for vendor in VENDORS if not providers or vendor.provider in providers]
    worlds = [vendor.world(customers, orders, _now()) for vendor in chosen]

    def announce(sims: list[Simulator[Any]]) -> None:
        for vendor, sim, (_, ids) in zip(chosen, sims, worlds, strict=True):
            print(f"{vendor.title}: {sim.base_url} (token {sim.token_url})", flush=True)
            print(f"  customers: {_span(ids)}", flush=True)

    await serve_forever(
        [api for api, _ in worlds], host=host, port=port, tick_s=tick_s or None, on_ready=announce
    )
