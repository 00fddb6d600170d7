"""Pytest fixtures that run real, private RabbitMQ nodes on loopback.

A `Broker` is one node of the Debian package `rabbitmq-server`, living in its own temporary
folder with its own ports: AMQP, Erlang distribution and a private epmd, all bound to
127.0.0.1. The Debian wrapper scripts drop from root to the `rabbitmq` user through `su`,
which sets HOME to /var/lib/rabbitmq for the server and for every `rabbitmqctl` call alike,
so both read the same Erlang cookie. The cookie is created up front when missing, so a
server and a CLI starting at the same moment cannot each invent a different one.

Starting a node takes about three seconds, so the whole run shares one (`rabbit_broker`)
and every test gets its own virtual host on it (`amqp_url`), which keeps exchanges and
queues apart. A test that stops and starts the broker to simulate an outage gets a node of
its own (`outage_broker`). `stop()` and `start()` reuse the same node name, folder and
ports; `close()` stops the node, kills only the processes this broker started, and removes
its folder.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVER = Path("/usr/sbin/rabbitmq-server")
CTL = Path("/usr/sbin/rabbitmqctl")
EPMD = Path("/usr/bin/epmd")
COOKIE = Path("/var/lib/rabbitmq/.erlang.cookie")
START_TIMEOUT_S = 60.0
CTL_TIMEOUT_S = 30.0
NOT_INSTALLED = (
    "RabbitMQ is not installed (Debian package rabbitmq-server). "
    "`make test` installs it; or run scripts/install-services.sh."
)


class Broker:
    """One private RabbitMQ node; see the module docstring."""

    def __init__(self, root: Path, *, name: str) -> None:
        self.root = root
        self.node = f"{name}@localhost"
        self.amqp_port, self.dist_port, self.epmd_port = _free_ports(3)
        self._server: subprocess.Popen[bytes] | None = None
        self._background: list[subprocess.Popen[bytes]] = []

    @classmethod
    def create(cls, label: str) -> Broker:
        """A broker in a fresh folder owned by the rabbitmq user, not started yet."""
        _require_installation()
        _ensure_cookie()
        root = Path(tempfile.mkdtemp(prefix=f"order-watcher-{label}-"))
        for folder in ("mnesia", "log"):
            (root / folder).mkdir()
        (root / "enabled_plugins").write_text("[].\n")
        shutil.chown(root, "rabbitmq", "rabbitmq")
        for path in root.iterdir():
            shutil.chown(path, "rabbitmq", "rabbitmq")
        return cls(root, name=f"ow-{label}-{uuid.uuid4().hex[:8]}")

    @property
    def url(self) -> str:
        return self.url_for("")

    def url_for(self, vhost: str) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/{vhost}"

    @property
    def running(self) -> bool:
        return self._server is not None and self._server.poll() is None

    def start(self) -> None:
        """Start the node (again), in a session of its own as `setsid` would, and wait for it."""
        if self.running:
            return
        self._pid_file.unlink(missing_ok=True)
        with (self.root / "out.log").open("ab") as out:
            self._server = subprocess.Popen(
                [str(SERVER)],
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._await_startup()

    def stop(self) -> None:
        """Stop the node gracefully; clients see the connection closed."""
        if not self.running:
            return
        self.ctl("stop")
        assert self._server is not None
        self._server.wait(timeout=START_TIMEOUT_S)

    def close(self) -> None:
        """Stop the node, end what it started, remove its folder."""
        for process in self._background:
            _reap(process)
        try:
            self.stop()
        except (RuntimeError, subprocess.SubprocessError, OSError):
            self._kill_server()
        subprocess.run(
            [str(EPMD), "-port", str(self.epmd_port), "-kill"],
            env=self._env(),
            capture_output=True,
            timeout=CTL_TIMEOUT_S,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)

    def ctl(self, *args: str) -> str:
        """Run `rabbitmqctl` against this node and return its output."""
        result = subprocess.run(
            [str(CTL), "-q", "-n", self.node, *args],
            env=self._env(),
            capture_output=True,
            timeout=CTL_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace")
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed:\n{output}")
        return result.stdout.decode()

    def add_vhost(self, vhost: str) -> None:
        self.ctl("add_vhost", vhost)
        self.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")

    def delete_vhost(self, vhost: str) -> None:
        """Delete in the background; `close()` waits for it."""
        self._background.append(
            subprocess.Popen(
                [str(CTL), "-q", "-n", self.node, "delete_vhost", vhost],
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    @property
    def _pid_file(self) -> Path:
        return self.root / "mnesia" / f"{self.node}.pid"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_PID_FILE": str(self._pid_file),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def _await_startup(self) -> None:
        """`rabbitmqctl wait` follows the pid file until the node has booted.

        `await_startup` would fail at once while the node has not yet registered with epmd;
        `wait` covers that first second too, and stops early if the server dies.
        """
        with (self.root / "out.log").open("ab") as out:
            waiter = subprocess.Popen(
                [str(CTL), "-q", "-n", self.node, "wait", str(self._pid_file)],
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while waiter.poll() is None and self.running and time.monotonic() < deadline:
            time.sleep(0.05)
        if waiter.poll() == 0:
            return
        _reap(waiter)
        self._kill_server()
        raise RuntimeError(f"RabbitMQ node {self.node} did not start:\n{self._log_tail()}")

    def _kill_server(self) -> None:
        if self._server is None:
            return
        for pid in [*_descendants(self._server.pid), self._server.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._server.wait(timeout=CTL_TIMEOUT_S)

    def _log_tail(self) -> str:
        logs = [self.root / "out.log", *sorted((self.root / "log").glob("*.log"))]
        return "\n".join(path.read_text(errors="replace")[-2000:] for path in logs if path.exists())


def _require_installation() -> None:
    if not (SERVER.exists() and CTL.exists()):
        pytest.fail(NOT_INSTALLED, pytrace=False)
    if os.geteuid() != 0:
        pytest.fail(
            "the rabbitmq-server scripts must be started as root (they drop to the "
            "rabbitmq user); run the tests as root",
            pytrace=False,
        )


def _ensure_cookie() -> None:
    if COOKIE.exists():
        return
    alphabet = string.ascii_uppercase
    COOKIE.write_text("".join(secrets.choice(alphabet) for _ in range(20)))
    shutil.chown(COOKIE, "rabbitmq", "rabbitmq")
    COOKIE.chmod(0o400)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _descendants(pid: int) -> list[int]:
    """Every live process below `pid`, read from /proc (the node runs under `su`)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found.extend(children)
        frontier.extend(children)
    return found


def _reap(process: subprocess.Popen[bytes]) -> None:
    try:
        process.wait(timeout=CTL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def rabbit_broker() -> Iterator[Broker]:
    """One node for the whole run; tests reach it through `amqp_url`."""
    broker = Broker.create("shared")
    try:
        broker.start()
        yield broker
    finally:
        broker.close()


@pytest.fixture
def amqp_url(rabbit_broker: Broker) -> Iterator[str]:
    """The URL of a fresh virtual host on the shared node, deleted after the test."""
    vhost = f"test-{uuid.uuid4().hex[:12]}"
    rabbit_broker.add_vhost(vhost)
    yield rabbit_broker.url_for(vhost)
    rabbit_broker.delete_vhost(vhost)


@pytest.fixture
def outage_broker() -> Iterator[Broker]:
    """A node of the test's own, free to `stop()` and `start()` again."""
    broker = Broker.create("outage")
    try:
        broker.start()
        yield broker
    finally:
        broker.close()
