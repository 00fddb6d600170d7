"""Secrets never leak: a real `order-watcher run` with known secrets, scanned everywhere.

The watcher runs as a process with JSON logs, two vendors (Adobe VIP Marketplace and
Partner Center, whose app+user grant adds a refresh token) and a broker user with a
password of its own. While it runs, orders change, a vendor refuses a token and answers
with errors, and the broker connection is used. Then every log line, the whole metrics
exposition and every published event are searched for each secret: the AMQP password, the
client secrets, the refresh token, and every access token the simulators issued.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests import harness
from tests.plugins.partner_center import PcSimulator
from tests.plugins.rabbit import Broker
from tests.plugins.simulator import AdobeSimulator, SimAdmin
from watcher.simulator.adobe_vip import world as adobe_vip
from watcher.simulator.partner_center import world as partner_center_world

pytestmark = pytest.mark.timeout(90)
AMQP_USER, AMQP_PASSWORD = "watcher", "amqp-Pa55word-7c1e"
ADOBE_CUSTOMERS = ["1000000001", "1000000002"]


def config(
    adobe: AdobeSimulator, pc: PcSimulator, *, db: Path, amqp_url: str, port: int
) -> dict[str, Any]:
    base = harness.config(adobe, db=db, amqp_url=amqp_url, customers=ADOBE_CUSTOMERS)
    base["log_format"] = "json"
    base["http"] = {"listen": f"127.0.0.1:{port}"}
    base["sources"].append(
        {
            "name": "pc-secrets",
            "provider": "partner_center",
            "base_url": pc.base_url,
            "customers": pc.state.customer_ids(),
            "poll_interval_s": 0.2,
            "poll_jitter_s": 0.05,
            "auth": {
                "token_url": pc.token_url,
                "client_id": partner_center_world.CLIENT_ID,
                "client_secret": partner_center_world.CLIENT_SECRET,
                "refresh_token": partner_center_world.REFRESH_TOKEN,
            },
            "retry": {"attempts": 2, "base_delay_s": 0.05, "max_delay_s": 0.2},
        }
    )
    return base


def broker_user(broker: Broker, amqp_url: str) -> str:
    """A user of the test's own on the test's vhost; the URL that logs in as it."""
    vhost = amqp_url.rsplit("/", 1)[1]
    broker.ctl("add_user", AMQP_USER, AMQP_PASSWORD)
    broker.ctl("set_permissions", "-p", vhost, AMQP_USER, ".*", ".*", ".*")
    return f"amqp://{AMQP_USER}:{AMQP_PASSWORD}@127.0.0.1:{broker.amqp_port}/{vhost}"


async def test_no_secret_reaches_logs_metrics_or_events(
    adobe_sim: AdobeSimulator,
    sim_admin: SimAdmin,
    pc_sim: PcSimulator,
    rabbit_broker: Broker,
    amqp_url: str,
    tmp_path: Path,
) -> None:
    url = broker_user(rabbit_broker, amqp_url)
    port = harness.free_port()
    db, log = tmp_path / "watcher.db", tmp_path / "watcher.log"
    path = tmp_path / "watcher.toml"
    path.write_text(harness.to_toml(config(adobe_sim, pc_sim, db=db, amqp_url=url, port=port)))

    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "watcher.cli", "run", "--config", str(path),
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
        )  # fmt: skip
    try:
        await harness.eventually(
            lambda: harness.baseline_done(db, ADOBE_CUSTOMERS), what="the baseline sync"
        )
        async with harness.consuming(url) as consumer:
            await _stir(adobe_sim, sim_admin)
            await consumer.wait_for(
                {("order.status_changed", "adobe_vip/1000000001/5120000001", None)}
            )
            metrics = await _scrape(port)
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=30) == 0

    secrets = {
        AMQP_PASSWORD,
        adobe_vip.CLIENT_SECRET,
        partner_center_world.CLIENT_SECRET,
        partner_center_world.REFRESH_TOKEN,
        *adobe_sim.state.tokens.issued(),
        *pc_sim.state.tokens.issued(),
    }
    assert len(secrets) >= 6, "the vendors issued access tokens"
    lines = log.read_text().splitlines()
    assert lines
    assert all(isinstance(orjson.loads(line), dict) for line in lines), "JSON logs"
    bodies = [orjson.dumps(d.body).decode() for d in consumer.received]
    assert "order_watcher_polls_total" in metrics
    for secret in secrets:
        assert not [line for line in lines if secret in line], f"a log line holds {secret[:4]}…"
        assert secret not in metrics
        assert not [body for body in bodies if secret in body]


async def _stir(sim: AdobeSimulator, admin: SimAdmin) -> None:
    """Changes, a refused token and vendor errors, so every code path logs something."""
    await admin.fault(kind="status", status=500, count=2)
    await admin.revoke_tokens()
    await admin.fault(kind="status", status=403, count=1)
    lines = sim.state.order("1000000001", "5120000001")["lineItems"]
    patch = [{"extLineItemNumber": n["extLineItemNumber"], "status": "1000"} for n in lines]
    await admin.patch_order("1000000001", "5120000001", {"status": "1000", "lineItems": patch})


async def _scrape(port: int) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as reply,
    ):
        assert reply.status == 200
        return await reply.text()
