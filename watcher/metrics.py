"""Prometheus metrics: one `Metrics` object on an injected `CollectorRegistry`.

The names, types and labels are a contract shared with the alert rules and the dashboard;
every metric starts with `order_watcher_` and is in base units. Labels stay bounded: a
`source` is a configured account name, an `endpoint` comes from a closed vocabulary, a
`type` is an event type, a `code` an HTTP status. No label ever carries a customer id, an
order id, a URL or a secret.

Callers speak the domain (`poll_finished`, `vendor_request`, `batch_published`, `outbox`),
never a metric object, so the wiring lives in the composition root and tests build a fresh
registry each. Two gauges read live state when scraped instead of being pushed:
`watch_circuit` (a source's breaker) and `watch_broker` (the relay's connection).

Vendor requests are observed from outside the adapters, by the trace on each source's
session (`providers.sessions`), which reports each request's `endpoint(path)` and status.
"""

from __future__ import annotations

import importlib.metadata
import platform
import time
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "order_watcher"
OUTCOMES = ("ok", "error", "permanent_error", "store_error")
CIRCUIT_STATES: Mapping[str, float] = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
ENDPOINTS = ("customers", "orders", "order", "items", "provisioningstatus", "token", "other")
_SEGMENTS = {
    "customers": "customers",
    "orders": "orders",
    "items": "items",
    "provisioningstatus": "provisioningstatus",
    "token": "token",
    "access_token": "token",
}
_LAG_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
_POLL_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_REQUEST_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_CONFIRM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def endpoint(path: str) -> str:
    """The bounded `endpoint` label for a vendor URL path.

    The last segment that names a resource decides: customers (the listing, when last), orders,
    items, provisioningstatus, token (access_token too); "orders" followed by an id is one
    order. Anything else is
    "other", so ids and raw paths never become label values.
    """
    segments = [segment.lower() for segment in path.split("/") if segment]
    for index in range(len(segments) - 1, -1, -1):
        name = _SEGMENTS.get(segments[index])
        if name == "orders" and index < len(segments) - 1:
            return "order"
        if name == "customers" and index < len(segments) - 1:
            continue  # one customer, not the listing
        if name is not None:
            return name
    return "other"


def _counter(registry: CollectorRegistry, name: str, text: str, labels: list[str]) -> Counter:
    return Counter(f"{PREFIX}_{name}", text, labels, registry=registry)


def _gauge(registry: CollectorRegistry, name: str, text: str, labels: list[str]) -> Gauge:
    return Gauge(f"{PREFIX}_{name}", text, labels, registry=registry)


def _held_of(held: Callable[[], Mapping[str, int]], source: str) -> Callable[[], float]:
    return lambda: float(held().get(source, 0))


def version() -> str:
    try:
        return importlib.metadata.version("order-watcher")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class Metrics:
    """Every order-watcher metric, registered on `registry`; see the module docstring."""

    def __init__(
        self, registry: CollectorRegistry, *, wall_clock: Callable[[], float] = time.time
    ) -> None:
        self.registry = registry
        self._clock = wall_clock
        self._stuck_statuses: dict[str, set[str]] = {}
        self._build(registry)
        self._flow(registry)
        self._bus(registry)

    def _build(self, registry: CollectorRegistry) -> None:
        info = Gauge(
            f"{PREFIX}_build_info", "Build information.", ["version", "python"], registry=registry
        )
        info.labels(version(), platform.python_version()).set(1)

    def _flow(self, registry: CollectorRegistry) -> None:
        self._polls = _counter(
            registry, "polls_total", "Customer syncs finished.", ["source", "outcome"]
        )
        self._poll_seconds = Histogram(
            f"{PREFIX}_poll_duration_seconds",
            "One customer sync, fetch to commit.",
            ["source"],
            buckets=_POLL_BUCKETS,
            registry=registry,
        )
        self._last_success = _gauge(
            registry,
            "last_successful_poll_timestamp_seconds",
            "Unix time of the source's last successful customer sync.",
            ["source"],
        )
        self._orders = _gauge(
            registry,
            "orders_tracked",
            "Orders in the source's last successful syncs (sum over customers).",
            ["source"],
        )
        self._changes = _counter(
            registry,
            "changes_detected_total",
            "Events detected and committed to the outbox, by event type.",
            ["source", "type"],
        )
        self._stuck = _gauge(
            registry,
            "stuck_orders",
            "Orders currently past their stuck threshold, by normalised status.",
            ["source", "status"],
        )
        self._schedule(registry)
        self._vendor(registry)

    def _schedule(self, registry: CollectorRegistry) -> None:
        self._poll_lag = Histogram(
            f"{PREFIX}_poll_lag_seconds",
            "How long after its due time a customer sync started.",
            ["source"],
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self._customers = _gauge(
            registry,
            "customers",
            "Customers the source polls (configured or discovered).",
            ["source"],
        )
        self._hot = _gauge(
            registry,
            "customers_hot",
            "Customers with an order or line in flight, polled every hot_interval_s.",
            ["source"],
        )
        self._discoveries = _counter(
            registry,
            "discovery_runs_total",
            'Listings of an account\'s customers (customers = "all"), by outcome.',
            ["source", "outcome"],
        )

    def _vendor(self, registry: CollectorRegistry) -> None:
        self._requests = _counter(
            registry,
            "vendor_requests_total",
            'Vendor HTTP requests by reply status ("error" when no reply).',
            ["source", "endpoint", "code"],
        )
        self._request_seconds = Histogram(
            f"{PREFIX}_vendor_request_duration_seconds",
            "Vendor request latency.",
            ["source", "endpoint"],
            buckets=_REQUEST_BUCKETS,
            registry=registry,
        )
        self._throttled = _counter(
            registry, "vendor_throttled_total", "Vendor replies with status 429.", ["source"]
        )
        self._circuit = _gauge(
            registry, "circuit_state", "Circuit breaker: 0 closed, 1 half-open, 2 open.", ["source"]
        )

    def _bus(self, registry: CollectorRegistry) -> None:
        self._published = Counter(
            f"{PREFIX}_events_published_total",
            "Events the broker confirmed.",
            ["type"],
            registry=registry,
        )
        self._backlog = Gauge(
            f"{PREFIX}_outbox_backlog", "Unpublished events in the outbox.", registry=registry
        )
        self._oldest_age = Gauge(
            f"{PREFIX}_outbox_oldest_age_seconds",
            "Age of the oldest unpublished event (0 when empty).",
            registry=registry,
        )
        self._confirm_seconds = Histogram(
            f"{PREFIX}_publish_confirm_duration_seconds",
            "One publish batch, first send to last confirm.",
            buckets=_CONFIRM_BUCKETS,
            registry=registry,
        )
        self._broker = Gauge(
            f"{PREFIX}_broker_connected",
            "1 while the relay holds a broker connection.",
            registry=registry,
        )
        self._relaying = Gauge(
            f"{PREFIX}_relaying",
            "1 while this process relays the outbox (always alone; one replica of a fleet).",
            registry=registry,
        )
        self._unroutable = Gauge(
            f"{PREFIX}_unroutable_events",
            "Messages waiting in the unroutable queue (events no binding matched).",
            registry=registry,
        )

    def source_added(self, source: str) -> None:
        """Start the source's series at zero, so rates and alerts see them from the start."""
        for outcome in OUTCOMES:
            self._polls.labels(source, outcome)
        self._throttled.labels(source)
        self._orders.labels(source).set(0)
        self._circuit.labels(source).set(0)
        self._poll_lag.labels(source)
        self._customers.labels(source).set(0)
        self._hot.labels(source).set(0)
        for outcome in ("ok", "error"):
            self._discoveries.labels(source, outcome)

    def poll_started_late(self, source: str, lag_s: float) -> None:
        self._poll_lag.labels(source).observe(lag_s)

    def customers(self, source: str, *, known: int, hot: int) -> None:
        self._customers.labels(source).set(known)
        self._hot.labels(source).set(hot)

    def discovery_finished(self, source: str, *, ok: bool) -> None:
        self._discoveries.labels(source, "ok" if ok else "error").inc()

    def poll_finished(self, source: str, outcome: str, seconds: float) -> None:
        self._polls.labels(source, outcome).inc()
        self._poll_seconds.labels(source).observe(seconds)
        if outcome == "ok":
            self._last_success.labels(source).set(self._clock())

    def changes_detected(self, source: str, event_types: Iterable[str]) -> None:
        for event_type in event_types:
            self._changes.labels(source, event_type).inc()

    def orders_tracked(self, source: str, count: int) -> None:
        self._orders.labels(source).set(count)

    def watch_circuit(self, source: str, state: Callable[[], str]) -> None:
        """Report the breaker's state, read from `state()` at every scrape."""
        self._circuit.labels(source).set_function(lambda: CIRCUIT_STATES.get(state(), 0.0))

    def stuck_orders(self, source: str, by_status: Mapping[str, int]) -> None:
        """The source's stuck orders now, by status; statuses no longer listed drop to 0."""
        known = self._stuck_statuses.setdefault(source, set())
        known.update(by_status)
        for status in known:
            self._stuck.labels(source, status).set(by_status.get(status, 0))

    def vendor_request(self, source: str, endpoint: str, code: str, seconds: float) -> None:
        self._requests.labels(source, endpoint, code).inc()
        self._request_seconds.labels(source, endpoint).observe(seconds)
        if code == "429":
            self._throttled.labels(source).inc()

    def batch_published(self, by_type: Mapping[str, int], *, seconds: float) -> None:
        """One publish batch: confirmed events by type, and how long the batch took."""
        for event_type, count in by_type.items():
            self._published.labels(event_type).inc(count)
        self._confirm_seconds.observe(seconds)

    def outbox(self, backlog: int, oldest_age_s: float) -> None:
        self._backlog.set(backlog)
        self._oldest_age.set(oldest_age_s)

    def watch_broker(self, connected: Callable[[], bool]) -> None:
        """Report whether the relay holds a broker connection, read at every scrape."""
        self._broker.set_function(lambda: 1.0 if connected() else 0.0)

    def watch_relaying(self, relaying: Callable[[], bool]) -> None:
        """Report whether this process relays the outbox, read at every scrape."""
        self._relaying.set_function(lambda: 1.0 if relaying() else 0.0)

    def unroutable(self, count: int) -> None:
        self._unroutable.set(count)

    def replica(
        self,
        replica: str,
        *,
        store: str,
        held: Callable[[], Mapping[str, int]] | None = None,
        sources: Iterable[str] = (),
    ) -> None:
        """This process's identity and store backend; in a fleet, the leases it holds of each
        of `sources` (read at every scrape; `@tasks` counts the relay and the discoveries)."""
        info = Gauge(
            f"{PREFIX}_replica_info",
            "This replica's identity and its store backend (1).",
            ["replica", "store"],
            registry=self.registry,
        )
        info.labels(replica, store).set(1)
        if held is None:
            return
        leases = _gauge(
            self.registry, "leases_held", "Leases this replica holds, by source.", ["source"]
        )
        for source in sources:
            leases.labels(source).set_function(_held_of(held, source))
