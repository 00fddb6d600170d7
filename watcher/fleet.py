"""Replicas sharing one PostgreSQL store: who polls which customer, who relays, at what rate.

Each replica runs one `Fleet`. Every `lease_s / 3` it beats (`Leases.heartbeat`, which
renews every lease it holds in one write and counts the replicas alive) and evens out the
work:

- Customers. Each source's customers (`Poller.wanted`) are split by leases. A replica aims
  at its fair share, ceil(customers / replicas alive): below it, it claims free leases
  (never held, expired, or released); above it, it releases the surplus, which the others
  then claim. A replica killed or paused stops beating, and its leases lapse `lease_s`
  after its last heartbeat, to be claimed by the others on their next beat: a customer is
  polled again within about `lease_s` + `lease_s / 3`. The poller only polls what it holds
  and commits fenced by the lease (`ports.Fence`), so a replica that lost a lease while
  paused writes nothing over its new holder's work.
- Tasks that one replica at a time must do: the outbox relay, each source's discovery. Each
  is a lease on a task name (`TASKS`); its holder runs the task while it holds the lease and
  cancels it the moment it might not (`Gate`): when a renewal fails, and also when the lease
  could have expired by its own monotonic clock, since a replica paused past its lease
  wakes up believing it still leads.
- Vendor politeness. A source's `rate_per_s` is for the whole fleet: each replica's rate
  limiter runs at rate / replicas alive (`guard.RateLimiter.share`), so three replicas send
  what one would.

A replica that stops (SIGTERM) releases its leases, so the others take them at once; the
relay's last, after it has drained the outbox (`relayed_until_stop`, `hand_over`). Leases
are timed by the database's clock; the local deadline only ever makes a replica stop sooner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from watcher.core.errors import StoreError
from watcher.core.ports import Fence, Leases
from watcher.poller import Poller
from watcher.providers import guard

log = logging.getLogger(__name__)

TASKS = "@tasks"  # the source of the leases on tasks; a task's name is its customer id
RELAY = "relay"
Loop = Callable[[], Coroutine[Any, Any, None]]


def replica_name() -> str:
    """This process's identity in the fleet: host, pid and a random suffix (a restarted
    container may get the same host name and pid)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def discovery_task(source: str) -> str:
    return f"discovery:{source}"


@dataclass(slots=True)
class _Share:
    """One source of this replica: its poller and its rate limiter."""

    poller: Poller
    limiter: guard.RateLimiter | None


@dataclass(slots=True)
class Gate:
    """A task that runs only while this replica holds the task's lease."""

    name: str
    loop: Loop
    token: int | None = None
    deadline: float = 0.0  # monotonic: when the lease may have expired, by this clock
    granted: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    @property
    def held(self) -> bool:
        return self.token is not None and time.monotonic() < self.deadline


class Fleet:
    """This replica's part of the fleet (see the module docstring)."""

    def __init__(
        self, leases: Leases, *, replica: str, lease_s: float, beat_s: float | None = None
    ) -> None:
        self.replica = replica
        self.alive = 1
        self._leases = leases
        self._lease_s = lease_s
        self._beat_s = lease_s / 3 if beat_s is None else beat_s
        self._shares: list[_Share] = []
        self._gates: dict[str, Gate] = {}
        self._beaten = asyncio.Event()
        self._relay_token: int | None = None  # the relay's lease, kept past the stop
        self._relay_deadline = 0.0  # monotonic: when that lease may run out

    def add(self, poller: Poller, limiter: guard.RateLimiter | None) -> None:
        """Share this source's customers (its poller must be `shared`)."""
        assert poller.shared, "a poller in a fleet is shared"
        self._shares.append(_Share(poller, limiter))

    def gate(self, name: str, loop: Loop) -> Loop:
        """`loop`, run only while this replica holds the lease on task `name`."""
        gate = self._gates.setdefault(name, Gate(name, loop))

        async def gated() -> None:
            """Run `loop` each time the lease is granted, until it is lost. A failure of
            `loop` is this loop's; a `loop` that ends (a discovery at the stop) leaves it
            waiting for the next grant or its cancellation."""
            while True:
                await gate.granted.wait()
                gate.granted.clear()
                running = asyncio.get_running_loop().create_task(loop(), name=name)
                gate.task = running
                try:
                    await asyncio.wait({running})
                finally:
                    running.cancel()
                    gate.task = None
                if not running.cancelled():
                    running.result()  # raises what `loop` raised

        return gated

    def leads(self, name: str) -> bool:
        """Whether this replica holds the lease on task `name` right now."""
        gate = self._gates.get(name)
        return gate is not None and gate.held

    @property
    def leases_held(self) -> dict[str, int]:
        """How many leases this replica holds, by source (`TASKS` for the tasks)."""
        held = {share.poller.name: len(share.poller.fences) for share in self._shares}
        held[TASKS] = sum(1 for gate in self._gates.values() if gate.held)
        return held

    async def started(self) -> None:
        """Wait for the first beat (done or failed)."""
        await self._beaten.wait()

    async def run(self) -> None:
        """Beat every `beat_s` until cancelled; then give every lease back."""
        try:
            while True:
                started = time.monotonic()
                try:
                    await self.beat()
                except StoreError as exc:
                    log.warning("fleet: cannot renew or claim leases: %s", exc)
                self._beaten.set()
                await asyncio.sleep(max(0.0, self._beat_s - (time.monotonic() - started)))
        finally:
            await asyncio.shield(self._release_all())

    async def beat(self) -> None:
        """One round: the heartbeat (which renews every lease held), then claim or release
        towards a fair share. After a heartbeat with a gap, see which leases are left."""
        sent = time.monotonic()  # a lease renewed now lasts at least lease_s from here
        heartbeat = await self._leases.heartbeat(self.replica, ttl_s=self._lease_s)
        self.alive = max(1, heartbeat.alive)
        for share in self._shares:
            if share.limiter is not None:
                share.limiter.share = 1 / self.alive
            await self._even_out(share.poller, checked=not heartbeat.continuous)
        await self._even_out_tasks(sent, checked=not heartbeat.continuous)

    async def _kept(self, source: str, held: dict[str, int], *, checked: bool) -> set[str]:
        """The leases of `held` still this replica's: all of them after a heartbeat with no
        gap (nobody may claim a live replica's lease), else those the store still has."""
        if not checked:
            return set(held)
        return await self._leases.still_held(source, self.replica, held)

    async def _even_out(self, poller: Poller, *, checked: bool) -> None:
        source = poller.name
        held = {key: fence.token for key, fence in poller.fences.items()}
        kept = await self._kept(source, held, checked=checked)
        lost = held.keys() - kept
        if lost:
            log.info("fleet: %s lost %d lease(s) of %s", self.replica, len(lost), source)
            poller.let_go(lost)
        wanted = await poller.wanted()
        fair = math.ceil(len(wanted) / self.alive)
        gone = kept - set(wanted)  # no longer a customer of the source
        surplus = len(kept) - len(gone) - fair
        if surplus > 0:
            gone |= set(sorted(kept - gone)[:surplus])
        if gone:
            poller.let_go(gone)
            await self._leases.release(source, self.replica, {key: held[key] for key in gone})
        room = fair - (len(kept) - len(gone))
        if room > 0:
            claimed = await self._leases.claim(source, self.replica, wanted, limit=room)
            fences = {key: Fence(self.replica, token, key) for key, token in claimed.items()}
            await poller.hold(fences)

    async def _even_out_tasks(self, sent: float, *, checked: bool) -> None:
        """Hold at most a fair share of the tasks; those held last lease_s from `sent`."""
        held = {gate.name: gate.token for gate in self._gates.values() if gate.token is not None}
        kept = await self._kept(TASKS, held, checked=checked)
        for name in held.keys() - kept:
            log.info("fleet: %s no longer leads %s", self.replica, name)
            self._stop_task(self._gates[name])
        for name in kept:
            self._extend(self._gates[name], sent)
        fair = math.ceil(len(self._gates) / self.alive)
        if len(kept) < fair:
            free = [name for name in self._gates if name not in kept]
            claimed = await self._leases.claim(TASKS, self.replica, free, limit=fair - len(kept))
            for name, token in claimed.items():
                gate = self._gates[name]
                gate.token = token
                self._extend(gate, sent)
                self._start_task(gate)

    def _extend(self, gate: Gate, sent: float) -> None:
        """The lease lasts lease_s from before the renewal was sent; stop the task just
        before then unless renewed again."""
        gate.deadline = sent + self._lease_s
        if gate.timer is not None:
            gate.timer.cancel()
        loop = asyncio.get_running_loop()
        delay_s = gate.deadline - time.monotonic()
        gate.timer = loop.call_later(max(0.0, delay_s), self._expired, gate)

    def _expired(self, gate: Gate) -> None:
        if gate.task is not None and time.monotonic() >= gate.deadline:
            log.warning("fleet: %s's lease on %s ran out unrenewed", self.replica, gate.name)
            self._stop_task(gate)

    def _start_task(self, gate: Gate) -> None:
        log.info("fleet: %s leads %s", self.replica, gate.name)
        gate.granted.set()

    def _stop_task(self, gate: Gate) -> None:
        gate.token = None
        gate.granted.clear()
        if gate.timer is not None:
            gate.timer.cancel()
            gate.timer = None
        if gate.task is not None:
            gate.task.cancel()
            gate.task = None

    def may_relay(self) -> bool:
        """Whether this replica may send from the outbox now: it holds the relay's lease,
        or held it when it stopped and has not handed it over yet (the drain)."""
        if self.leads(RELAY):
            return True
        return self._relay_token is not None and time.monotonic() < self._relay_deadline

    @property
    def relayed_until_stop(self) -> bool:
        """Whether this replica led the relay when it stopped (and should drain)."""
        return self._relay_token is not None

    def relay_lease_left_s(self) -> float:
        """How long the relay's lease kept past the stop may still last: a drain must end
        before another replica can take the relay over."""
        return max(0.0, self._relay_deadline - time.monotonic())

    async def hand_over(self) -> None:
        """Give the relay's lease back (after the drain)."""
        if self._relay_token is not None:
            token, self._relay_token = self._relay_token, None
            with contextlib.suppress(StoreError):
                await self._leases.release(TASKS, self.replica, {RELAY: token})
                await self._leases.leave(self.replica)

    async def _release_all(self) -> None:
        """Give every lease back, so the other replicas take them at once; the relay's only
        later (`hand_over`) when this replica led it."""
        relay = self._gates.get(RELAY)
        if relay is not None and relay.held:
            self._relay_token = relay.token
            self._relay_deadline = relay.deadline
        tasks = {
            g.name: g.token for g in self._gates.values() if g.token is not None and g.name != RELAY
        }
        for gate in self._gates.values():
            self._stop_task(gate)
        with contextlib.suppress(StoreError):
            await self._leases.release(TASKS, self.replica, tasks)
            for share in self._shares:
                fences = share.poller.fences
                share.poller.let_go(fences)
                held = {key: fence.token for key, fence in fences.items()}
                await self._leases.release(share.poller.name, self.replica, held)
            if self._relay_token is None:  # else it stays alive through the drain
                await self._leases.leave(self.replica)
