"""Poll cycles of one replica against two sharing one PostgreSQL store (`make bench`).

What runs: the Adobe VIP simulator in its own process (as `tests.bench`), a private
PostgreSQL cluster on loopback (fsync off, as the tests run it), and per run `--replicas`
worker processes (`python -m tests.bench_fleet --worker ...`), each a shared `Poller` with
its `Fleet` on the same database. The workers beat until the leases have settled into fair
shares, then sync the customers they hold, all starting at one signal from this process:
the baseline, a cycle with nothing changed, and one after `--changed-fraction` of all
orders changed (between the cycles, outside the measured time). One run per replica count,
each on a database of its own, in this one invocation. The simulator's orders keep the
changes of the runs before; the picks are seeded, so each run's changed cycle changes the
same orders again, and is checked against the events its own changes imply.

Per cycle and run: wall seconds (the slowest worker's, from the common start), orders and
events (summed over the workers), orders/s, and CPU seconds per 1,000 orders: the workers'
(each its own process) and the PostgreSQL server's. Compare within one invocation: the
simulator, the server and every worker share this machine's cores, so two replicas on two
cores are bounded by the cores, not by the fleet. Nothing passes or fails on speed; exit
status 1 when a cycle had errors or the counts are not what the changes imply.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from tests import bench
from tests.plugins.postgres import Cluster
from watcher import app, logs
from watcher.core.ports import Fence
from watcher.fleet import Fleet
from watcher.poller import Poller
from watcher.providers import sessions
from watcher.store import postgres

LEASE_S = 120.0  # nothing expires during a run
CYCLES = ("baseline", "unchanged", "changed")


@dataclass(frozen=True, slots=True)
class Part:
    """One worker's share of one cycle."""

    wall_s: float
    cpu_s: float
    orders: int
    events: int
    errors: int


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(level="WARNING")
    if args.worker:
        asyncio.run(_work(args))
        return 0
    try:
        runs = asyncio.run(_bench(args))
    except bench.BenchError as exc:
        print(f"bench_fleet: {exc}", file=sys.stderr)
        return 2
    print("\n".join(_report(args, runs)))
    return 1 if any(problem for _, _, problem in _rows(runs)) else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench_fleet", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--customers", type=bench.positive, default=1000)
    parser.add_argument("--orders", type=bench.positive, default=10)
    parser.add_argument("--concurrency", type=bench.positive, default=8)
    parser.add_argument("--changed-fraction", type=bench.fraction, default=0.05)
    parser.add_argument("--replicas", type=bench.positive, nargs="+", default=[1, 2])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    parser.add_argument("--of", type=int, help=argparse.SUPPRESS)
    return parser


# --- this process ------------------------------------------------------------------------


Run = tuple[int, dict[str, tuple[list[Part], float, int]]]  # replicas, cycle -> parts, db, implied


async def _bench(args: argparse.Namespace) -> list[Run]:
    runs: list[Run] = []
    async with contextlib.AsyncExitStack() as stack:
        base_url = await stack.enter_async_context(bench.simulator(args))
        cluster = Cluster.create("bench-fleet")
        stack.callback(cluster.close)
        cluster.start()
        session = await stack.enter_async_context(sessions.pooled())
        source = bench._source(base_url, customers=args.customers, concurrency=args.concurrency)
        provider = app.build_provider(source, session)
        for count in args.replicas:
            database = f"fleet_{count}"
            cluster.create_database(database)
            url = cluster.url_for(database)
            workers = [await _spawn(args, url, base_url, n, count) for n in range(count)]
            await asyncio.gather(*(_ready(worker, n) for n, worker in enumerate(workers)))
            cycles: dict[str, tuple[list[Part], float, int]] = {}
            try:
                for cycle in CYCLES:
                    implied = 0
                    if cycle == "changed":
                        changes = await bench._changes(provider, source.customers, args)
                        await bench._apply(session, base_url, changes)
                        implied = sum(change.events for change in changes)
                    db_started = bench.server_cpu_s(cluster.root)
                    parts = await _cycle(workers)
                    cycles[cycle] = (parts, bench.server_cpu_s(cluster.root) - db_started, implied)
            finally:
                for worker in workers:
                    await _end(worker)
            runs.append((count, cycles))
    return runs


async def _spawn(
    args: argparse.Namespace, url: str, base_url: str, number: int, count: int
) -> asyncio.subprocess.Process:
    command = [
        *(sys.executable, "-m", "tests.bench_fleet", "--worker"),
        *("--url", url, "--base-url", base_url, "--name", f"w{number}", "--of", str(count)),
        *("--customers", str(args.customers), "--concurrency", str(args.concurrency)),
    ]
    return await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )


async def _ready(worker: asyncio.subprocess.Process, number: int) -> None:
    """Wait for the worker to hold its fair share (every worker must have started)."""
    assert worker.stdout is not None
    line = await asyncio.wait_for(worker.stdout.readline(), timeout=120)
    if line.strip() != b"ready":
        raise bench.BenchError(f"worker {number} did not start: {line!r}")


async def _cycle(workers: list[asyncio.subprocess.Process]) -> list[Part]:
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(b"go\n")
    for worker in workers:
        assert worker.stdin is not None
        await worker.stdin.drain()
    parts = []
    for worker in workers:
        assert worker.stdout is not None
        line = await asyncio.wait_for(worker.stdout.readline(), timeout=600)
        parts.append(Part(**orjson.loads(line)))
    return parts


async def _end(worker: asyncio.subprocess.Process) -> None:
    if worker.stdin is not None and worker.returncode is None:
        worker.stdin.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(worker.wait(), timeout=30)
    if worker.returncode is None:
        worker.kill()
        await worker.wait()


def _rows(runs: list[Run]) -> list[tuple[str, list[str], str]]:
    rows = []
    for count, cycles in runs:
        for name, (parts, db_cpu_s, implied) in cycles.items():
            wall_s = max(part.wall_s for part in parts)
            orders = sum(part.orders for part in parts)
            events = sum(part.events for part in parts)
            cpu_s = sum(part.cpu_s for part in parts)
            errors = sum(part.errors for part in parts)
            problem = ""
            if (
                errors
                or (name != "changed" and events)
                or (name == "changed" and events != implied)
            ):
                problem = f"{count} replica(s), {name}: {errors} errors, {events} events"
            rows.append(
                (
                    name,
                    [
                        f"{count} x {name}",
                        f"{wall_s:.2f}",
                        str(orders),
                        str(events),
                        f"{orders / wall_s:,.0f}",
                        f"{1000 * cpu_s / max(orders, 1):.3f}",
                        f"{1000 * db_cpu_s / max(orders, 1):.3f}",
                    ],
                    problem,
                )
            )
    return rows


def _report(args: argparse.Namespace, runs: list[Run]) -> list[str]:
    command = [bench.shown_path(sys.executable), "-m", "tests.bench_fleet"]
    command += ["--customers", str(args.customers), "--orders", str(args.orders)]
    command += ["--replicas", *map(str, args.replicas)]
    header = ["replicas x cycle", "wall s", "orders", "events", "orders/s", "CPU s/1k", "db s/1k"]
    rows = _rows(runs)
    lines = [f"command: {' '.join(command)}", ""]
    lines += bench.aligned([header, *(row for _, row, _ in rows)])
    by_cycle: dict[str, list[float]] = {}
    for name, row, _ in rows:
        by_cycle.setdefault(name, []).append(float(row[4].replace(",", "")))
    speedups = ", ".join(
        f"{name} {rates[-1] / rates[0]:.2f}x" for name, rates in by_cycle.items() if rates[0]
    )
    lines += ["", f"orders/s of the last run against the first: {speedups}"]
    lines += [problem for _, _, problem in rows if problem]
    return lines


# --- a worker ----------------------------------------------------------------------------


async def _work(args: argparse.Namespace) -> None:
    """One replica: take a fair share of the leases, then sync it at each `go` on stdin."""
    store = await postgres.PostgresStore.open(args.url)
    try:
        async with sessions.pooled() as session:
            source = bench._source(
                args.base_url, customers=args.customers, concurrency=args.concurrency
            )
            provider = app.build_provider(source, session)
            poller = Poller(source, provider, store, clock=app.utc_now, shared=True)
            fleet = Fleet(store, replica=args.name, lease_s=LEASE_S)
            fleet.add(poller, provider.limiter)
            fair = math.ceil(args.customers / args.of)
            while fleet.alive < args.of or len(poller.fences) != fair:
                await fleet.beat()
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # every other worker has settled too
            await fleet.beat()
            print("ready", flush=True)
            reader = await _stdin()
            while (await reader.readline()).strip() == b"go":
                part = await _sync_held(poller, poller.fences, source.concurrency)
                print(orjson.dumps(dataclasses.asdict(part)).decode(), flush=True)
    finally:
        await store.close()


async def _sync_held(poller: Poller, fences: dict[str, Fence], concurrency: int) -> Part:
    limit = asyncio.Semaphore(concurrency)

    async def one(customer_id: str) -> tuple[int, int, bool]:
        async with limit:
            result = await poller.sync_customer(customer_id)
        return result.orders, len(result.records), result.error is not None

    wall_started, cpu_started = time.perf_counter(), time.process_time()
    results = await asyncio.gather(*map(one, sorted(fences)))
    wall_s, cpu_s = time.perf_counter() - wall_started, time.process_time() - cpu_started
    return Part(
        wall_s=wall_s,
        cpu_s=cpu_s,
        orders=sum(orders for orders, _, _ in results),
        events=sum(events for _, events, _ in results),
        errors=sum(failed for _, _, failed in results),
    )


async def _stdin() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


if __name__ == "__main__":
    sys.exit(main())
