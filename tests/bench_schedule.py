"""Change-to-event latency of a big source under a rate budget, hot/cold against one cadence.

What runs: the Adobe VIP simulator in its own process, holding `--customers` customers
with one order each; `--in-flight` of them have it pending (in flight), the others have it
completed. In this process: one `Poller.run()` over every customer, on a fresh SQLite store
per run, with the source's rate limit at `--rate` requests/s (8 by default: Partner
Center's documented 500 a minute). Two runs, with the same budget:

    hot/cold     customers in flight every `--hot-s`, the others every `--cold-s`
    one cadence  every customer every customers / rate seconds: the fastest single
                 cadence the budget allows (a whole pass of the customers)

Each run waits for the baseline (every customer synced once) and a second pass (the first
syncs' next polls are spread over a second interval, see `schedule.next_delay_s`), so
that what is measured is the steady schedule; then for `--measure-s` it
makes changes on the vendor's side through the simulator's admin API: `--hot-changes-per-s`
quantity changes of in-flight orders (the order stays in flight; drawn among all of them at
random times, a draw skipped while that order's last change has no event yet), and
`--cold-changes-per-s` new orders for customers with nothing in flight. The latency of a
change is the time from the simulator's reply to the change until its event is committed
to the outbox (the relay and the broker are not part of it). After the changes stop, the
run waits until every change has its event.

Time is scaled: `--speedup` divides every interval and multiplies the rate (20: 160
requests/s, a 3 s hot interval for 60 s), so a run lasts minutes instead of an hour; the
figures are printed back in unscaled seconds. Scaling makes the watcher's own per-poll
cost (a few milliseconds) count 20 times more than it would at the real pace, so the
unscaled latencies are a little pessimistic. The floor is the cadence itself: a change
waits on average half an interval for its customer's next poll, so the ratios printed are
against `--hot-s` and against a whole pass.

Exit status: 1 when a change got no event, a poll failed or an event was raised that no
change explains; 2 when the simulator did not start or refused a change; 130 when
interrupted. Nothing here passes or fails on speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import random
import shlex
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from pydantic import SecretStr

from tests import bench
from watcher import app, logs, store
from watcher.poller import CustomerSync, Poller
from watcher.providers import sessions
from watcher.settings import AuthSettings, LimitSettings, SourceSettings
from watcher.simulator.adobe_vip.routes import TOKEN_PATH
from watcher.simulator.adobe_vip.world import CLIENT_ID, CLIENT_SECRET

SOURCE = "adobe-schedule-bench"
FIRST_CUSTOMER = 2_000_000_001
SEED = 20_261_203
ADMIN_CONCURRENCY = 16
SETTLE_TIMEOUT_PASSES = 3  # after the changes stop, wait at most this many cold intervals
IN_FLIGHT, DONE = "1002", "1000"


@dataclass(slots=True)
class Tally:
    """What one run saw: each change's latency, the polls, and any surprise."""

    label: str
    waiting: dict[str, float] = field(default_factory=dict)  # order id -> change time
    hot_latency_s: list[float] = field(default_factory=list)
    cold_latency_s: list[float] = field(default_factory=list)
    cold_orders: set[str] = field(default_factory=set)
    synced: Counter[str] = field(default_factory=Counter)  # syncs per customer
    reached: Counter[int] = field(default_factory=Counter)  # customers synced n times
    polls: int = 0
    failures: list[str] = field(default_factory=list)
    unexplained: int = 0
    lag_s: list[float] = field(default_factory=list)
    measuring: bool = False
    measured_s: float = 0.0  # from the first change until every change had its event
    progress: asyncio.Event = field(default_factory=asyncio.Event)  # set by every sync

    async def until(self, done: Callable[[], bool], *, within_s: float | None) -> None:
        """Wait for `done()`, checked after every sync, for at most `within_s`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within_s):
                while not done():
                    self.progress.clear()
                    await self.progress.wait()

    def heard(self, result: CustomerSync) -> None:
        self.progress.set()
        self.synced[result.customer_id] += 1
        self.reached[self.synced[result.customer_id]] += 1
        if self.measuring:
            self.polls += 1
            self.lag_s.append(result.lag_s)
        if result.error is not None:
            self.failures.append(f"{result.customer_id}: {result.error}")
        now = time.monotonic()
        for event in result.events:
            changed_at = self.waiting.pop(event.order_id, None)
            if changed_at is None:
                self.unexplained += 1
                continue
            cold = event.order_id in self.cold_orders
            (self.cold_latency_s if cold else self.hot_latency_s).append(now - changed_at)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(level="ERROR")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        tallies = asyncio.run(_bench(args))
    except bench.BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    print("\n".join(_report(args, tallies)))
    problems = [p for tally in tallies for p in _problems(tally)]
    for problem in problems[: bench.PROBLEMS_SHOWN]:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench_schedule", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--customers", type=bench.positive, default=5000)
    parser.add_argument("--in-flight", type=bench.fraction, default=0.02)
    parser.add_argument("--rate", type=float, default=8.0, help="requests/s, unscaled")
    parser.add_argument("--hot-s", type=float, default=60.0)
    parser.add_argument("--cold-s", type=float, default=900.0)
    parser.add_argument("--measure-s", type=float, default=900.0, help="unscaled")
    parser.add_argument("--hot-changes-per-s", type=float, default=0.2, help="unscaled")
    parser.add_argument("--cold-changes-per-s", type=float, default=0.05, help="unscaled")
    parser.add_argument("--speedup", type=float, default=20.0)
    return parser


@dataclass(slots=True)
class World:
    """The simulated account, through the simulator's admin API: its customers, those in
    flight, and the quantity of each order in flight."""

    session: aiohttp.ClientSession
    base_url: str
    customers: list[str]
    hot: set[str]
    quantities: dict[str, int] = field(default_factory=dict)
    orders_made: int = 1

    def order_url(self, order_id: str) -> str:
        customer_id = order_id.partition("-")[0]
        return f"{self.base_url}/_admin/customers/{customer_id}/orders/{order_id}"

    def new_order_number(self) -> int:
        self.orders_made += 1
        return self.orders_made

    async def seed(self) -> None:
        """One order per customer: pending for the customers in flight, completed otherwise."""
        await self._each(
            ("POST", f"{self.base_url}/_admin/customers/{customer_id}/orders", order)
            for customer_id in self.customers
            for order in [{"orderId": f"{customer_id}-1", "status": self._status(customer_id)}]
        )
        self.quantities = {f"{customer_id}-1": 1 for customer_id in sorted(self.hot)}

    async def complete(self, orders: list[tuple[str, str]]) -> None:
        done = {"status": DONE, "lineItems": [{"extLineItemNumber": 1, "status": DONE}]}
        await self._each(("PATCH", self.order_url(order_id), done) for _, order_id in orders)

    async def admin(self, method: str, url: str, body: dict[str, Any]) -> None:
        async with self.session.request(method, url, json=body) as reply:
            if reply.status not in (200, 201):
                detail = await reply.text()
                raise bench.BenchError(f"{method} {url} answered {reply.status}: {detail}")

    async def _each(self, calls: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        limit = asyncio.Semaphore(ADMIN_CONCURRENCY)

        async def call(method: str, url: str, body: dict[str, Any]) -> None:
            async with limit:
                await self.admin(method, url, body)

        await asyncio.gather(*(call(*spec) for spec in calls))

    def _status(self, customer_id: str) -> str:
        return IN_FLIGHT if customer_id in self.hot else DONE


async def _bench(args: argparse.Namespace) -> list[Tally]:
    customers = [f"{FIRST_CUSTOMER + n:010d}" for n in range(args.customers)]
    hot = set(customers[: round(args.customers * args.in_flight)])
    one_pass_s = args.customers / args.rate
    seeded = argparse.Namespace(customers=1, orders=1)
    async with bench.simulator(seeded) as base_url, aiohttp.ClientSession() as session:
        world = World(session, base_url, customers, hot)
        await world.seed()
        tallies = []
        for label, hot_s, cold_s in (
            ("hot/cold", args.hot_s, args.cold_s),
            ("one cadence", None, one_pass_s),
        ):
            source = _source(base_url, customers, args, hot_s=hot_s, cold_s=cold_s)
            tally = Tally(label)
            await _run(source, tally, world, args, one_pass_s)
            tallies.append(tally)
    return tallies


def _source(
    base_url: str,
    customers: list[str],
    args: argparse.Namespace,
    *,
    hot_s: float | None,
    cold_s: float,
) -> SourceSettings:
    speedup = args.speedup
    return SourceSettings(
        name=SOURCE,
        provider="adobe_vip",
        base_url=base_url,
        customers=customers,
        poll_interval_s=cold_s / speedup,
        hot_interval_s=None if hot_s is None else hot_s / speedup,
        poll_jitter_s=args.hot_s / 10 / speedup,
        concurrency=8,
        page_size=100,
        auth=AuthSettings(
            token_url=base_url + TOKEN_PATH,
            client_id=CLIENT_ID,
            client_secret=SecretStr(CLIENT_SECRET),
        ),
        limits=LimitSettings(rate_per_s=args.rate * speedup, burst=max(1, round(args.rate))),
    )


async def _run(
    source: SourceSettings,
    tally: Tally,
    world: World,
    args: argparse.Namespace,
    one_pass_s: float,
) -> None:
    speedup = args.speedup
    with tempfile.TemporaryDirectory(prefix="order-watcher-bench-") as workdir:
        async with (
            store.opened(f"sqlite:///{workdir}/bench.db") as snapshots,
            sessions.pooled() as session,
        ):
            provider = app.build_provider(source, session)
            poller = Poller(source, provider, snapshots, clock=app.utc_now, on_sync=tally.heard)
            running = asyncio.create_task(poller.run())
            try:
                # The baseline, then a second pass: the steady schedule starts from there.
                everyone = len(world.customers)
                await tally.until(lambda: tally.reached[1] == everyone, within_s=None)
                await tally.until(lambda: tally.reached[2] == everyone, within_s=None)
                tally.measuring = True
                started = time.monotonic()
                created = await _change(tally, world, args)
                longest_s = max(one_pass_s, source.poll_interval_s * speedup)
                settle_s = SETTLE_TIMEOUT_PASSES * longest_s / speedup
                await tally.until(lambda: not tally.waiting, within_s=settle_s)
                tally.measured_s = time.monotonic() - started
            finally:
                poller.stop()
                await running
    await world.complete(created)


async def _change(tally: Tally, world: World, args: argparse.Namespace) -> list[tuple[str, str]]:
    """Changes at the configured rates for `--measure-s`: quantities of orders in flight,
    and new orders for customers with nothing in flight, one change per order at a time.
    The new orders are completed afterwards, so the next run starts as this one did."""
    rng = random.Random(SEED)
    speedup = args.speedup
    hot_orders = sorted(world.quantities)
    cold = [customer_id for customer_id in world.customers if customer_id not in world.hot]
    created: list[tuple[str, str]] = []
    ends = time.monotonic() + args.measure_s / speedup
    next_hot = next_cold = time.monotonic()
    while (now := time.monotonic()) < ends:
        if now >= next_hot:
            next_hot += 1 / (args.hot_changes_per_s * speedup)
            # Drawn from every order in flight, and skipped when that one still waits for
            # its event: drawing only among those already seen would change orders just
            # after their poll, and measure a whole interval each time.
            order_id = rng.choice(hot_orders)
            if order_id not in tally.waiting:
                world.quantities[order_id] += 1
                line = {"extLineItemNumber": 1, "quantity": world.quantities[order_id]}
                await world.admin("PATCH", world.order_url(order_id), {"lineItems": [line]})
                tally.waiting[order_id] = time.monotonic()
        if now >= next_cold and cold:
            next_cold += 1 / (args.cold_changes_per_s * speedup)
            customer_id = cold.pop(rng.randrange(len(cold)))
            order_id = f"{customer_id}-{world.new_order_number()}"
            url = f"{world.base_url}/_admin/customers/{customer_id}/orders"
            await world.admin("POST", url, {"orderId": order_id, "status": IN_FLIGHT})
            created.append((customer_id, order_id))
            tally.cold_orders.add(order_id)
            tally.waiting[order_id] = time.monotonic()
        await asyncio.sleep(max(0.0, min(next_hot, next_cold) - time.monotonic()))
    return created


def _report(args: argparse.Namespace, tallies: list[Tally]) -> list[str]:
    python = bench.shown_path(sys.executable)
    options = [
        *("--customers", str(args.customers), "--in-flight", f"{args.in_flight:g}"),
        *("--rate", f"{args.rate:g}", "--hot-s", f"{args.hot_s:g}", "--cold-s", f"{args.cold_s:g}"),
        *("--measure-s", f"{args.measure_s:g}", "--speedup", f"{args.speedup:g}"),
    ]
    one_pass_s = args.customers / args.rate
    lines = [
        f"command:   {shlex.join([python, '-m', 'tests.bench_schedule', *options])}",
        f"machine:   {platform.platform()}, {platform.python_implementation()} "
        f"{platform.python_version()}",
        f"budget:    {args.rate:g} requests/s; one pass of {args.customers} customers "
        f"takes {one_pass_s:,.0f} s; in flight: {round(args.customers * args.in_flight)}",
        "seconds are unscaled (x speedup); latency: change on the vendor -> event in the outbox",
        "",
    ]
    header = ("run", "changes", "p50 s", "p99 s", "max s", "p99/hot", "p99/pass", "polls/s")
    rows = [header]
    scale = args.speedup
    for tally in tallies:
        for kind, latencies in (("in flight", tally.hot_latency_s), ("new", tally.cold_latency_s)):
            if not latencies:
                continue
            p50, p99 = (scale * q for q in _quantiles(latencies))
            polls_per_s = tally.polls / max(tally.measured_s, 1e-9) / scale
            rows.append(
                (
                    f"{tally.label}, {kind}",
                    str(len(latencies)),
                    f"{p50:,.1f}",
                    f"{p99:,.1f}",
                    f"{scale * max(latencies):,.1f}",
                    f"{p99 / args.hot_s:.2f}",
                    f"{p99 / one_pass_s:.2f}",
                    f"{polls_per_s:.2f}",
                )
            )
    lines += bench.aligned(rows)
    for tally in tallies:
        lag = sorted(tally.lag_s)
        p99_lag = scale * lag[int(0.99 * (len(lag) - 1))] if lag else 0.0
        lines.append(f"{tally.label}: poll lag p99 {p99_lag:,.1f} s over {tally.polls} polls")
    return lines


def _quantiles(values: list[float]) -> tuple[float, float]:
    if len(values) == 1:
        return values[0], values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return statistics.median(values), cuts[98]


def _problems(tally: Tally) -> list[str]:
    found = [f"{tally.label}: poll failed: {failure}" for failure in tally.failures]
    if tally.waiting:
        found.append(f"{tally.label}: {len(tally.waiting)} changes got no event")
    if tally.unexplained:
        found.append(f"{tally.label}: {tally.unexplained} events no change explains")
    return found


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
