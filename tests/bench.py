"""Throughput of one source's poll cycle against the bundled simulator (`make bench`).

What runs: the Adobe VIP simulator in its own process (`order-watcher simulate --provider
adobe_vip`, on a free loopback port), so that everything measured here is the watcher alone.
In this process: one store (`--store`: SQLite in a temporary directory, or PostgreSQL: a
private cluster of the Debian package on loopback, fsync off, as the tests run it) and one
`Poller` over every customer of one source (`--concurrency` customers at a time, pages of
100 orders), logging at WARNING.

The cycles:

    0  fetch floor  a bare aiohttp client reading the same pages (one token, GET,
                  orjson.loads, the next link), the same customers at a time: the I/O a
                  cycle cannot do without, against which the others are compared
    1  baseline   the first sync: every order is new and is stored without an event
    2  unchanged  nothing changed on the vendor's side: fetch, parse, diff, no writes
    3  changed    `--changed-fraction` of all orders changed through the simulator's admin
                  API beforehand: a pending order completes (one order.status_changed, and
                  per line one line_item.status_changed and one provisioning_changed) or
                  one line's quantity goes up by one (one line_item.quantity_changed)

Which orders change, and how, is drawn with a seeded RNG (positions in each customer's
listing, then a full re-list of those customers over the vendor API to read the orders);
the listing and the patches happen between cycles, outside the measured time. Every cycle
must fetch every order, and write exactly the events its changes imply: none for the
baseline and the unchanged cycle.

Per cycle: wall seconds, orders fetched, events written to the outbox, orders/s, events/s
and the CPU seconds of this process (every thread, so SQLite's too) per 1,000 orders; with
PostgreSQL also the server's (its processes' CPU, read from /proc), and "x floor" is then
the watcher's and the server's together against the floor. Peak
RSS is this process's high-water mark so far (ru_maxrss), which only ever goes up; the
figure before the first cycle (interpreter, imports, open store) is printed for reference.

Reading the figures: the simulator shares the machine and answers every page, so wall time
includes its work and depends on the number of CPUs; CPU seconds per 1,000 orders is the
watcher's own cost and the steadier figure. Shared and virtual machines are noisy: compare
ratios within one run (unchanged or changed against the baseline) rather than absolute
numbers across runs or machines, and compare settings such as `--concurrency` only over
several runs of each. Nothing here passes or fails on speed. Exit status: 1 when a cycle
had poll errors or the orders or events are not what was expected (each is printed), 2
when the simulator did not start or refused a change, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import os
import platform
import random
import resource
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from pydantic import SecretStr

from tests.plugins.postgres import Cluster
from watcher import app, logs, store
from watcher.core.models import Order
from watcher.core.ports import Provider
from watcher.poller import CustomerSync, Poller
from watcher.providers import sessions
from watcher.settings import AuthSettings, LimitSettings, SourceSettings
from watcher.simulator.adobe_vip.routes import TOKEN_PATH
from watcher.simulator.adobe_vip.world import CLIENT_ID, CLIENT_SECRET

HOST = "127.0.0.1"
SOURCE = "adobe-bench"
FIRST_CUSTOMER = 1_000_000_001
PAGE_SIZE = 100
UNLIMITED_RATE_PER_S = 1_000_000.0
CHANGE_SEED = 20_240_601
ADMIN_CONCURRENCY = 16
SIMULATOR_START_TIMEOUT_S = 120.0
SIMULATOR_STOP_TIMEOUT_S = 5.0
PROBLEMS_SHOWN = 20


class BenchError(Exception):
    """The benchmark could not run: the simulator did not start or refused a change."""


@dataclass(frozen=True, slots=True)
class Cycle:
    """One measured cycle and what it was expected to yield."""

    label: str
    wall_s: float
    cpu_s: float
    server_cpu_s: float  # the database server's, when it has its own processes
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
class Run:
    """Everything a run measured: the cycles, the changes behind the last one, RSS at start."""

    cycles: list[Cycle]
    changes: list[Change]
    start_rss_mib: float


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
    # SIGTERM interrupts like Ctrl-C, so the simulator is stopped on the way out either way.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        run = asyncio.run(_bench(args))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    _report(args, run)
    return 1 if any(cycle.problems for cycle in run.cycles) else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--customers", type=positive, default=1000)
    parser.add_argument("--orders", type=positive, default=10, help="orders per customer")
    parser.add_argument(
        "--concurrency", type=positive, default=8, help="customers synced at once (max 256)"
    )
    parser.add_argument(
        "--changed-fraction", type=fraction, default=0.05, help="share of all orders changed"
    )
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    return parser


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


async def _bench(args: argparse.Namespace) -> Run:
    expected_orders = args.customers * args.orders
    async with contextlib.AsyncExitStack() as stack:
        base_url = await stack.enter_async_context(simulator(args))
        url, server_cpu_s = await _store_url(args, stack)
        snapshots = await stack.enter_async_context(store.opened(url))
        session = await stack.enter_async_context(sessions.pooled())
        source = _source(base_url, customers=args.customers, concurrency=args.concurrency)
        provider = app.build_provider(source, session)
        poller = Poller(source, provider, snapshots, clock=app.utc_now)
        app.freeze_heap()  # as the service does once it is built
        start_rss_mib = _peak_rss_mib()
        measure = functools.partial(_measure, server_cpu_s=server_cpu_s)
        floor = await measure(
            "fetch floor",
            lambda: _fetch_floor(session, base_url, source),
            orders=expected_orders,
            events=0,
        )
        baseline = await measure("baseline", poller.cycle, orders=expected_orders, events=0)
        unchanged = await measure("unchanged", poller.cycle, orders=expected_orders, events=0)
        changes = await _changes(provider, source.customers, args)
        await _apply(session, base_url, changes)
        implied = sum(change.events for change in changes)
        changed = await measure("changed", poller.cycle, orders=expected_orders, events=implied)
    return Run([floor, baseline, unchanged, changed], changes, start_rss_mib)


async def _store_url(
    args: argparse.Namespace, stack: contextlib.AsyncExitStack
) -> tuple[str, Callable[[], float]]:
    """The store's URL, and how much CPU its server has used so far (none for SQLite)."""
    if args.store == "sqlite":
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="order-watcher-bench-"))
        return f"sqlite:///{workdir}/bench.db", lambda: 0.0
    cluster = Cluster.create("bench")
    stack.callback(cluster.close)
    cluster.start()
    cluster.create_database("bench")
    return cluster.url_for("bench"), lambda: server_cpu_s(cluster.root)


def server_cpu_s(root: Path) -> float:
    """CPU seconds of a PostgreSQL cluster's processes: the postmaster (with its children
    that have ended) and every child still running, from /proc."""
    postmaster = int((root / "postmaster.pid").read_text().split()[0])
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # ended meanwhile
        pid, ppid = int(stat.parent.name), int(fields[1])
        if pid == postmaster:
            total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        elif ppid == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


async def _fetch_floor(
    session: aiohttp.ClientSession, base_url: str, source: SourceSettings
) -> list[CustomerSync]:
    """What a cycle costs at least: a bare client reading every customer's pages (one token,
    GET, orjson.loads, the next link), `concurrency` customers at a time, nothing else."""
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID}
    form |= {"client_secret": CLIENT_SECRET}
    async with session.post(base_url + TOKEN_PATH, data=form) as reply:
        token = orjson.loads(await reply.read())["access_token"]
    headers = {"Authorization": f"Bearer {token}", "X-Api-Key": CLIENT_ID}
    limit = asyncio.Semaphore(source.concurrency)

    async def read(customer_id: str) -> CustomerSync:
        orders = 0
        path: str | None = f"/v3/customers/{customer_id}/orders?limit={PAGE_SIZE}&offset=0"
        async with limit:
            while path is not None:
                request_headers = headers | {"X-Correlation-Id": customer_id}
                async with session.get(base_url + path, headers=request_headers) as reply:
                    page = orjson.loads(await reply.read())
                orders += len(page["items"])
                path = (page.get("links") or {}).get("next", {}).get("uri")
        return CustomerSync(SOURCE, customer_id, orders=orders)

    return await asyncio.gather(*map(read, source.fixed_customers))


async def _changes(
    provider: Provider, customers: Sequence[str], args: argparse.Namespace
) -> list[Change]:
    """The seeded choice of orders to change and how, from a listing of those orders."""
    rng = random.Random(CHANGE_SEED)
    picked = _pick(customers, orders=args.orders, fraction=args.changed_fraction, rng=rng)
    listed = await _list_picked(provider, picked, concurrency=args.concurrency)
    return _plan(listed, rng=rng)


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
        # The watcher's own speed is measured, not Adobe's politeness limit (10 requests/s
        # by default, which alone makes a 1,000-customer cycle last 100 s).
        limits=LimitSettings(rate_per_s=UNLIMITED_RATE_PER_S, burst=1_000),
    )


def _simulator_command(args: argparse.Namespace, port: str) -> list[str]:
    return [
        *(sys.executable, "-m", "watcher.cli", "--log-level", "WARNING", "simulate"),
        *("--host", HOST, "--port", port),
        *("--customers", str(args.customers), "--orders", str(args.orders)),
        *("--provider", "adobe_vip"),
    ]


@contextlib.asynccontextmanager
async def simulator(args: argparse.Namespace) -> AsyncIterator[str]:
    """The simulator's base URL while it runs in its own process; killed on the way out."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *_simulator_command(args, str(port)), stdout=subprocess.DEVNULL
    )
    try:
        base_url = f"http://{HOST}:{port}"
        await _wait_until_answering(base_url, process)
        yield base_url
    finally:
        await _stop(process)


def free_port() -> int:
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
    *,
    orders: int,
    events: int,
    server_cpu_s: Callable[[], float],
) -> Cycle:
    """Run `cycle` once, timed; `orders` and `events` are what it should yield."""
    gc.collect()
    server_started = server_cpu_s()
    wall_started, cpu_started = time.perf_counter(), time.process_time()
    results = await cycle()
    wall_s, cpu_s = time.perf_counter() - wall_started, time.process_time() - cpu_started
    return Cycle(
        label=label,
        wall_s=wall_s,
        cpu_s=cpu_s,
        server_cpu_s=server_cpu_s() - server_started,
        orders=sum(result.orders for result in results),
        events=sum(len(result.records) for result in results),
        expected_orders=orders,
        expected_events=events,
        peak_rss_mib=_peak_rss_mib(),
        failures=[result for result in results if result.error is not None],
    )


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes there, KiB here


@dataclass(frozen=True, slots=True)
class Listed:
    """What planning a change needs of one listed order; lines as (number, quantity, status)."""

    customer_id: str
    order_id: str
    status_raw: str
    lines: tuple[tuple[int, int, str], ...]

    @classmethod
    def of(cls, order: Order) -> Listed:
        lines = tuple((int(i.key), i.quantity, i.status_raw) for i in order.line_items)
        return cls(order.customer_id, order.order_id, order.status_raw, lines)


def _pick(
    customers: Sequence[str], *, orders: int, fraction: float, rng: random.Random
) -> dict[str, set[int]]:
    """`fraction` of every customer's `orders` order positions (in listing order), drawn."""
    total = len(customers) * orders
    picked: dict[str, set[int]] = {}
    for index in sorted(rng.sample(range(total), round(total * fraction))):
        picked.setdefault(customers[index // orders], set()).add(index % orders)
    return picked


async def _list_picked(
    provider: Provider, picked: dict[str, set[int]], *, concurrency: int
) -> list[Listed]:
    """The picked orders, from a full re-list of their customers over the vendor API.

    Only a `Listed` of each picked order is kept, so the listing holds no more canonical
    orders at once than a cycle does and leaves the peak RSS alone.
    """
    limit = asyncio.Semaphore(concurrency)

    async def listed(customer_id: str) -> list[Listed]:
        async with limit:
            orders = await provider.fetch_orders(customer_id, since=None)
        positions = picked[customer_id]
        return [Listed.of(order) for n, order in enumerate(orders) if n in positions]

    per_customer = await asyncio.gather(*map(listed, picked))
    return [order for orders in per_customer for order in orders if order.lines]


def _plan(orders: list[Listed], *, rng: random.Random) -> list[Change]:
    """Changes to `orders`: pending ones complete, the others gain quantity on one line."""
    return [
        _completion(order, rng) if order.status_raw == "1002" else _bump(order, rng)
        for order in orders
    ]


def _completion(order: Listed, rng: random.Random) -> Change:
    lines = [
        {
            "extLineItemNumber": number,
            "status": "1000",
            "subscriptionId": f"{rng.getrandbits(128):032x}",
        }
        for number, _, _ in order.lines
    ]
    # order.status_changed, then per line its status (unless already 1000) and provisioning
    events = 1 + sum(1 + (status != "1000") for _, _, status in order.lines)
    patch = {"status": "1000", "lineItems": lines}
    return Change(order.customer_id, order.order_id, "completed", patch, events)


def _bump(order: Listed, rng: random.Random) -> Change:
    number, quantity, _ = rng.choice(order.lines)
    patch = {"lineItems": [{"extLineItemNumber": number, "quantity": quantity + 1}]}
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


def _report(args: argparse.Namespace, run: Run) -> None:
    lines = [*_preamble(args), "", *_table(run.cycles), "", *_summary(run)]
    print("\n".join(lines))
    problems = _problems(run.cycles)
    if problems:
        print("\n".join(problems), file=sys.stderr)


def _preamble(args: argparse.Namespace) -> list[str]:
    options = {
        "--customers": args.customers,
        "--orders": args.orders,
        "--concurrency": args.concurrency,
        "--changed-fraction": args.changed_fraction,
    }
    store_option = ["--store", args.store] if args.store != "sqlite" else []
    python = shown_path(sys.executable)
    command = [python, "-m", "tests.bench"]
    command += [text for option, value in options.items() for text in (option, f"{value:g}")]
    command += store_option
    simulator = [python, *_simulator_command(args, "FREE")[1:]]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"command:   {shlex.join(command)}",
        f"simulator: {shlex.join(simulator)} (own process)",
        f"machine:   nproc {cpus}, {platform.platform()}, "
        f"{platform.python_implementation()} {platform.python_version()}",
    ]


def shown_path(path: str) -> str:
    """`path` relative to the working directory when it lies below it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _table(cycles: list[Cycle]) -> list[str]:
    server = any(cycle.server_cpu_s for cycle in cycles)
    header = (
        "cycle", "wall s", "orders", "events", "orders/s", "events/s", "CPU s/1k",
        *(["db CPU s/1k"] if server else []), "x floor", "RSS MiB",
    )  # fmt: skip
    rows = [header]
    floor = _cpu_per_order(cycles[0])
    for number, cycle in enumerate(cycles):
        per_order = cycle.server_cpu_s / max(cycle.orders, 1)
        rows.append(
            (
                f"{number} {cycle.label}",
                f"{cycle.wall_s:.2f}",
                str(cycle.orders),
                str(cycle.events),
                f"{cycle.orders / cycle.wall_s:,.0f}",
                f"{cycle.events / cycle.wall_s:,.0f}",
                f"{1000 * cycle.cpu_s / max(cycle.orders, 1):.3f}",
                *([f"{1000 * per_order:.3f}"] if server else []),
                f"{_cpu_per_order(cycle) / floor:.1f}" if floor else "-",
                f"{cycle.peak_rss_mib:.0f}",
            )
        )
    return aligned(rows)


def _cpu_per_order(cycle: Cycle) -> float:
    """The watcher's CPU per order, and its database server's when that has processes."""
    return (cycle.cpu_s + cycle.server_cpu_s) / max(cycle.orders, 1)


def _summary(run: Run) -> list[str]:
    changes, last = run.changes, run.cycles[-1]
    completed = sum(1 for change in changes if change.kind == "completed")
    implied = sum(change.events for change in changes)
    peak = max(cycle.peak_rss_mib for cycle in run.cycles)
    verdict = "as expected" if last.events == implied else "MISMATCH"
    return [
        "CPU s/1k: CPU seconds of this process per 1,000 orders (db: the PostgreSQL "
        "server's); x floor: both against the fetch floor's; RSS: peak so far, MiB",
        f"changed:   {len(changes)} of {last.expected_orders} orders ({completed} completed, "
        f"{len(changes) - completed} quantity +1): {implied} events implied, "
        f"{last.events} written, {verdict}",
        f"peak RSS:  {peak:.1f} MiB (this process; {run.start_rss_mib:.1f} MiB before cycle 0)",
    ]


def _problems(cycles: list[Cycle]) -> list[str]:
    """Every cycle's poll errors and wrong counts, the first `PROBLEMS_SHOWN` of them."""
    found = [
        f"PROBLEM in cycle {number} {cycle.label}: {problem}"
        for number, cycle in enumerate(cycles)
        for problem in cycle.problems
    ]
    if len(found) > PROBLEMS_SHOWN:
        found[PROBLEMS_SHOWN:] = [f"... and {len(found) - PROBLEMS_SHOWN} more problems"]
    return found


def aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    """A table's rows as lines: the first column left-aligned, the others right-aligned."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(
            [row[0].ljust(widths[0])]
            + [v.rjust(w) for v, w in zip(row[1:], widths[1:], strict=True)]
        )
        for row in rows
    ]


if __name__ == "__main__":
    sys.exit(main())
