"""Throughput and latency of the outbox relay against a private RabbitMQ node (`make bench`).

What runs: one private RabbitMQ node on loopback (tests/plugins/rabbit.py's `Broker`), started
and stopped by this run; everything else in this process. The events are real ones: one
order.created per new Adobe VIP order, built by `sync.reconcile` and encoded as the poller
encodes them (CloudEvents JSON, about 1 KB each), committed with the orders' snapshots by the
store's `commit_sync`, ten orders per customer. Building and committing happen before the
clock starts.

The phases, on the same broker, in one run; each of the first two `--rounds` times, in turn:

    floor    a bare aio-pika publisher: connect, a channel with publisher confirms, a
             durable topic exchange and a bound durable queue of `--queue-type`, then the
             same bodies and routing keys as the relay's, persistent and mandatory, with
             at most `--window` publishes awaiting their confirm: the broker's and the
             client library's cost, which the relay cannot go below
    relay    a SQLite store holding `--events` committed outbox rows, drained by watcher's
             `Relay` with its real `Publisher` (`relay.drain`), same window, the service's
             topology (a queue of the same type bound with "#")
    latency  the relay running as the service runs it (`relay.run()`), woken after each
             commit as the poller's `on_sync` wakes it, while batches of `--commit-batch`
             events are committed every `--commit-batch / --rate` seconds, on a schedule
             that does not drift, for `--seconds`

Before each throughput phase what the process holds is frozen (`app.freeze_heap`, as `run`
does once the service is built): the events held for the phases, the store's rows read
back, the modules; the cyclic collector then no longer walks them at every full collection,
which in the relay's phase alone had cost a third of its CPU.

Connecting and declaring are left out of both throughput phases: the floor is timed from
its first publish to its last confirm, the relay from its first read of the outbox to the
return of its last `mark_published` (so its SQLite reads and writes count). The floor and
the relay publish to queues of their own, each purged after its round, so every round
starts from empty queues. Reported: events/s, the relay's against the floor's of the same
round (the summary line compares the medians over the rounds), and the CPU time of this
process per 1,000 events over the same interval (every thread, so the store's SQLite
thread too): the client's own cost, which the broker's speed and the machine's other load
sway less.

Latency is measured per event from the moment its `commit_sync` returned to the moment the
relay called `mark_published` with its id: the relay only does that once it holds the
broker's confirm of that event (and of the others in its batch), so this is the confirm
time as the service knows it, an upper bound of the broker's own confirm by at most the
rest of the batch's confirms; the store's `published_at` is the same moment on the wall
clock. Consumer deliveries are not used: a delivery is not a confirm. p50/p90/p99/max are
of all events; the goal is p99 < 50 ms at 1,000 events/s.

`--profile` adds one more relay drain under cProfile after the measured rounds, not in the
table, and prints its top functions by internal time. `--uvloop` runs the event loop with
uvloop when it is importable (it is not a dependency of the project); the preamble says
which loop ran.

Reading the figures: the broker shares the machine's CPUs with this process, so both
throughputs depend on the number of CPUs and on whatever else runs; compare the relay with
the floor of the same round, not absolute figures across runs or machines. Nothing here
passes or fails on speed. Exit status: 1 when an event was not published or a queue does
not hold what was published (each problem is printed), 2 when the broker did not start or
cannot be run here, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import os
import platform
import pstats
import shlex
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel

from tests import bench
from tests.orders import line, order
from tests.plugins import rabbit
from watcher import app, logs, store
from watcher.bus.publisher import Publisher
from watcher.bus.relay import Relay
from watcher.core import sync
from watcher.core.ports import Outbox, OutboxRecord, OutboxStats, PollState, Snapshot, Store
from watcher.settings import AmqpSettings, QueueSettings

SOURCE = "adobe-bench"
ORDERS_PER_CUSTOMER = 10
FLOOR_EXCHANGE = "bench.floor"
FLOOR_QUEUE = "bench.floor"
RELAY_QUEUE = "bench.relay"
DRAIN_TIMEOUT_S = 600.0
SETTLE_TIMEOUT_S = 60.0
PROFILE_LINES = 25
T0 = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


class BenchError(Exception):
    """The benchmark could not run: no broker, or it did not start."""


@dataclass(frozen=True, slots=True)
class Group:
    """One customer's commit: its new orders' snapshots and their order.created events."""

    customer_id: str
    snapshots: list[Snapshot]
    records: list[OutboxRecord]


@dataclass(frozen=True, slots=True)
class Throughput:
    """One timed publish of `events` events (floor or relay)."""

    label: str
    round: int
    events: int
    published: int
    seconds: float
    cpu_s: float

    @property
    def per_s(self) -> float:
        return self.published / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_1k(self) -> float:
        return 1e6 * self.cpu_s / self.published if self.published else 0.0


@dataclass(frozen=True, slots=True)
class Latency:
    """Commit-to-confirm latencies in ms, and the pace the commits kept."""

    committed: int
    confirmed: int
    seconds: float
    ms: list[float]

    def quantile(self, q: float) -> float:
        ordered = sorted(self.ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


@dataclass(slots=True)
class Run:
    """Everything a run measured, and what went wrong."""

    throughputs: list[Throughput] = field(default_factory=list)
    latency: Latency | None = None
    profile: str = ""
    problems: list[str] = field(default_factory=list)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(level="WARNING")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    loop_name, runner = _event_loop(want_uvloop=args.uvloop)
    try:
        broker = _started_broker()
        try:
            run = runner(_bench(args, broker))
        finally:
            broker.close()
    except BenchError as exc:
        print(f"bench_relay: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench_relay: interrupted", file=sys.stderr)
        return 130
    _report(args, run, loop_name=loop_name, broker_version=_broker_version(broker))
    return 1 if run.problems else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench_relay", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--events", type=bench.positive, default=20_000, help="per round")
    parser.add_argument("--rounds", type=bench.positive, default=3, help="floor, relay rounds")
    parser.add_argument("--window", type=bench.positive, default=256, help="unconfirmed at most")
    parser.add_argument("--queue-type", choices=("quorum", "classic"), default="quorum")
    parser.add_argument("--rate", type=bench.positive, default=1_000, help="latency: events/s")
    parser.add_argument("--commit-batch", type=bench.positive, default=10, help="events/commit")
    parser.add_argument("--seconds", type=float, default=10.0, help="latency: how long")
    parser.add_argument("--profile", action="store_true", help="one more drain, under cProfile")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop when importable")
    return parser


Runner = Callable[[Coroutine[Any, Any, Run]], Run]


def _event_loop(*, want_uvloop: bool) -> tuple[str, Runner]:
    """The event loop's name and how to run a coroutine on it."""
    if want_uvloop:
        try:
            import uvloop  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            return "asyncio (uvloop asked for but not installed)", asyncio.run
        version = getattr(uvloop, "__version__", "?")

        def on_uvloop(main: Coroutine[Any, Any, Run]) -> Run:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(main)

        return f"uvloop {version}", on_uvloop
    return "asyncio", asyncio.run


def _started_broker() -> rabbit.Broker:
    """A private node, started; BenchError when it cannot be."""
    if not (rabbit.SERVER.exists() and rabbit.CTL.exists()):
        raise BenchError(rabbit.NOT_INSTALLED)
    if os.geteuid() != 0:
        raise BenchError("the rabbitmq-server scripts must be started as root")
    broker = rabbit.Broker.create("bench-relay")
    try:
        broker.start()
    except RuntimeError as exc:
        broker.close()
        raise BenchError(str(exc)) from exc
    return broker


def _broker_version(broker: rabbit.Broker) -> str:
    # The node is gone by now; the package's version is what ran.
    with contextlib.suppress(OSError, ValueError):
        for entry in Path("/usr/lib/rabbitmq/lib").iterdir():
            if entry.name.startswith("rabbitmq_server-"):
                return entry.name.removeprefix("rabbitmq_server-")
    return "?"


async def _bench(args: argparse.Namespace, broker: rabbit.Broker) -> Run:
    run = Run()
    settings = _settings(broker.url, args)
    with tempfile.TemporaryDirectory(prefix="order-watcher-bench-relay-") as workdir:
        for number in range(1, args.rounds + 1):
            groups = _groups(args.events, first_order=number * 10_000_000)
            records = [record for group in groups for record in group.records]
            run.throughputs.append(await _floor(broker.url, records, args, round=number))
            await _check_queue(broker.url, FLOOR_QUEUE, len(records), run, purge=True)
            db = f"sqlite:///{workdir}/round-{number}.db"
            relayed = await _relay(db, groups, settings, round=number)
            run.throughputs.append(relayed)
            await _check_queue(broker.url, RELAY_QUEUE, len(records), run, purge=True)
            run.problems += _missing(relayed)
        run.latency = await _latency(f"sqlite:///{workdir}/latency.db", settings, args)
        await _check_queue(broker.url, RELAY_QUEUE, run.latency.committed, run, purge=True)
        if run.latency.confirmed < run.latency.committed:
            run.problems.append(
                f"latency: {run.latency.committed - run.latency.confirmed} of "
                f"{run.latency.committed} events were never confirmed"
            )
        if args.profile:
            groups = _groups(args.events, first_order=900_000_000)
            run.profile = await _profiled_relay(f"sqlite:///{workdir}/profile.db", groups, settings)
    return run


def _settings(url: str, args: argparse.Namespace) -> AmqpSettings:
    queue = QueueSettings(name=RELAY_QUEUE, type=args.queue_type, dead_letter=False)
    return AmqpSettings.model_validate(
        {"url": url, "queues": [queue.model_dump()], "publish_window": args.window}
    )


def _groups(events: int, *, first_order: int) -> list[Group]:
    """`events` new orders, ten per customer, and the order.created of each (real events)."""
    groups: list[Group] = []
    for start in range(0, events, ORDERS_PER_CUSTOMER):
        customer_id = f"{first_order + start:010d}"
        orders = [
            order(
                source=SOURCE,
                customer_id=customer_id,
                order_id=f"{first_order + n:010d}",
                line_items=(line("1"), line("2", quantity=3)),
            )
            for n in range(start, min(events, start + ORDERS_PER_CUSTOMER))
        ]
        result = sync.reconcile(orders, {}, baseline=False, now=T0 + timedelta(seconds=start))
        groups.append(Group(customer_id, result.snapshots, result.records))
    return groups


async def _commit(snapshots: Store, group: Group) -> None:
    await snapshots.commit_sync(
        SOURCE,
        group.customer_id,
        snapshots=group.snapshots,
        events=group.records,
        state=PollState(baseline_done=True, last_success_at=T0),
    )


async def _floor(
    url: str, records: Sequence[OutboxRecord], args: argparse.Namespace, *, round: int
) -> Throughput:
    """A bare windowed publisher of the same bodies: connect, declare, publish, all confirmed."""
    app.freeze_heap()  # as the relay's phase does
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.declare_exchange(
            FLOOR_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(
            FLOOR_QUEUE, durable=True, arguments={"x-queue-type": args.queue_type}
        )
        await queue.bind(exchange, routing_key="#")
        window = asyncio.Semaphore(args.window)
        started, cpu_started = time.perf_counter(), time.process_time()

        async def publish(record: OutboxRecord) -> bool:
            message = aio_pika.Message(
                record.body,
                message_id=record.event_id,
                type=record.event_type,
                content_type="application/cloudevents+json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            async with window:
                await exchange.publish(message, routing_key=record.routing_key, mandatory=True)
            return True

        confirmed = await asyncio.gather(*map(publish, records))
        seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    return Throughput("floor", round, len(records), sum(confirmed), seconds, cpu_s)


async def _relay(
    db: str, groups: Sequence[Group], settings: AmqpSettings, *, round: int
) -> Throughput:
    """The relay draining a store that holds every group's events, timed around `drain`."""
    events = sum(len(group.records) for group in groups)
    async with store.opened(db) as snapshots:
        for group in groups:
            await _commit(snapshots, group)
        outbox = TimedOutbox(snapshots, expected=events)
        relay = Relay(outbox, lambda: Publisher(settings), settings=settings)
        app.freeze_heap()  # as `run` does once the service is built
        published = await relay.drain(timeout_s=DRAIN_TIMEOUT_S)
        seconds = outbox.last_marked - outbox.first_read
        cpu_s = outbox.last_marked_cpu - outbox.first_read_cpu
        backlog = (await snapshots.stats()).backlog
    published = min(published, events - backlog)
    return Throughput("relay", round, events, published, seconds, cpu_s)


async def _profiled_relay(db: str, groups: Sequence[Group], settings: AmqpSettings) -> str:
    """The top of a cProfile of one more relay drain, by internal time."""
    async with store.opened(db) as snapshots:
        for group in groups:
            await _commit(snapshots, group)
        relay = Relay(snapshots, lambda: Publisher(settings), settings=settings)
        profile = cProfile.Profile()
        profile.enable()
        await relay.drain(timeout_s=DRAIN_TIMEOUT_S)
        profile.disable()
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(PROFILE_LINES)
    return text.getvalue()


class TimedOutbox:
    """The store's outbox, noting when the relay first reads it and when it marks each event
    published (it holds the event's confirm then) and is done marking."""

    def __init__(self, outbox: Outbox, *, expected: int = 0) -> None:
        self._outbox = outbox
        self.expected = expected
        self.first_read = self.first_read_cpu = 0.0
        self.read = asyncio.Event()
        self.marked: dict[str, float] = {}
        self.last_marked = self.last_marked_cpu = 0.0
        self.all_marked = asyncio.Event()

    async def pending(self, limit: int, *, after: str | None = None) -> list[OutboxRecord]:
        if not self.read.is_set():
            self.first_read, self.first_read_cpu = time.perf_counter(), time.process_time()
        records = await (
            self._outbox.pending(limit)
            if after is None
            else self._outbox.pending(limit, after=after)
        )
        self.read.set()
        return records

    async def mark_published(self, event_ids: Sequence[str], *, at: datetime) -> None:
        now = time.perf_counter()
        for event_id in event_ids:
            self.marked.setdefault(event_id, now)
        await self._outbox.mark_published(event_ids, at=at)
        self.last_marked, self.last_marked_cpu = time.perf_counter(), time.process_time()
        if len(self.marked) >= self.expected:
            self.all_marked.set()

    async def stats(self) -> OutboxStats:
        return await self._outbox.stats()


async def _latency(db: str, settings: AmqpSettings, args: argparse.Namespace) -> Latency:
    """Commits at a steady `--rate` with the relay running; commit-to-confirm per event."""
    total = max(args.commit_batch, round(args.rate * args.seconds))
    batches = _batches(_groups(total, first_order=500_000_000), args.commit_batch)
    interval_s = args.commit_batch / args.rate
    committed: dict[str, float] = {}
    async with (
        store.opened(db) as snapshots,
        _running_relay(snapshots, settings, expected=total) as (outbox, relay),
    ):
        started = time.perf_counter()
        for number, group in enumerate(batches):
            await _sleep_until(started + number * interval_s)
            await _commit(snapshots, group)
            done = time.perf_counter()
            committed.update(dict.fromkeys((r.event_id for r in group.records), done))
            relay.wake()
        seconds = time.perf_counter() - started
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SETTLE_TIMEOUT_S):
                await outbox.all_marked.wait()
    ms = [1000 * (outbox.marked[i] - at) for i, at in committed.items() if i in outbox.marked]
    return Latency(committed=len(committed), confirmed=len(ms), seconds=seconds, ms=ms)


def _batches(groups: Sequence[Group], size: int) -> list[Group]:
    """The groups' orders regrouped into commits of `size` events, one customer each."""
    snapshots = [s for group in groups for s in group.snapshots]
    records = [r for group in groups for r in group.records]
    return [
        Group(
            f"latency-{start // size}",
            snapshots[start : start + size],
            records[start : start + size],
        )
        for start in range(0, len(records), size)
    ]


@contextlib.asynccontextmanager
async def _running_relay(
    snapshots: Store, settings: AmqpSettings, *, expected: int
) -> AsyncIterator[tuple[TimedOutbox, Relay]]:
    """`relay.run()` on a timed view of the store's outbox, connected; cancelled on exit."""
    outbox = TimedOutbox(snapshots, expected=expected)
    relay = Relay(outbox, lambda: Publisher(settings), settings=settings)
    task = asyncio.create_task(relay.run())
    try:
        await outbox.read.wait()  # connected, and found the outbox empty
        yield outbox, relay
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _sleep_until(moment: float) -> None:
    delay = moment - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


async def _check_queue(url: str, name: str, expected: int, run: Run, *, purge: bool) -> None:
    """The queue holds `expected` messages (a problem otherwise); purged when asked."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel: AbstractChannel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        count = queue.declaration_result.message_count
        if count != expected:
            run.problems.append(f"queue {name} holds {count} messages, {expected} published")
        if purge:
            await queue.purge()


def _missing(result: Throughput) -> list[str]:
    if result.published == result.events:
        return []
    return [f"{result.label} round {result.round}: {result.published} of {result.events} published"]


def _report(args: argparse.Namespace, run: Run, *, loop_name: str, broker_version: str) -> None:
    lines = [*_preamble(args, loop_name, broker_version), "", *_table(run), "", *_summary(run)]
    print("\n".join(lines))
    if run.profile:
        print("\nprofile of one more relay drain (cProfile, by internal time):\n" + run.profile)
    if run.problems:
        print("\n".join(f"PROBLEM: {problem}" for problem in run.problems), file=sys.stderr)


def _preamble(args: argparse.Namespace, loop_name: str, broker_version: str) -> list[str]:
    options = {
        "--events": args.events,
        "--rounds": args.rounds,
        "--window": args.window,
        "--queue-type": args.queue_type,
        "--rate": args.rate,
        "--commit-batch": args.commit_batch,
        "--seconds": f"{args.seconds:g}",
    }
    command = [bench.shown_path(sys.executable), "-m", "tests.bench_relay"]
    command += [text for option, value in options.items() for text in (option, str(value))]
    command += ["--uvloop"] * args.uvloop + ["--profile"] * args.profile
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"command:    {shlex.join(command)}",
        f"machine:    nproc {cpus}, {platform.platform()}",
        f"python:     {platform.python_implementation()} {platform.python_version()}, "
        f"event loop {loop_name}",
        f"broker:     RabbitMQ {broker_version}, a private node on loopback, "
        f"{args.queue_type} queues",
    ]


def _table(run: Run) -> list[str]:
    header = (
        "phase",
        "events",
        "wall s",
        "events/s",
        "x floor",
        "CPU ms/1k",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
    )
    rows: list[tuple[str, ...]] = [header]
    floors = {t.round: t.per_s for t in run.throughputs if t.label == "floor"}
    for t in run.throughputs:
        ratio = t.per_s / floors[t.round] if floors.get(t.round) else 0.0
        rows.append(
            (
                f"{t.round} {t.label}",
                f"{t.published:,}",
                f"{t.seconds:.2f}",
                f"{t.per_s:,.0f}",
                f"{ratio:.2f}",
                f"{t.cpu_ms_per_1k:,.0f}",
                *("-",) * 4,
            )
        )
    if run.latency is not None:
        lat = run.latency
        rows.append(
            (
                f"latency at {lat.committed / lat.seconds:,.0f}/s" if lat.seconds else "latency",
                f"{lat.confirmed:,}",
                f"{lat.seconds:.2f}",
                "-",
                "-",
                "-",
                *(f"{lat.quantile(q):.1f}" for q in (0.5, 0.9, 0.99)),
                f"{max(lat.ms, default=0.0):.1f}",
            )
        )
    return bench.aligned(rows)


def _summary(run: Run) -> list[str]:
    floor = [t.per_s for t in run.throughputs if t.label == "floor"]
    relay = [t.per_s for t in run.throughputs if t.label == "relay"]
    lines = [
        "CPU ms/1k: CPU milliseconds of this process (every thread, so SQLite's too) per "
        "1,000 events: the client's own cost, steadier than events/s on a busy machine"
    ]
    if floor and relay:
        median_floor, median_relay = statistics.median(floor), statistics.median(relay)
        lines.append(
            f"relay / floor: {median_relay / median_floor:.2f} (medians over {len(floor)} "
            f"rounds: {median_relay:,.0f} against {median_floor:,.0f} events/s; goal >= 0.90)"
        )
    if run.latency is not None:
        verdict = "met" if run.latency.quantile(0.99) < 50 else "NOT met"
        lines.append(
            f"latency: commit returned -> relay holds the confirm (calls mark_published); "
            f"goal p99 < 50 ms: {verdict}"
        )
    return lines


if __name__ == "__main__":
    sys.exit(main())
