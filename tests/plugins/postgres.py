"""Pytest fixtures that run a real, private PostgreSQL server on loopback.

A `Cluster` is one PostgreSQL cluster of the Debian packages (the highest version under
/usr/lib/postgresql/*/bin), living in its own temporary folder: the data directory, the
server's log (`log`) and its Unix socket are all in that one folder, and the server listens
on a free TCP port of 127.0.0.1 only. PostgreSQL refuses to run as root, so when the tests
run as root the folder is handed to the `postgres` user and `initdb` and `pg_ctl` run as that
user through `runuser`; as anyone else they run as the user running the tests.

The folder is made under /dev/shm when that memory file system has room to spare, else in
the usual temporary folder: `initdb` and every CREATE DATABASE create hundreds of files,
which a disk's file system can make much slower (on one machine's ext4, 0.5-1.3 s for
`initdb` and 130-280 ms a database, against 0.35 s and 20 ms in memory). A cluster with a
test's database takes some 50 MB.

Authentication is real for the application's role: pg_hba.conf trusts the superuser
`postgres` (over the socket and over TCP, for the fixtures' own administration) but asks
the login role `watcher` for its password over TCP (scram-sha-256). The password is a random
secret per cluster (`Cluster.password`), and the URLs handed to tests carry it.

The server runs with fsync, synchronous commit and full-page writes off: a crash of the
machine could corrupt the cluster, which does not matter for a folder thrown away after
the run, and it makes creating databases and committing much faster.

Creating and starting a cluster takes half a second or more, most of it `initdb`, so the
whole run shares one (`pg_cluster`, started only when a test asks for it) and every test
gets a fresh, empty database on it owned by `watcher` (`pg_url`), dropped afterwards. A test
that stops and starts the server to simulate an outage gets a cluster of its own
(`pg_outage_cluster`). `stop()` and `start()` reuse the same folder and port; `close()`
stops the server at once and removes its folder, also after a start that failed half-way.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN_GLOB = "/usr/lib/postgresql/*/bin"
MEMORY_FS = Path("/dev/shm")
MEMORY_FS_MIN_FREE = 512 * 2**20  # Docker's default /dev/shm (64 MB) is too small
OWNER = "postgres"
SUPERUSER = "postgres"
ROLE = "watcher"
START_TIMEOUT_S = 30
CMD_TIMEOUT_S = 60.0
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}
HBA = f"""\
# TYPE  DATABASE  USER      ADDRESS       METHOD
local   all       all                     trust
host    all       {SUPERUSER:<9} 127.0.0.1/32  trust
host    all       all       127.0.0.1/32  scram-sha-256
"""
NOT_INSTALLED = (
    "PostgreSQL is not installed (Debian package postgresql: no "
    f"{BIN_GLOB}/postgres). `make test` installs it; or run scripts/install-services.sh."
)


class Cluster:
    """One private PostgreSQL cluster; see the module docstring."""

    def __init__(self, root: Path, *, bin_dir: Path) -> None:
        self.root = root
        self.bin_dir = bin_dir
        self.port = _free_port()
        self.password = secrets.token_urlsafe(18)
        self._role_created = False

    @classmethod
    def create(cls, label: str) -> Cluster:
        """A cluster initialised in a fresh folder, not started yet."""
        bin_dir = find_binaries()
        if bin_dir is None:
            pytest.fail(NOT_INSTALLED, pytrace=False)
        root = Path(tempfile.mkdtemp(prefix=f"order-watcher-pg-{label}-", dir=_parent_folder()))
        cluster = cls(root, bin_dir=bin_dir)
        try:
            cluster._initdb()
        except BaseException:
            cluster.close()
            raise
        return cluster

    @property
    def version(self) -> str:
        return self.bin_dir.parent.name

    def url_for(self, database: str) -> str:
        """The URL for `database` as the `watcher` role, password included."""
        return f"postgresql://{ROLE}:{self.password}@127.0.0.1:{self.port}/{database}"

    @property
    def running(self) -> bool:
        """Whether the server answers `pg_ctl status` (a live postmaster for this folder)."""
        return self._pg_ctl("status", check=False).returncode == 0

    def start(self) -> None:
        """Start the server (again) on the same folder and port, and wait until it accepts
        connections; the first start also creates the `watcher` role.

        `pg_ctl` hands the options to a shell, hence the quoted folder.
        """
        options = " ".join(
            [f"-p {self.port}", f"-k {shlex.quote(str(self.root))}"]
            + [f"-c {name}={value}" for name, value in SERVER_SETTINGS.items()]
        )
        result = self._pg_ctl(
            "start", "-w", "-t", str(START_TIMEOUT_S), "-o", options, "-l", str(self._log),
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            self._stop_immediately()
            raise RuntimeError(
                f"PostgreSQL {self.version} in {self.root} did not start "
                f"(pg_ctl exited with {result.returncode}):\n{result.stdout}\n{self._log_tail()}"
            )
        if not self._role_created:
            self.sql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{self.password}'")
            self._role_created = True

    def stop(self) -> None:
        """Stop the server the fast way: open sessions are ended, clients see the connection
        closed, and new connections are refused until `start()`."""
        if self.running:
            self._pg_ctl("stop", "-w", "-m", "fast")

    def close(self) -> None:
        """Stop the server at once (no shutdown checkpoint), remove its folder."""
        self._stop_immediately()
        shutil.rmtree(self.root, ignore_errors=True)

    def sql(self, statement: str) -> str:
        """Run one statement as the superuser over the Unix socket; its rows, unaligned."""
        result = subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "-h", str(self.root), "-p", str(self.port), "-U", SUPERUSER, "-d", "postgres",
            ],
            input=statement,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=CMD_TIMEOUT_S,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"psql failed on {statement!r}:\n{result.stdout}{result.stderr}")
        return result.stdout

    def create_database(self, name: str) -> None:
        """An empty database owned by `watcher`."""
        self.sql(f'CREATE DATABASE "{name}" OWNER {ROLE}')

    def drop_database(self, name: str) -> None:
        """Drop the database, ending any session still connected to it."""
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @property
    def _log(self) -> Path:
        return self.root / "log"

    def _initdb(self) -> None:
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(OWNER)
            except KeyError:
                pytest.fail(
                    f"the tests run as root, and PostgreSQL refuses to; but there is no "
                    f"{OWNER!r} user to run it as (the postgresql package creates it)",
                    pytrace=False,
                )
            shutil.chown(self.root, OWNER, OWNER)
        result = self._run(
            "initdb", "-D", str(self.root), "-U", SUPERUSER, "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions",
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(
                f"initdb of PostgreSQL {self.version} in {self.root} failed "
                f"(exit {result.returncode}):\n{result.stdout[-2000:]}"
            )
        # Rewritten in place, so the file keeps its owner.
        (self.root / "pg_hba.conf").write_text(HBA)

    def _stop_immediately(self) -> None:
        """Stop whatever server runs on this folder, even after a start that failed half-way:
        an immediate shutdown through `pg_ctl` when there is a pid file, else (or when that
        fails) SIGKILL to every process naming the folder on its command line and to their
        children. A postmaster that `pg_ctl` gave up on may not have written its pid file yet.
        """
        if (self.root / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                if self._pg_ctl("stop", "-w", "-m", "immediate", check=False).returncode == 0:
                    return
        for pid in _processes_naming(self.root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = self._run("pg_ctl", "-D", str(self.root), *args)
        if check and result.returncode != 0:
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed:\n{result.stdout}")
        return result

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run one of the server's programs as the folder's owner, output and errors merged.

        The working directory is the cluster's folder: the `postgres` user may not be allowed
        into the one the tests run in.
        """
        command = [str(self.bin_dir / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", OWNER, "--", *command]
        return subprocess.run(
            command,
            cwd=self.root,
            env=_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=CMD_TIMEOUT_S,
            check=False,
        )

    def _log_tail(self) -> str:
        try:
            return self._log.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no server log)"


def find_binaries() -> Path | None:
    """The bin folder of the highest PostgreSQL version installed, if any."""
    found = [Path(path).parent for path in glob.glob(f"{BIN_GLOB}/postgres")]
    if not found:
        return None
    return max(found, key=lambda path: _version_key(path.parent.name))


def _parent_folder() -> str | None:
    """/dev/shm when it is writable and has room to spare, else None (the temporary folder)."""
    try:
        free = os.statvfs(MEMORY_FS)
    except OSError:
        return None
    if free.f_bavail * free.f_frsize < MEMORY_FS_MIN_FREE or not os.access(MEMORY_FS, os.W_OK):
        return None
    return str(MEMORY_FS)


def _version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (-1,)


def _processes_naming(folder: Path) -> list[int]:
    """The live processes with `folder` in an argument (a postmaster names its data folder;
    its children rename themselves), then their children, read from /proc."""
    named: list[int] = []
    parents: dict[int, int] = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
            parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if any(os.fsencode(folder) in arg for arg in args) and int(proc.name) != os.getpid():
            named.append(int(proc.name))
    return named + [pid for pid, ppid in parents.items() if ppid in named]


def _env() -> dict[str, str]:
    """The environment without libpq's PG* variables, so none redirects a command."""
    return {name: value for name, value in os.environ.items() if not name.startswith("PG")}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One cluster for the whole run; tests reach it through `pg_url`."""
    cluster = Cluster.create("shared")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """The URL of a fresh, empty database on the shared cluster, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    pg_cluster.create_database(name)
    yield pg_cluster.url_for(name)
    # The cluster's folder goes at the end of the run anyway.
    with contextlib.suppress(RuntimeError, subprocess.SubprocessError):
        pg_cluster.drop_database(name)


@pytest.fixture
def pg_outage_cluster() -> Iterator[Cluster]:
    """A started cluster of the test's own, free to `stop()` and `start()` again; it has the
    `watcher` role and no database but `postgres`."""
    cluster = Cluster.create("outage")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()
