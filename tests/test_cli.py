"""The `order-watcher` command line: exit codes, messages and output of each command.

Bad configuration is checked in-process through `watcher.cli.main`: exit code 2 and one
message on stderr that names the key and never shows a secret from the file. `once` and
`check` run as real subprocesses against the simulator served by this test's event loop
(so they are awaited with asyncio, never blocking the loop that serves them); `demo` runs
as a subprocess on its own bundled simulator.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.plugins.simulator import SIM_CUSTOMERS, AdobeSimulator, SimAdmin
from watcher import cli, store
from watcher.simulator.adobe_vip.world import CLIENT_ID, CLIENT_SECRET

CUSTOMER = SIM_CUSTOMERS[0]
FILE_SECRET = "file-secret-Zq81"
BROKER_PASSWORD = "broker-pw-Xk42"
NEW_ORDER = "5120000011"


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


def clean_environment() -> dict[str, str]:
    """The process environment without any WATCHER_ setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}


@asynccontextmanager
async def started(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m watcher.cli ARGS` started with pipes; killed on exit if still running.

    Ctrl-C is the default in the child even when these tests run in the background, where
    the shell starts them with SIGINT ignored and a child would inherit that."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "watcher.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env or clean_environment(),
        cwd=cwd,
        preexec_fn=_interruptible,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def run_cli(*args: str, cwd: Path, timeout_s: float = 20.0) -> Completed:
    """`python -m watcher.cli ARGS` in a subprocess, awaited so this loop keeps serving."""
    async with started(*args, cwd=cwd) as process:
        async with asyncio.timeout(timeout_s):
            stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return Completed(process.returncode, stdout.decode(), stderr.decode())


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def sim_config(sim: AdobeSimulator, tmp_path: Path, *, amqp_port: int | None = None) -> Path:
    """A config for the simulator's first customer, a store in tmp_path and no broker."""
    path = tmp_path / "order-watcher.toml"
    path.write_text(
        f"""
[store]
url = "sqlite:///{tmp_path / "watcher.db"}"

[amqp]
url = "amqp://watcher:{BROKER_PASSWORD}@127.0.0.1:{amqp_port or closed_port()}/"

[[sources]]
name = "adobe-sim"
provider = "adobe_vip"
base_url = "{sim.base_url}"
customers = ["{CUSTOMER}"]
lookback_days = 3650
timeout_s = 5

[sources.auth]
token_url = "{sim.token_url}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"

[sources.retry]
attempts = 2
base_delay_s = 0.01
max_delay_s = 0.05
"""
    )
    return path


@pytest.fixture(autouse=True)
def _no_watcher_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No WATCHER_ setting of the surrounding shell leaks into an in-process run."""
    for name in list(os.environ):
        if name.startswith("WATCHER_"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """`main` may configure the root logger; put it back for the tests that follow."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


# --- bad configuration: exit 2, one clear message ---------------------------------------

VALID_SOURCE = f"""
[[sources]]
name = "adobe-prod"
provider = "adobe_vip"
base_url = "https://partners.example.com"
customers = ["9876543210"]

[sources.auth]
token_url = "https://ims.example.com/ims/token/v3"
client_id = "cid"
client_secret = "{FILE_SECRET}"
"""

BAD_CONFIGS = {
    "unknown key": (
        VALID_SOURCE + 'colour = "blue"\n',
        "sources.0.auth.colour",
    ),
    "bad type": (
        VALID_SOURCE.replace("\n[sources.auth]", 'poll_interval_s = "soon"\n\n[sources.auth]'),
        "sources.0.poll_interval_s",
    ),
    "missing provider": (
        VALID_SOURCE.replace('provider = "adobe_vip"\n', ""),
        "sources.0.provider",
    ),
    "invalid toml": (
        VALID_SOURCE + "[store\nurl = 1\n",
        "not valid TOML",
    ),
    "invalid toml on the secret's line": (
        VALID_SOURCE.replace(f'"{FILE_SECRET}"', f'"{FILE_SECRET}'),
        "not valid TOML",
    ),
    "misspelled secret key": (
        VALID_SOURCE.replace("client_secret =", "client_secert ="),
        "sources.0.auth.client_secert",
    ),
}


def bad_configuration(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run `main(args)`, expect exit code 2 and return the one line it printed."""
    assert cli.main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith("order-watcher: bad configuration: ")
    return line


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_a_bad_config_file_exits_2_naming_the_key(
    case: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text, mentions = BAD_CONFIGS[case]
    path = tmp_path / "bad.toml"
    path.write_text(text)

    message = bad_configuration(capsys, "once", "--config", str(path))

    assert mentions in message
    assert FILE_SECRET not in message


def test_a_bad_type_says_what_is_wrong(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text, _ = BAD_CONFIGS["bad type"]
    path = tmp_path / "bad.toml"
    path.write_text(text)

    message = bad_configuration(capsys, "check", "--config", str(path))

    assert re.search(r"sources\.0\.poll_interval_s: .*not a duration", message)


def test_every_mistake_is_one_line_of_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[amqp]\nurll = "x"\n' + VALID_SOURCE.replace('"cid"', '"cid"\nclientid = 1'))
    monkeypatch.setenv("WATCHER_SOURCES__ADOBE_PROD__TIMEOUT_S", "soon")

    assert cli.main(["check", "--config", str(path)]) == 2

    assert capsys.readouterr().err.splitlines() == [
        "order-watcher: bad configuration: amqp.urll: unknown key; did you mean amqp.url?",
        "order-watcher: bad configuration: sources.0.timeout_s"
        " (from WATCHER_SOURCES__ADOBE_PROD__TIMEOUT_S):"
        " 'soon' is not a duration such as '90s', '15m' or '2h'",
        "order-watcher: bad configuration: sources.0.auth.clientid: unknown key;"
        " did you mean sources.0.auth.client_id?",
    ]


def test_a_variable_that_is_not_a_setting_is_a_warning_not_a_mistake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(VALID_SOURCE.replace('"cid"', '"cid"\nclientid = 1'))
    monkeypatch.setenv("WATCHER_AMQP__URLL", "amqp://x")
    monkeypatch.setenv("WATCHER_SERVICE_HOST", "10.0.0.1")

    assert cli.main(["check", "--config", str(path)]) == 2

    assert capsys.readouterr().err.splitlines() == [
        "order-watcher: warning: WATCHER_AMQP__URLL is not a setting and is ignored;"
        " did you mean WATCHER_AMQP__URL?",
        "order-watcher: bad configuration: sources.0.auth.clientid: unknown key;"
        " did you mean sources.0.auth.client_id?",
    ]


def test_a_missing_config_file_exits_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = tmp_path / "nowhere.toml"

    message = bad_configuration(capsys, "once", "--config", str(missing))

    assert str(missing) in message
    assert "cannot read the config file" in message


def test_no_config_and_no_watcher_config_exits_2(capsys: pytest.CaptureFixture[str]) -> None:

    message = bad_configuration(capsys, "once")

    assert "--config" in message
    assert "WATCHER_CONFIG" in message


def test_watcher_config_names_the_file_when_no_option_is_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "from-env.toml"
    path.write_text(VALID_SOURCE + "surprise = 1\n")
    monkeypatch.setenv("WATCHER_CONFIG", str(path))

    message = bad_configuration(capsys, "check")

    assert "sources.0.auth.surprise" in message


@pytest.mark.parametrize("command", ["run", "once"])
def test_run_and_once_without_sources_exit_2(
    command: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "no-sources.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "w.db"}"\n')

    message = bad_configuration(capsys, command, "--config", str(path))

    assert "sources" in message
    assert not (tmp_path / "w.db").exists()


def test_tail_without_a_broker_exits_1_and_hides_the_password(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"amqp://watcher:{BROKER_PASSWORD}@127.0.0.1:{closed_port()}/"
    monkeypatch.setenv("WATCHER_AMQP__URL", url)

    assert cli.main(["tail", "--limit", "1", "adobe_vip.#"]) == 1

    err = capsys.readouterr().err
    assert "cannot connect to the broker" in err
    assert BROKER_PASSWORD not in err


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])

    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "once", "check", "tail", "demo", "simulate"):
        assert re.search(rf"^\s+{command}\s+\S", out, re.MULTILINE), command


# --- once against the simulator ----------------------------------------------------------


def cloud_events(stdout: str) -> list[dict[str, Any]]:
    parsed = [orjson.loads(line) for line in stdout.splitlines()]
    assert all(isinstance(event, dict) for event in parsed)
    return parsed


async def test_once_prints_nothing_on_the_baseline_then_one_cloud_event_per_change(
    adobe_sim: AdobeSimulator, sim_admin: SimAdmin, tmp_path: Path
) -> None:
    config = str(sim_config(adobe_sim, tmp_path))

    baseline = await run_cli("once", "--config", config, cwd=tmp_path)
    assert (baseline.returncode, baseline.stdout) == (0, ""), baseline.stderr

    await sim_admin.patch_order(
        CUSTOMER, "5120000002", {"lineItems": [{"extLineItemNumber": 1, "quantity": 8}]}
    )
    await sim_admin.create_order(CUSTOMER, {"status": "1002"})
    changes = await run_cli("once", "--config", config, cwd=tmp_path)

    assert changes.returncode == 0, changes.stderr
    printed = cloud_events(changes.stdout)
    assert sorted((event["type"], event["subject"]) for event in printed) == [
        ("order.created", f"adobe_vip/{CUSTOMER}/{NEW_ORDER}"),
        ("order.line_item.quantity_changed", f"adobe_vip/{CUSTOMER}/5120000002"),
    ]
    for event in printed:
        assert event["specversion"] == "1.0"
        assert event["source"] == "order-watcher/adobe-sim"
        assert event["datacontenttype"] == "application/json"
        assert re.fullmatch(r"[0-9a-f-]{36}", event["id"])
        assert event["time"].endswith("Z")
        assert event["data"]["customer_id"] == CUSTOMER
    [quantity] = [e["data"] for e in printed if e["type"].endswith("quantity_changed")]
    assert (quantity["line_key"], quantity["before"], quantity["after"]) == ("1", 6, 8)
    assert quantity["sequence"] == 2
    assert len({event["id"] for event in printed}) == 2
    assert CLIENT_SECRET not in changes.stdout + changes.stderr
    async with store.opened(f"sqlite:///{tmp_path / 'watcher.db'}") as snapshots:
        committed = await snapshots.pending(100)
    assert sorted((r.event_id, r.event_type) for r in committed) == sorted(
        (event["id"], event["type"]) for event in printed
    )

    quiet = await run_cli("once", "--config", config, cwd=tmp_path)
    assert (quiet.returncode, quiet.stdout) == (0, ""), quiet.stderr


async def test_once_exits_1_when_a_source_fails(
    adobe_sim: AdobeSimulator, sim_admin: SimAdmin, tmp_path: Path
) -> None:
    config = str(sim_config(adobe_sim, tmp_path))
    await sim_admin.fault(kind="status", status=503, count=-1)

    failed = await run_cli("once", "--config", config, cwd=tmp_path)

    assert (failed.returncode, failed.stdout) == (1, "")
    assert CUSTOMER in failed.stderr
    assert CLIENT_SECRET not in failed.stderr


# --- check -------------------------------------------------------------------------------


async def test_check_reports_each_dependency_and_hides_the_broker_password(
    adobe_sim: AdobeSimulator, tmp_path: Path
) -> None:
    config = str(sim_config(adobe_sim, tmp_path))
    async with store.opened(f"sqlite:///{tmp_path / 'watcher.db'}"):
        pass

    checked = await run_cli("check", "--config", config, cwd=tmp_path)

    assert checked.returncode == 1, checked.stderr
    lines = checked.stdout.splitlines()
    assert len(lines) == 3, checked.stdout
    assert re.match(r"ok\s+store \(sqlite\): readable; 0 event\(s\) waiting", lines[0])
    assert re.match(r"FAIL broker \(exchange order-watcher\): ", lines[1])
    assert re.match(rf"ok\s+source adobe-sim \(adobe_vip\): customer {CUSTOMER}: ", lines[2])
    assert BROKER_PASSWORD not in checked.stdout + checked.stderr
    assert CLIENT_SECRET not in checked.stdout + checked.stderr


# --- demo --------------------------------------------------------------------------------


def test_demo_shows_the_simulator_the_baseline_and_live_changes(tmp_path: Path) -> None:
    args = ["demo", "--duration-s", "4", "--tick-s", "1", "--poll-interval-s", "0.5"]
    completed = subprocess.run(
        [sys.executable, "-m", "watcher.cli", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_environment(),
        cwd=tmp_path,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    for title in ("Adobe VIP Marketplace", "Microsoft Partner Center", "Elastic Path", "Zuora"):
        assert re.search(rf"simulator: {title}.* at http://127\.0\.0\.1:\d+", out), title
    for source in ("adobe-vip-demo", "partner-center-demo", "elastic-path-demo", "zuora-demo"):
        assert len(re.findall(rf"{source}: baseline of \S+, \d+ orders", out)) == 3, source
    assert re.search(r"^\S+\s+adobe_vip\.order\.\S+\s+\d+/\d+", out, re.MULTILINE), out
    assert "poll of customer" not in out, out  # no poll failed


def test_demo_stops_quietly_when_its_reader_goes_away(tmp_path: Path) -> None:
    """`order-watcher demo | head` ends with exit 0 and no traceback."""
    args = [
        sys.executable,
        "-m",
        "watcher.cli",
        "demo",
        "--tick-s",
        "1",
        "--poll-interval-s",
        "0.5",
    ]
    process = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_environment(),
        cwd=tmp_path,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()

    assert process.wait(timeout=30) == 0
    assert b"simulator:" in first
    assert b"Traceback" not in process.stderr.read()
    process.stderr.close()


def _store_config(sim: AdobeSimulator, tmp_path: Path, db: Path) -> str:
    path = sim_config(sim, tmp_path)
    path.write_text(path.read_text().replace(str(tmp_path / "watcher.db"), str(db)))
    return str(path)


async def test_check_reports_a_missing_store_and_creates_nothing(
    adobe_sim: AdobeSimulator, tmp_path: Path
) -> None:
    db = tmp_path / "state" / "watcher.db"
    config = _store_config(adobe_sim, tmp_path, db)

    checked = await run_cli("check", "--config", config, cwd=tmp_path)

    assert checked.returncode == 1
    store_line = checked.stdout.splitlines()[0]
    assert store_line == (
        f"FAIL store (sqlite): no store at {db}; the service creates it when it first runs"
    )
    assert not db.parent.exists()


async def test_check_reads_a_store_and_leaves_it_as_it_was(
    adobe_sim: AdobeSimulator, tmp_path: Path
) -> None:
    db = tmp_path / "state" / "watcher.db"
    config = _store_config(adobe_sim, tmp_path, db)
    assert (await run_cli("once", "--config", config, cwd=tmp_path)).returncode == 0
    before = {
        path.name: (path.stat().st_mtime_ns, path.read_bytes()) for path in db.parent.iterdir()
    }

    checked = await run_cli("check", "--config", config, cwd=tmp_path)

    assert checked.stdout.startswith("ok   store (sqlite): readable; 0 event(s) waiting")
    after = {
        path.name: (path.stat().st_mtime_ns, path.read_bytes()) for path in db.parent.iterdir()
    }
    assert after == before
    assert sorted(before) == ["watcher.db", "watcher.db.lock"]  # the lock `once` held


async def test_check_refuses_a_store_of_another_schema_version_and_keeps_it(
    adobe_sim: AdobeSimulator, tmp_path: Path
) -> None:
    db = tmp_path / "watcher.db"
    config = _store_config(adobe_sim, tmp_path, db)
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA user_version = 99")

    checked = await run_cli("check", "--config", config, cwd=tmp_path)

    assert checked.stdout.startswith("FAIL store (sqlite): the store has schema version 99")
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (99,)
        assert connection.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)


async def test_a_second_process_on_a_sqlite_store_exits_saying_why(
    adobe_sim: AdobeSimulator, tmp_path: Path
) -> None:
    config = str(sim_config(adobe_sim, tmp_path))
    async with started("run", "--config", config, cwd=tmp_path) as running:
        assert running.stderr is not None
        async with asyncio.timeout(20):
            while b"watcher.app: watching" not in await running.stderr.readline():
                pass

        second = await run_cli("once", "--config", config, cwd=tmp_path)

        assert second.returncode != 0
        assert f"in use by another order-watcher process (pid {running.pid})" in second.stderr
        assert "PostgreSQL" in second.stderr
        assert running.returncode is None  # the first runs on
