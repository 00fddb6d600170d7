"""The Prometheus metrics: domain methods, the endpoint vocabulary and the vendor trace.

Each test builds a fresh `CollectorRegistry` and reads samples back by name and labels.
The vendor trace runs for real: an Adobe VIP adapter on a session from `sessions.vendor`
talks to the simulator over sockets on 127.0.0.1, with a 429 injected. The whole exposition
passes `promtool check metrics`, and no label value anywhere is a customer or order id.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from collections.abc import Iterable

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import SecretStr

from tests.plugins.simulator import SIM_CUSTOMERS, AdobeSimulator, SimAdmin
from watcher import app
from watcher.metrics import ENDPOINTS, Metrics, endpoint, version
from watcher.providers import connect, sessions
from watcher.settings import AuthSettings, RetrySettings, SourceSettings
from watcher.simulator.adobe_vip.world import CLIENT_ID, CLIENT_SECRET

SOURCE = "adobe-metrics"
NOW = 1_790_000_000.0
ORDER_IDS = [f"51200000{n:02d}" for n in range(1, 11)]
PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry, wall_clock=lambda: NOW)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(f"order_watcher_{name}", labels)


async def no_sleep(_: float) -> None:
    """The adapter's retry back-off, skipped."""


def adobe_source(sim: AdobeSimulator) -> SourceSettings:
    return SourceSettings(
        name=SOURCE,
        provider="adobe_vip",
        base_url=sim.base_url,
        customers=list(SIM_CUSTOMERS),
        auth=AuthSettings(
            token_url=sim.token_url, client_id=CLIENT_ID, client_secret=SecretStr(CLIENT_SECRET)
        ),
        retry=RetrySettings(attempts=3, base_delay_s=0.01, max_delay_s=5),
        timeout_s=5,
    )


# --- domain methods -------------------------------------------------------------------


def test_build_info_names_the_version_and_python(registry: CollectorRegistry) -> None:
    Metrics(registry)
    info = {"version": version(), "python": platform.python_version()}
    assert value(registry, "build_info", **info) == 1.0
    assert version() == "0.1.0"


def test_a_new_source_starts_at_zero(registry: CollectorRegistry, metrics: Metrics) -> None:
    metrics.source_added(SOURCE)

    for outcome in ("ok", "error", "permanent_error", "store_error"):
        assert value(registry, "polls_total", source=SOURCE, outcome=outcome) == 0.0
    assert value(registry, "vendor_throttled_total", source=SOURCE) == 0.0
    assert value(registry, "orders_tracked", source=SOURCE) == 0.0
    assert value(registry, "circuit_state", source=SOURCE) == 0.0
    assert value(registry, "last_successful_poll_timestamp_seconds", source=SOURCE) is None


def test_polls_count_by_outcome_and_only_success_moves_the_timestamp(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    metrics.poll_finished(SOURCE, "error", 0.3)
    assert value(registry, "last_successful_poll_timestamp_seconds", source=SOURCE) is None

    metrics.poll_finished(SOURCE, "ok", 0.2)
    metrics.poll_finished(SOURCE, "ok", 1.5)

    assert value(registry, "polls_total", source=SOURCE, outcome="ok") == 2.0
    assert value(registry, "polls_total", source=SOURCE, outcome="error") == 1.0
    assert value(registry, "poll_duration_seconds_count", source=SOURCE) == 3.0
    assert value(registry, "poll_duration_seconds_sum", source=SOURCE) == pytest.approx(2.0)
    assert value(registry, "poll_duration_seconds_bucket", source=SOURCE, le="0.25") == 1.0
    assert value(registry, "last_successful_poll_timestamp_seconds", source=SOURCE) == NOW


def test_vendor_requests_by_endpoint_and_code_and_429s_as_throttled(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    metrics.vendor_request(SOURCE, "orders", "200", 0.04)
    metrics.vendor_request(SOURCE, "orders", "429", 0.01)
    metrics.vendor_request(SOURCE, "token", "error", 2.0)

    assert value(registry, "vendor_requests_total", source=SOURCE, endpoint="orders", code="200")
    assert value(
        registry, "vendor_requests_total", source=SOURCE, endpoint="token", code="error"
    ) == (1.0)
    assert value(registry, "vendor_throttled_total", source=SOURCE) == 1.0
    count = value(
        registry, "vendor_request_duration_seconds_count", source=SOURCE, endpoint="orders"
    )
    assert count == 2.0


def test_changes_orders_and_stuck_orders(registry: CollectorRegistry, metrics: Metrics) -> None:
    metrics.changes_detected(SOURCE, ["order.created", "order.created", "order.status_changed"])
    metrics.orders_tracked(SOURCE, 42)
    metrics.stuck_orders(SOURCE, {"pending": 3, "processing": 1})
    metrics.stuck_orders(SOURCE, {"pending": 2})

    assert value(registry, "changes_detected_total", source=SOURCE, type="order.created") == 2.0
    changed = value(registry, "changes_detected_total", source=SOURCE, type="order.status_changed")
    assert changed == 1.0
    assert value(registry, "orders_tracked", source=SOURCE) == 42.0
    assert value(registry, "stuck_orders", source=SOURCE, status="pending") == 2.0
    assert value(registry, "stuck_orders", source=SOURCE, status="processing") == 0.0


def test_publishing_and_the_outbox(registry: CollectorRegistry, metrics: Metrics) -> None:
    metrics.batch_published({"order.created": 3, "order.stuck": 1}, seconds=0.02)
    metrics.batch_published({"order.created": 2}, seconds=0.5)
    metrics.outbox(17, 42.5)
    metrics.unroutable(4)

    assert value(registry, "events_published_total", type="order.created") == 5.0
    assert value(registry, "events_published_total", type="order.stuck") == 1.0
    assert value(registry, "publish_confirm_duration_seconds_count") == 2.0
    assert value(registry, "publish_confirm_duration_seconds_bucket", le="0.025") == 1.0
    assert value(registry, "outbox_backlog") == 17.0
    assert value(registry, "outbox_oldest_age_seconds") == 42.5
    assert value(registry, "unroutable_events") == 4.0


def test_circuit_and_broker_gauges_read_live_state(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    breaker = {"state": "closed"}
    connected = {"now": False}
    metrics.watch_circuit(SOURCE, lambda: breaker["state"])
    metrics.watch_broker(lambda: connected["now"])

    readings = []
    for state in ("closed", "half_open", "open"):
        breaker["state"] = state
        readings.append(value(registry, "circuit_state", source=SOURCE))
    assert readings == [0.0, 1.0, 2.0]
    assert value(registry, "broker_connected") == 0.0
    connected["now"] = True
    assert value(registry, "broker_connected") == 1.0
    relaying = {"now": True}
    metrics.watch_relaying(lambda: relaying["now"])
    assert value(registry, "relaying") == 1.0
    relaying["now"] = False  # another replica took the relay over
    assert value(registry, "relaying") == 0.0


def test_the_replica_and_its_leases_read_live(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    held = {SOURCE: 3, "@tasks": 1}
    metrics.replica("host-1-abc", store="postgresql", held=lambda: held, sources=[SOURCE, "@tasks"])

    assert value(registry, "replica_info", replica="host-1-abc", store="postgresql") == 1.0
    assert value(registry, "leases_held", source=SOURCE) == 3.0
    held[SOURCE] = 0  # lost them all
    assert value(registry, "leases_held", source=SOURCE) == 0.0
    assert value(registry, "leases_held", source="@tasks") == 1.0


def test_a_single_process_has_no_leases_held(registry: CollectorRegistry, metrics: Metrics) -> None:
    metrics.replica("host-2-def", store="sqlite")

    assert value(registry, "replica_info", replica="host-2-def", store="sqlite") == 1.0
    assert registry.get_sample_value("order_watcher_leases_held", {"source": SOURCE}) is None


# --- the endpoint vocabulary ----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v3/customers/1000000001/orders", "orders"),
        ("/v3/customers/1000000001/orders/5120000001", "order"),
        ("/ims/token/v3", "token"),
        ("/v1/customers/c-1/orders", "orders"),
        ("/v1/customers/c-1/orders/o-1", "order"),
        ("/v1/customers/c-1/orders/o-1/provisioningstatus", "provisioningstatus"),
        ("/tenant-1/oauth2/token", "token"),
        ("/v2/orders", "orders"),
        ("/v2/orders/8d5c6a1e", "order"),
        ("/v2/orders/8d5c6a1e/items", "items"),
        ("/oauth/access_token", "token"),
        ("/oauth/token", "token"),
        ("/v2/Orders/", "orders"),
        ("/v3/customers/1000000001", "other"),
        ("/v3/resellers/1000404757/customers", "customers"),
        ("/v1/customers", "customers"),
        ("/", "other"),
        ("", "other"),
    ],
)
def test_endpoint_vocabulary(path: str, expected: str) -> None:
    assert endpoint(path) == expected
    assert expected in ENDPOINTS


# --- the vendor trace, for real -------------------------------------------------------


async def test_the_trace_counts_vendor_requests_by_endpoint_and_code(
    adobe_sim: AdobeSimulator, sim_admin: SimAdmin, registry: CollectorRegistry
) -> None:
    metrics = Metrics(registry)
    await sim_admin.fault(kind="status", status=429, retry_after_s=0, count=1)
    async with sessions.vendor(SOURCE, metrics) as session:
        adapter = connect.adapter(adobe_source(adobe_sim), session, sleep=no_sleep)
        for customer_id in SIM_CUSTOMERS:
            await adapter.fetch_orders(customer_id, since=None)

    def requests(endpoint: str, code: str) -> float | None:
        labels = {"source": SOURCE, "endpoint": endpoint, "code": code}
        return value(registry, "vendor_requests_total", **labels)

    assert requests("token", "200") == 1.0
    assert requests("orders", "429") == 1.0
    assert requests("orders", "200") == 2.0
    assert value(registry, "vendor_throttled_total", source=SOURCE) == 1.0
    latency = {"source": SOURCE, "endpoint": "orders"}
    assert value(registry, "vendor_request_duration_seconds_count", **latency) == 3.0
    assert_no_ids(registry, [*SIM_CUSTOMERS, *ORDER_IDS])


async def test_a_request_without_a_reply_counts_as_error(registry: CollectorRegistry) -> None:
    metrics = Metrics(registry)
    async with sessions.vendor(SOURCE, metrics) as session:
        with pytest.raises(OSError, match="Cannot connect"):
            await session.get("http://127.0.0.1:1/v3/customers/1000000001/orders")

    labels = {"source": SOURCE, "endpoint": "orders", "code": "error"}
    assert value(registry, "vendor_requests_total", **labels) == 1.0


def assert_no_ids(registry: CollectorRegistry, ids: Iterable[str]) -> None:
    """No label value of any sample contains one of `ids`."""
    values = {
        label
        for family in registry.collect()
        for sample in family.samples
        for label in sample.labels.values()
    }
    assert values
    leaked = {label for label in values for id_ in ids if id_ in label}
    assert not leaked


# --- the whole exposition -------------------------------------------------------------


def populated(registry: CollectorRegistry) -> Metrics:
    metrics = Metrics(registry)
    metrics.source_added(SOURCE)
    metrics.poll_finished(SOURCE, "ok", 0.2)
    metrics.vendor_request(SOURCE, "orders", "429", 0.1)
    metrics.watch_circuit(SOURCE, lambda: "open")
    metrics.changes_detected(SOURCE, ["order.created"])
    metrics.stuck_orders(SOURCE, {"pending": 1})
    metrics.batch_published({"order.created": 1}, seconds=0.01)
    metrics.outbox(1, 3.0)
    metrics.watch_broker(lambda: True)
    metrics.unroutable(0)
    metrics.poll_started_late(SOURCE, 12.0)
    metrics.customers(SOURCE, known=40, hot=3)
    metrics.discovery_finished(SOURCE, ok=False)
    return metrics


@pytest.mark.skipif(PROMTOOL is None, reason="promtool missing (Debian package prometheus)")
def test_the_exposition_passes_promtool() -> None:
    registry = app.service_registry()
    populated(registry)
    text = generate_latest(registry)
    assert b"order_watcher_stuck_orders{" in text

    assert PROMTOOL is not None
    checked = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, timeout=20, check=False
    )
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    assert not checked.stdout.strip(), checked.stdout.decode()


def test_every_contract_metric_is_exported(registry: CollectorRegistry) -> None:
    populated(registry)
    names = {family.name for family in registry.collect()}
    assert names == {
        f"order_watcher_{name}"
        for name in (
            "build_info",
            "polls",
            "poll_duration_seconds",
            "last_successful_poll_timestamp_seconds",
            "vendor_requests",
            "vendor_request_duration_seconds",
            "vendor_throttled",
            "circuit_state",
            "orders_tracked",
            "changes_detected",
            "events_published",
            "outbox_backlog",
            "outbox_oldest_age_seconds",
            "publish_confirm_duration_seconds",
            "broker_connected",
            "relaying",
            "unroutable_events",
            "stuck_orders",
            "poll_lag_seconds",
            "customers",
            "customers_hot",
            "discovery_runs",
        )
    }
