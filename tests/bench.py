"""Throughput of one source's poll cycle against the bundled simulator (`make bench`).

What runs: the Adobe VIP simulator in its own process (`order-watcher simulate`, on a free
loopback port), so that everything measured here is the watcher alone. In this process: one
SQLite store in a temporary directory and one `Poller` over every customer of one source
(`--concurrency` customers at a time, pages of 100 orders), logging at WARNING.

The cycles:

    0  baseline   the first sync: every order is new and is stored without an event
    1  unchanged  nothing changed on the vendor's side: fetch, parse, diff, no writes
    2  changed    `--changed-fraction` of all orders changed through the simulator's admin
                  API beforehand: a pending order completes (one order.status_changed, and
                  per line one line_item.status_changed and one provisioning_changed) or
                  one line's quantity goes up by one (one line_item.quantity_changed)

The orders to change are drawn with a seeded RNG from a listing of every customer's orders
over the vendor API; the listing and the changes happen between cycles, outside the
measured time. Each cycle's event count is checked against what the changes imply.

Per cycle: wall seconds, orders fetched, events written to the outbox, orders/s, events/s
and the CPU seconds of this process (every thread, so SQLite's too) per 1,000 orders. Peak
RSS is this process's high-water mark so far (ru_maxrss), which only ever goes up.

Reading the figures: the simulator shares the machine and answers every page, so wall time
includes its work and depends on the number of CPUs; CPU seconds per 1,000 orders is the
watcher's own cost and the steadier figure. Shared and virtual machines are noisy: compare
ratios within one run (unchanged vs changed, one concurrency vs another) rather than
absolute numbers across runs or machines. Nothing here passes or fails on speed; the exit
status is 1 when a cycle had poll errors or the orders or events are not what was expected.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import platform
import random
import resource
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from pydantic import SecretStr

from watcher import app, logs, store
from watcher.core.models import Order
from watcher.core.ports import Provider
from watcher.poller import CustomerSync, Poller
from watcher.settings import AuthSettings, SourceSettings
from watcher.simulator import CLIENT_ID, CLIENT_SECRET
from watcher.simulator.adobe_vip import TOKEN_PATH

HOST = "127.0.0.1"
SOURCE = "adobe-bench"
FIRST_CUSTOMER = 1_000_000_001
PAGE_SIZE = 100
CHANGE_SEED = 20_240_601
ADMIN_CONCURRENCY = 16
SIMULATOR_START_TIMEOUT_S = 120.0
SIMULATOR_STOP_TIMEOUT_S = 5.0


class BenchError(Exception):
    """The benchmark could not run: the simulator did not start or refused a change."""


@dataclass(frozen=True, slots=True)
class Cycle:
    """One measured cycle and what it was expected to yield."""

    label: str
    wall_s: float
    cpu_s: float
    orders: int
    events: int
    expected_orders: int
    expected_events: int
    peak_rss_mib: float
    failures: list[CustomerSync]

    @property
    def problems(self) -> list[str]:
        found = [f"{f.customer_id}: {f.error}" for f in self.failures]
        if self.orders != self.expected_orders:
            found.append(f"{self.orders} orders fetched, {self.expected_orders} expected")
        if self.events != self.expected_events:
            found.append(f"{self.events} events written, {self.expected_events} expected")
        return found


@dataclass(frozen=True, slots=True)
class Change:
    """One admin patch and the number of events it must raise."""

    customer_id: str
    order_id: str
    kind: str
    patch: dict[str, Any]
    events: int


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(level="WARNING")
    try:
        cycles, changes = asyncio.run(_bench(args))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    _report(args, cycles, changes)
    return 1 if any(cycle.problems for cycle in cycles) else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--orders", type=int, default=10, help="orders per customer")
    parser.add_argument("--concurrency", type=int, default=8, help="customers synced at once")
    parser.add_argument("--changed-fraction", type=float, default=0.05)
    return parser


async def _bench(args: argparse.Namespace) -> tuple[list[Cycle], list[Change]]:
    expected_orders = args.customers * args.orders
    async with contextlib.AsyncExitStack() as stack:
        base_url = await stack.enter_async_context(_simulator(args))
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="order-watcher-bench-"))
        snapshots = await stack.enter_async_context(store.opened(f"sqlite:///{workdir}/bench.db"))
        session = await stack.enter_async_context(app.http_session())
        source = _source(base_url, customers=args.customers, concurrency=args.concurrency)
        provider = app.build_provider(source, session)
        poller = Poller(source, provider, snapshots, clock=app.utc_now)
        baseline = await _measure("baseline", poller.cycle, expected_orders, 0)
        unchanged = await _measure("unchanged", poller.cycle, expected_orders, 0)
        listed = await _list_orders(provider, source.customers, concurrency=args.concurrency)
        changes = _plan(listed, fraction=args.changed_fraction, rng=random.Random(CHANGE_SEED))
        await _apply(session, base_url, changes)
        implied = sum(change.events for change in changes)
        changed = await _measure("changed", poller.cycle, expected_orders, implied)
    return [baseline, unchanged, changed], changes


def _source(base_url: str, *, customers: int, concurrency: int) -> SourceSettings:
    return SourceSettings(
        name=SOURCE,
        provider="adobe_vip",
        base_url=base_url,
        customers=[f"{FIRST_CUSTOMER + n:010d}" for n in range(customers)],
        concurrency=concurrency,
        page_size=PAGE_SIZE,
        auth=AuthSettings(
            token_url=base_url + TOKEN_PATH,
            client_id=CLIENT_ID,
            client_secret=SecretStr(CLIENT_SECRET),
        ),
    )


def _simulator_command(args: argparse.Namespace, port: str) -> list[str]:
    return [
        *(sys.executable, "-m", "watcher.cli", "--log-level", "WARNING", "simulate"),
        *("--host", HOST, "--port", port),
        *("--customers", str(args.customers), "--orders", str(args.orders)),
    ]


@contextlib.asynccontextmanager
async def _simulator(args: argparse.Namespace) -> AsyncIterator[str]:
    """The simulator's base URL while it runs in its own process; killed on the way out."""
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        *_simulator_command(args, str(port)), stdout=subprocess.DEVNULL
    )
    try:
        base_url = f"http://{HOST}:{port}"
        await _wait_until_answering(base_url, process)
        yield base_url
    finally:
        await _stop(process)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


async def _wait_until_answering(base_url: str, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + SIMULATOR_START_TIMEOUT_S
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise BenchError(f"the simulator exited with status {process.returncode}")
            with contextlib.suppress(aiohttp.ClientConnectionError):
                async with session.get(base_url + "/v3/customers/0/orders"):
                    return  # any reply, even 403 without a token, means it is serving
            await asyncio.sleep(0.1)
    raise BenchError(f"the simulator did not answer within {SIMULATOR_START_TIMEOUT_S:g}s")


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), timeout=SIMULATOR_STOP_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()


async def _measure(
    label: str,
    cycle: Callable[[], Awaitable[list[CustomerSync]]],
    expected_orders: int,
    expected_events: int,
) -> Cycle:
    gc.collect()
    wall_started, cpu_started = time.perf_counter(), time.process_time()
    results = await cycle()
    wall_s, cpu_s = time.perf_counter() - wall_started, time.process_time() - cpu_started
    return Cycle(
        label=label,
        wall_s=wall_s,
        cpu_s=cpu_s,
        orders=sum(result.orders for result in results),
        events=sum(result.records for result in results),
        expected_orders=expected_orders,
        expected_events=expected_events,
        peak_rss_mib=_peak_rss_mib(),
        failures=[result for result in results if result.error is not None],
    )


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes there, KiB here


async def _list_orders(
    provider: Provider, customers: Iterable[str], *, concurrency: int
) -> list[Order]:
    """Every order of every customer, as the vendor API lists them (a full re-list)."""
    limit = asyncio.Semaphore(concurrency)

    async def listed(customer_id: str) -> list[Order]:
        async with limit:
            return await provider.fetch_orders(customer_id, since=None)

    per_customer = await asyncio.gather(*map(listed, customers))
    return [order for orders in per_customer for order in orders if order.line_items]


def _plan(orders: list[Order], *, fraction: float, rng: random.Random) -> list[Change]:
    """`fraction` of `orders`, drawn with `rng`: pending ones complete, others gain quantity."""
    ordered = sorted(orders, key=lambda order: (order.customer_id, order.order_id))
    chosen = rng.sample(ordered, min(len(ordered), round(len(ordered) * fraction)))
    return [
        _completion(order, rng) if order.status_raw == "1002" else _bump(order, rng)
        for order in chosen
    ]


def _completion(order: Order, rng: random.Random) -> Change:
    lines = [
        {
            "extLineItemNumber": int(line.key),
            "status": "1000",
            "subscriptionId": f"{rng.getrandbits(128):032x}",
        }
        for line in order.line_items
    ]
    # order.status_changed, then per line its status (unless already 1000) and provisioning
    events = 1 + sum(1 + (line.status_raw != "1000") for line in order.line_items)
    patch = {"status": "1000", "lineItems": lines}
    return Change(order.customer_id, order.order_id, "completed", patch, events)


def _bump(order: Order, rng: random.Random) -> Change:
    line = rng.choice(order.line_items)
    patch = {"lineItems": [{"extLineItemNumber": int(line.key), "quantity": line.quantity + 1}]}
    return Change(order.customer_id, order.order_id, "quantity", patch, 1)


async def _apply(session: aiohttp.ClientSession, base_url: str, changes: list[Change]) -> None:
    """Every change through PATCH /_admin/customers/{cid}/orders/{oid}; BenchError if refused."""
    limit = asyncio.Semaphore(ADMIN_CONCURRENCY)

    async def patch(change: Change) -> None:
        url = f"{base_url}/_admin/customers/{change.customer_id}/orders/{change.order_id}"
        async with limit, session.patch(url, json=change.patch) as reply:
            if reply.status != 200:
                detail = await reply.text()
                raise BenchError(f"PATCH {url} answered {reply.status}: {detail}")

    await asyncio.gather(*map(patch, changes))


def _report(args: argparse.Namespace, cycles: list[Cycle], changes: list[Change]) -> None:
    for line in _preamble(args):
        print(line)
    print()
    for line in _table(cycles):
        print(line)
    print()
    for line in _summary(cycles, changes):
        print(line)


def _preamble(args: argparse.Namespace) -> list[str]:
    options = [
        *("--customers", str(args.customers), "--orders", str(args.orders)),
        *(
            "--concurrency",
            str(args.concurrency),
            "--changed-fraction",
            f"{args.changed_fraction:g}",
        ),
    ]
    python = _shown_path(sys.executable)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"command:   {shlex.join([python, '-m', 'tests.bench', *options])}",
        f"simulator: {shlex.join([python, *_simulator_command(args, 'FREE')[1:]])} (own process)",
        f"machine:   nproc {cpus}, {platform.platform()}, "
        f"{platform.python_implementation()} {platform.python_version()}",
    ]


def _shown_path(path: str) -> str:
    """`path` relative to the working directory when it lies below it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _table(cycles: list[Cycle]) -> list[str]:
    header = ("cycle", "wall s", "orders", "events", "orders/s", "events/s", "CPU s/1k", "RSS MiB")
    rows = [header]
    for number, cycle in enumerate(cycles):
        rows.append(
            (
                f"{number} {cycle.label}",
                f"{cycle.wall_s:.2f}",
                str(cycle.orders),
                str(cycle.events),
                f"{cycle.orders / cycle.wall_s:,.0f}",
                f"{cycle.events / cycle.wall_s:,.0f}",
                f"{1000 * cycle.cpu_s / max(cycle.orders, 1):.3f}",
                f"{cycle.peak_rss_mib:.0f}",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    return [
        "  ".join(
            [row[0].ljust(widths[0])]
            + [v.rjust(w) for v, w in zip(row[1:], widths[1:], strict=True)]
        )
        for row in rows
    ]


def _summary(cycles: list[Cycle], changes: list[Change]) -> list[str]:
    completed = sum(1 for change in changes if change.kind == "completed")
    implied = sum(change.events for change in changes)
    lines = [
        f"changed:   {len(changes)} orders ({completed} completed, {len(changes) - completed} "
        f"quantity +1) -> {implied} events expected, {cycles[-1].events} written",
        f"peak RSS:  {max(cycle.peak_rss_mib for cycle in cycles):.1f} MiB (this process)",
    ]
    for number, cycle in enumerate(cycles):
        lines.extend(f"PROBLEM in cycle {number} {cycle.label}: {p}" for p in cycle.problems)
    return lines


if __name__ == "__main__":
    sys.exit(main())
