"""The command line as an operator meets it, each case a real process: the version, usage
errors in one line with exit code 2, logging options on either side of the command, Ctrl-C
ending `tail`, `demo` and `simulate` with exit code 130, and `once` printing each customer's
events as soon as that customer is committed, with a word on stderr after a baseline.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from importlib import metadata
from pathlib import Path

import orjson
import pytest

from tests.plugins.simulator import (
    SIM_CUSTOMERS,
    SIM_ORDERS_PER_CUSTOMER,
    AdobeSimulator,
    SimAdmin,
)
from tests.test_cli import clean_environment, run_cli, sim_config, started


async def test_version(tmp_path: Path) -> None:
    expected = f"order-watcher {metadata.version('order-watcher')}\n"
    for option in ("--version", "-V"):
        shown = await run_cli(option, cwd=tmp_path)
        assert (shown.returncode, shown.stdout, shown.stderr) == (0, expected, "")


USAGE_ERRORS = [
    (["--log-level", "loud", "check"], "--log-level"),
    (["check", "--log-level", "loud"], "--log-level"),
    (["once", "--log-format", "xml"], "--log-format"),
    (["demo", "--customers", "0"], "--customers"),
    (["demo", "--tick-s", "-1"], "--tick-s"),
    (["demo", "--poll-interval-s", "0"], "--poll-interval-s"),
    (["simulate", "--port", "70000"], "--port"),
    (["simulate", "--orders", "many"], "--orders"),
    (["simulate", "--tick-s", "soon"], "--tick-s"),
    (["tail", "--limit", "0"], "--limit"),
    (["frobnicate"], "COMMAND"),
]


@pytest.mark.parametrize(
    ("args", "option"), USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS]
)
async def test_a_bad_option_is_one_line_naming_it_and_exit_2(
    tmp_path: Path, args: list[str], option: str
) -> None:
    shown = await run_cli(*args, cwd=tmp_path)

    assert (shown.returncode, shown.stdout) == (2, "")
    [line] = shown.stderr.splitlines()
    assert line.startswith("order-watcher")
    assert option in line


async def test_logging_options_work_before_and_after_the_command(
    adobe_sim: AdobeSimulator, tmp_path: Path
) -> None:
    config = str(sim_config(adobe_sim, tmp_path))

    after = await run_cli("once", "--config", config, "--log-format", "json", cwd=tmp_path)
    before = await run_cli("--log-level", "warning", "once", "--config", config, cwd=tmp_path)

    logged = [line for line in after.stderr.splitlines() if not line.startswith("order-watcher:")]
    assert logged, after.stderr
    entries = [orjson.loads(line) for line in logged]
    [poll] = [entry for entry in entries if entry["message"].startswith("poll source=")]
    assert {key: poll[key] for key in ("source", "provider", "customer", "outcome")} == {
        "source": "adobe-sim",
        "provider": "adobe_vip",
        "customer": SIM_CUSTOMERS[0],
        "outcome": "ok",
    }
    assert poll["duration_s"] > 0
    assert before.returncode == 0
    assert "poll source=" not in before.stderr  # an INFO line, below the asked-for level


# --- Ctrl-C ------------------------------------------------------------------------------


def four_free_ports() -> int:
    """The first of four loopback ports in a row that nothing listens on."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first: int = probe.getsockname()[1]
        if first > 65_000:
            continue
        sockets = [socket.socket() for _ in range(4)]
        try:
            for offset, sock in enumerate(sockets):
                sock.bind(("127.0.0.1", first + offset))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return first
    raise RuntimeError("no four free ports in a row")


async def interrupted(process: asyncio.subprocess.Process, ready: asyncio.StreamReader) -> str:
    """Wait for the first line on `ready`, press Ctrl-C, and return what stderr said."""
    assert process.stderr is not None
    first = await asyncio.wait_for(ready.readline(), 30)
    assert first, "the command ended before it was ready"
    process.send_signal(signal.SIGINT)
    async with asyncio.timeout(30):
        stderr = await process.stderr.read()
        assert await process.wait() == 130
    return stderr.decode()


async def test_ctrl_c_ends_demo_with_130(tmp_path: Path) -> None:
    async with started("demo", "--tick-s", "1", "--poll-interval-s", "0.5", cwd=tmp_path) as demo:
        assert demo.stdout is not None
        stderr = await interrupted(demo, demo.stdout)
    assert "Traceback" not in stderr


async def test_ctrl_c_ends_simulate_with_130(tmp_path: Path) -> None:
    port = str(four_free_ports())
    async with started("simulate", "--port", port, "--tick-s", "1", cwd=tmp_path) as simulate:
        assert simulate.stdout is not None
        stderr = await interrupted(simulate, simulate.stdout)
    assert "Traceback" not in stderr


async def test_ctrl_c_ends_tail_with_130(amqp_url: str, tmp_path: Path) -> None:
    env = clean_environment() | {"WATCHER_AMQP__URL": amqp_url}
    async with started("tail", cwd=tmp_path, env=env) as tail:
        assert tail.stderr is not None
        stderr = await interrupted(tail, tail.stderr)  # it logs "tailing # on ..." when bound
    assert "Traceback" not in stderr
    assert stderr.strip() == ""


# --- once --------------------------------------------------------------------------------


def both_customers(config: Path) -> Path:
    """`config`, watching both of the simulator's customers."""
    quick, slow = SIM_CUSTOMERS
    config.write_text(config.read_text().replace(f'["{quick}"]', f'["{quick}", "{slow}"]'))
    return config


async def test_once_says_what_a_baseline_recorded(
    adobe_sim: AdobeSimulator, tmp_path: Path
) -> None:
    config = both_customers(sim_config(adobe_sim, tmp_path))

    baseline = await run_cli("once", "--config", str(config), cwd=tmp_path)

    assert (baseline.returncode, baseline.stdout) == (0, ""), baseline.stderr
    assert (
        f"order-watcher: baseline: {2 * SIM_ORDERS_PER_CUSTOMER} order(s) of 2 customer(s)"
        " recorded; a baseline publishes nothing, the next poll reports what changed"
    ) in baseline.stderr.splitlines()
    again = await run_cli("once", "--config", str(config), cwd=tmp_path)
    assert "baseline" not in again.stderr


async def test_once_prints_a_customers_events_as_soon_as_it_is_committed(
    adobe_sim: AdobeSimulator, sim_admin: SimAdmin, tmp_path: Path
) -> None:
    quick, slow = SIM_CUSTOMERS
    config = both_customers(sim_config(adobe_sim, tmp_path))
    assert (await run_cli("once", "--config", str(config), cwd=tmp_path)).returncode == 0
    for customer in (quick, slow):
        await sim_admin.create_order(customer, {"status": "1002"})
    # Every call for the slow customer waits 3 s; the quick one's event must not wait with it.
    await sim_admin.fault(kind="slow", delay_s=3.0, count=-1, path_contains=slow)

    async with started("once", "--config", str(config), cwd=tmp_path) as once:
        assert once.stdout is not None
        first = await asyncio.wait_for(once.stdout.readline(), 15)
        still_running = once.returncode is None
        rest = await asyncio.wait_for(once.stdout.read(), 30)
        assert await once.wait() == 0

    assert orjson.loads(first)["data"]["customer_id"] == quick
    assert still_running, "the first customer's event came only when everything was done"
    assert [orjson.loads(line)["data"]["customer_id"] for line in rest.splitlines()] == [slow]
