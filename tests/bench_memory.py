"""Peak RSS of a watcher tracking 100,000 and 1,000,000 orders (`make bench`).

What runs: the Adobe VIP simulator in its own process, holding the largest `--orders`
count as customers of `--orders-per-customer` orders each (100,000 x 10 for a million). For
each count, one SQLite store in a temporary directory holds a snapshot of every order of
the first `count / orders-per-customer` customers, and a measured process of its own (this
module, run with `--watch`) watches them: one `Poller.run()` over every customer of one
source, `--concurrency` customers at a time, pages of 100 orders, logging at WARNING, until
each customer has been polled once. That pass is the measurement; the process then exits.
Neither the simulator nor this process is counted.

Seeding, in this process and before the measured one starts: every customer's orders are
listed over the vendor API by the Adobe adapter (a full re-list), recorded as a baseline
records them (`sync.reconcile` with `baseline`: snapshots, no events) and written as the
rows `commit_sync` writes, by the store's own row functions, many customers to a
transaction. Each customer's poll state says: baseline done, fully re-listed and last
polled at the seeding, due again at once, hot if an order is in flight. The store of a
smaller count is a copy of the larger one's as it stood when that count was reached.

The measured pass: the `run` loop resumes those schedules (every customer is due), and
each poll is the one that runs between two daily full re-lists: the customer's orders
created in the last `--lookback-days` (2 by default, about a tenth of the simulator's
orders, which it spreads over 20 days) are fetched and mapped, their stored fingerprints
read and compared, and the poll state committed. Nothing changed on the vendor's side, so
the pass must write no event and no snapshot. `--lookback-days 30` fetches and compares
every order in every poll instead (a full re-list's cost, several minutes for a million).

Figures, from the measured process: RSS before the first poll (interpreter, imports, the
open store, the source's customer list, the poller) from /proc/self/status (VmRSS); the
peak over the pass (VmHWM, the high-water mark, which only goes up) and the RSS at its
end. Not ru_maxrss: Linux carries the high-water mark of the process that spawned a child
over its exec into the child's, so a child of this process (large after seeding) would
report this process's peak. Growth per 100k orders is the
difference in peak RSS between two consecutive counts over the orders added, per 100,000.
With `--tracemalloc N` the measured process also traces its allocations and prints the N
lines whose allocations grew most from before the first poll to the end of the pass, and
the traced peak; tracing costs time (a pass several times longer) and memory of its own,
so the RSS figures of such a run are not the untraced ones.

Reading the figures: RSS depends on the allocator and on when the garbage collector ran,
so a few MiB either way is noise; compare counts within one run. The simulator shares the
machine, so wall times depend on it. Nothing here passes or fails on memory; the goal
(under 200 MB at a million orders) is printed beside the figures. Exit status: 1 when the
measured process failed, a poll failed, a customer was not polled or the pass wrote
events; 2 when the simulator did not start; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tests import bench
from watcher import app, logs, store
from watcher.core import sync
from watcher.core.ports import PollState
from watcher.poller import CustomerSync, Poller
from watcher.providers import sessions
from watcher.settings import SourceSettings
from watcher.store import schema
from watcher.store import sqlite as sqlite_store

SOURCE = "adobe-memory-bench"
DEFAULT_ORDERS = (100_000, 1_000_000)
GOAL_MB = 200
PER_100K = 100_000
SEED_BATCH = 500  # customers per seeding transaction
ONE_DAY_S = 86_400.0
PROBLEMS_SHOWN = 20
WATCH, SEED = "--watch", "--seed"


@dataclass(frozen=True, slots=True)
class Watched:
    """What the measured process reported about its pass over one store."""

    orders: int  # tracked: the snapshots in its store
    customers: int
    polls: int
    fetched: int
    events: int
    snapshots_written: int
    seconds: float
    cpu_s: float
    before_kib: int  # VmRSS before the first poll
    peak_kib: int  # VmHWM at the end of the pass
    end_kib: int  # VmRSS at the end of the pass
    failures: list[str]
    exit_status: int

    @property
    def problems(self) -> list[str]:
        found = [f"{self.orders} orders: {failure}" for failure in self.failures]
        if self.exit_status != 0:
            found.append(f"{self.orders} orders: the measured process exited {self.exit_status}")
        elif self.polls != self.customers:
            found.append(f"{self.orders} orders: {self.polls} of {self.customers} polled")
        if self.events or self.snapshots_written:
            found.append(
                f"{self.orders} orders: nothing changed, yet {self.events} events and "
                f"{self.snapshots_written} snapshots were written"
            )
        return found


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == [WATCH]:
        return _watch_main(argv[1:])
    if argv[:1] == [SEED]:
        return _seed_main(argv[1:])
    args = _parser().parse_args(argv)
    logs.configure(level="WARNING")
    # SIGTERM interrupts like Ctrl-C, so the simulator is stopped on the way out either way.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        runs = asyncio.run(_bench(args))
    except bench.BenchError as exc:
        print(f"bench_memory: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench_memory: interrupted", file=sys.stderr)
        return 130
    _report(args, runs)
    return 1 if any(run.problems for run in runs) else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench_memory", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--orders",
        type=bench.positive,
        nargs="+",
        default=list(DEFAULT_ORDERS),
        help="tracked orders, one measured process each (default: 100000 1000000)",
    )
    parser.add_argument("--orders-per-customer", type=bench.positive, default=10)
    parser.add_argument(
        "--concurrency", type=bench.positive, default=8, help="customers polled at once"
    )
    parser.add_argument(
        "--lookback-days",
        type=float,
        default=2.0,
        help="the measured polls' window (the simulator spreads orders over 20 days)",
    )
    parser.add_argument(
        "--seeders", type=bench.positive, default=2, help="processes seeding the stores"
    )
    parser.add_argument(
        "--tracemalloc",
        type=int,
        default=0,
        metavar="N",
        help="trace the measured processes' allocations and print the top N lines",
    )
    return parser


async def _bench(args: argparse.Namespace) -> list[Watched]:
    per_customer = args.orders_per_customer
    counts = sorted({max(1, orders // per_customer) for orders in args.orders})
    simulated = argparse.Namespace(customers=counts[-1], orders=per_customer)
    async with contextlib.AsyncExitStack() as stack:
        _say(f"starting the simulator: {counts[-1]:,} customers x {per_customer} orders")
        base_url = await stack.enter_async_context(bench.simulator(simulated))
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ow-memory-")))
        stores = await _seed_all(
            base_url, workdir, counts, concurrency=args.concurrency, workers=args.seeders
        )
        runs = []
        for customers, path in zip(counts, stores, strict=True):
            _say(f"measuring {customers:,} customers ({_tracked(path):,} orders stored)")
            runs.append(await _measure(args, base_url, path, customers))
    return runs


# --- Seeding --------------------------------------------------------------------------------


async def _seed_all(
    base_url: str, workdir: Path, counts: list[int], *, concurrency: int, workers: int
) -> list[Path]:
    """A store per count of customers; each smaller one a copy taken on the way."""
    work = workdir / "seeding.db"
    async with store.opened(f"sqlite:///{work}"):
        pass  # created and migrated by the store itself
    paths: list[Path] = []
    done = 0
    for count in counts:
        started = time.perf_counter()
        bounds = [done + (count - done) * n // workers for n in range(workers + 1)]
        parts = [workdir / f"part-{n}.db" for n in range(workers)]
        await asyncio.gather(
            *(
                _seed_in_child(base_url, part, first, last, concurrency=concurrency)
                for part, first, last in zip(parts, bounds, bounds[1:], strict=False)
            )
        )
        orders = _merge(work, parts)
        seconds = time.perf_counter() - started
        _say(f"seeded {count - done:,} customers, {orders:,} orders in {seconds:.0f}s")
        path = workdir / f"watched-{count}.db"
        if count == counts[-1]:
            work.rename(path)
        else:
            shutil.copyfile(work, path)
        paths.append(path)
        done = count
    return paths


async def _seed_in_child(
    base_url: str, part: Path, first: int, last: int, *, concurrency: int
) -> None:
    spec = {"db": str(part), "base_url": base_url, "first": first, "last": last}
    spec["concurrency"] = concurrency
    command = [sys.executable, "-m", "tests.bench_memory", SEED, json.dumps(spec)]
    process = await asyncio.create_subprocess_exec(*command)
    try:
        status = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if status != 0:
        raise bench.BenchError(f"seeding customers {first} to {last} exited {status}")


def _merge(work: Path, parts: list[Path]) -> int:
    """Move the rows of every part into the store at `work`; the snapshots moved."""
    moved = 0
    with contextlib.closing(sqlite3.connect(work, isolation_level=None)) as db:
        for part in parts:
            db.execute("ATTACH DATABASE ? AS part", (str(part),))
            db.execute("BEGIN IMMEDIATE")
            moved += db.execute("INSERT INTO snapshots SELECT * FROM part.snapshots").rowcount
            db.execute("INSERT INTO poll_state SELECT * FROM part.poll_state")
            db.execute("COMMIT")
            db.execute("DETACH DATABASE part")
            part.unlink()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return moved


def _seed_main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    logs.configure(level="WARNING")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    asyncio.run(_seed_part(spec))
    return 0


async def _seed_part(spec: dict[str, Any]) -> None:
    """List customers spec["first"] to spec["last"] over the vendor API and store them in
    a new store at spec["db"] as their baseline would."""
    async with store.opened(f"sqlite:///{spec['db']}"):
        pass  # created and migrated by the store itself
    source = _source(
        spec["base_url"], customers=spec["last"], concurrency=spec["concurrency"], lookback_days=30
    )
    customers = source.fixed_customers[spec["first"] :]
    limit = asyncio.Semaphore(source.concurrency)
    now = app.utc_now()
    updated_at = sqlite_store._to_text(now)
    async with sessions.pooled() as session:
        provider = app.build_provider(source, session)

        async def rows(customer_id: str) -> tuple[list[tuple[object, ...]], tuple[object, ...]]:
            async with limit:
                orders = await provider.fetch_orders(customer_id, since=None)
            result = sync.reconcile(orders, {}, baseline=True, now=now)
            if result.records:
                raise bench.BenchError(f"the baseline of {customer_id} raised events")
            snapshots = [
                sqlite_store._snapshot_row(SOURCE, customer_id, snapshot, updated_at)
                for snapshot in result.snapshots
            ]
            in_flight = frozenset(order.order_id for order in orders if order.in_flight)
            state = PollState(True, now, now, now, in_flight)
            return snapshots, (SOURCE, customer_id, *sqlite_store._state_values(state))

        with contextlib.closing(sqlite3.connect(spec["db"], isolation_level=None)) as db:
            db.execute("PRAGMA synchronous = NORMAL")
            for start in range(0, len(customers), SEED_BATCH):
                batch = await asyncio.gather(*map(rows, customers[start : start + SEED_BATCH]))
                db.execute("BEGIN IMMEDIATE")
                for snapshots, state in batch:
                    db.executemany(schema.UPSERT_SNAPSHOT, snapshots)
                    db.execute(schema.UPSERT_STATE, state)
                db.execute("COMMIT")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _tracked(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        ((count,),) = db.execute("SELECT count(*) FROM snapshots WHERE source = ?", (SOURCE,))
    return int(count)


def _written_since(path: Path, since: str) -> int:
    """The snapshots of the store at `path` written at or after `since` (store text)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        query = "SELECT count(*) FROM snapshots WHERE source = ? AND updated_at >= ?"
        ((count,),) = db.execute(query, (SOURCE, since))
    return int(count)


def _source(
    base_url: str, *, customers: int, concurrency: int, lookback_days: float
) -> SourceSettings:
    """The cycle bench's source (rate limit lifted), named apart, over one pass: after its
    poll, no customer falls due again before the pass ends."""
    source = bench._source(base_url, customers=customers, concurrency=concurrency)
    return source.model_copy(
        update={"name": SOURCE, "lookback_days": lookback_days, "poll_interval_s": ONE_DAY_S}
    )


# --- The measured process -------------------------------------------------------------------


async def _measure(args: argparse.Namespace, base_url: str, path: Path, customers: int) -> Watched:
    """Run the measured process over the store at `path`; what it reported."""
    spec = {
        "db": str(path),
        "base_url": base_url,
        "customers": customers,
        "concurrency": args.concurrency,
        "lookback_days": args.lookback_days,
        "tracemalloc": args.tracemalloc,
    }
    command = [sys.executable, "-m", "tests.bench_memory", WATCH, json.dumps(spec)]
    started_at = sqlite_store._to_text(app.utc_now())
    report, status = await asyncio.to_thread(_run_child, command)
    if report is None:
        report = {"failures": ["the measured process printed no report"]}
    report.setdefault("failures", [])
    fields = {field.name for field in dataclasses.fields(Watched)}
    fields -= {"orders", "customers", "snapshots_written", "exit_status"}
    values = {key: value for key, value in report.items() if key in fields}
    defaults = dict.fromkeys(fields - set(values) - {"failures"}, 0)
    return Watched(
        **(defaults | values | {"orders": _tracked(path), "customers": customers}),
        snapshots_written=_written_since(path, started_at),
        exit_status=status,
    )


def _run_child(command: list[str]) -> tuple[dict[str, Any] | None, int]:
    """The child's last JSON line and its exit status; its other lines are printed."""
    with subprocess.Popen(command, stdout=subprocess.PIPE) as process:
        output, _ = process.communicate()
    report = None
    for line in output.decode().splitlines():
        if line.startswith("{"):
            report = json.loads(line)
        else:
            print(line)  # the tracemalloc listing
    return report, process.returncode


def _kib(maxrss: int) -> int:
    return maxrss // 1024 if sys.platform == "darwin" else maxrss  # bytes there, KiB here


def _watch_main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    logs.configure(level="WARNING")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    top = int(spec["tracemalloc"])
    if top:
        tracemalloc.start(1)
    report = asyncio.run(_watch(spec, top=top))
    print(json.dumps(report), flush=True)
    return 0


async def _watch(spec: dict[str, Any], *, top: int) -> dict[str, Any]:
    """One pass of the `run` loop over every customer of the store at spec["db"]."""
    source = _source(
        spec["base_url"],
        customers=spec["customers"],
        concurrency=spec["concurrency"],
        lookback_days=spec["lookback_days"],
    )
    tally = {"polls": 0, "fetched": 0, "events": 0}
    failures: list[str] = []
    before: list[tracemalloc.Snapshot] = []
    after: list[tracemalloc.Snapshot] = []
    async with store.opened(f"sqlite:///{spec['db']}") as snapshots, sessions.pooled() as session:
        provider = app.build_provider(source, session)

        def on_sync(result: CustomerSync) -> None:
            tally["polls"] += 1
            tally["fetched"] += result.orders
            tally["events"] += len(result.records)
            if result.error is not None:
                failures.append(f"{result.customer_id}: {result.error}")
            if tally["polls"] == len(source.fixed_customers):
                if top:
                    after.append(tracemalloc.take_snapshot())
                poller.stop()

        poller = Poller(source, provider, snapshots, on_sync=on_sync, clock=app.utc_now)
        gc.collect()
        before_kib = _proc_status_kib("VmRSS")
        if top:
            before.append(tracemalloc.take_snapshot())
        started, cpu_started = time.perf_counter(), time.process_time()
        await poller.run()
        seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    peak_kib, end_kib = _proc_status_kib("VmHWM"), _proc_status_kib("VmRSS")
    if top:
        _print_growth(before[0], after[0] if after else tracemalloc.take_snapshot(), top=top)
    return tally | {
        "seconds": seconds,
        "cpu_s": cpu_s,
        "before_kib": before_kib,
        "peak_kib": peak_kib,
        "end_kib": end_kib,
        "failures": failures[:PROBLEMS_SHOWN],
    }


def _proc_status_kib(field: str) -> int:
    """A field of /proc/self/status in KiB; where there is none, the peak so far."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name == field:
                return int(value.split()[0])
    return _kib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _print_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, *, top: int) -> None:
    ignored = (tracemalloc.Filter(False, tracemalloc.__file__),)
    before, after = before.filter_traces(ignored), after.filter_traces(ignored)
    current, peak = tracemalloc.get_traced_memory()
    print(f"tracemalloc: {current / 2**20:.1f} MiB traced now, {peak / 2**20:.1f} MiB at peak")
    print(f"top {top} lines by growth over the pass (size, blocks):")
    for stat in after.compare_to(before, "lineno")[:top]:
        frame = stat.traceback[0]
        print(
            f"  {stat.size_diff / 2**20:+8.2f} MiB {stat.count_diff:+9,d}  "
            f"{bench.shown_path(frame.filename)}:{frame.lineno}"
        )


# --- The report -----------------------------------------------------------------------------


def _report(args: argparse.Namespace, runs: list[Watched]) -> None:
    lines = [*_preamble(args), "", *_table(runs), "", *_summary(runs)]
    print("\n".join(lines))
    problems = [problem for run in runs for problem in run.problems]
    if len(problems) > PROBLEMS_SHOWN:
        problems[PROBLEMS_SHOWN:] = [f"... and {len(problems) - PROBLEMS_SHOWN} more problems"]
    if problems:
        print("\n".join(f"PROBLEM: {problem}" for problem in problems), file=sys.stderr)


def _preamble(args: argparse.Namespace) -> list[str]:
    python = bench.shown_path(sys.executable)
    command = [python, "-m", "tests.bench_memory", "--orders", *map(str, args.orders)]
    command += ["--orders-per-customer", str(args.orders_per_customer)]
    command += [
        "--concurrency",
        str(args.concurrency),
        "--lookback-days",
        f"{args.lookback_days:g}",
    ]
    if args.tracemalloc:
        command += ["--tracemalloc", str(args.tracemalloc)]
    customers = max(args.orders) // args.orders_per_customer
    simulated = argparse.Namespace(customers=customers, orders=args.orders_per_customer)
    simulator = [python, *bench._simulator_command(simulated, "FREE")[1:]]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"command:   {shlex.join(command)}",
        f"simulator: {shlex.join(simulator)} (own process)",
        f"measured:  {python} -m tests.bench_memory {WATCH} SPEC (own process, one per count)",
        f"machine:   nproc {cpus}, {platform.platform()}, "
        f"{platform.python_implementation()} {platform.python_version()}",
    ]


def _table(runs: list[Watched]) -> list[str]:
    header = (
        "tracked orders", "customers", "polls", "fetched", "pass s", "CPU s", "RSS before MiB",
        "peak RSS MiB", "RSS at end MiB", "growth MiB/100k orders",
    )  # fmt: skip
    rows = [header]
    previous: Watched | None = None
    for run in runs:
        rows.append(
            (
                f"{run.orders:,}",
                f"{run.customers:,}",
                f"{run.polls:,}",
                f"{run.fetched:,}",
                f"{run.seconds:.0f}",
                f"{run.cpu_s:.0f}",
                f"{run.before_kib / 1024:.1f}",
                f"{run.peak_kib / 1024:.1f}",
                f"{run.end_kib / 1024:.1f}",
                "-" if previous is None else f"{_growth(previous, run):+.2f}",
            )
        )
        previous = run
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    return ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in rows]


def _growth(smaller: Watched, larger: Watched) -> float:
    """MiB of peak RSS per 100,000 tracked orders between two counts."""
    added = larger.orders - smaller.orders
    mib = (larger.peak_kib - smaller.peak_kib) / 1024
    return mib / (added / PER_100K) if added else 0.0


def _summary(runs: list[Watched]) -> list[str]:
    largest = runs[-1]
    goal_mib = GOAL_MB * 10**6 / 2**20
    verdict = "under" if largest.peak_kib / 1024 < goal_mib else "OVER"
    return [
        "RSS before: the measured process before its first poll (imports, store, customer "
        "list, poller); peak: its high-water mark over the pass (VmHWM); fetched: orders "
        "the pass's polls listed",
        f"peak RSS:  {largest.peak_kib / 1024:.1f} MiB at {largest.orders:,} orders, {verdict} "
        f"the goal of {GOAL_MB} MB ({goal_mib:.1f} MiB)",
    ]


def _say(text: str) -> None:
    print(f"{datetime.now().astimezone():%H:%M:%S}  {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
