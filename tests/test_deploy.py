"""Deployment files: Prometheus config and alert rules, Grafana dashboard, Kubernetes
manifests, docker-compose.yml, Dockerfile and Procfile.

The Prometheus files are checked by the real `promtool` (Debian package `prometheus`):
`check config`, `check rules` and the rules' unit tests in deploy/prometheus/alerts_test.yml.
Those tests are skipped, saying why, only when promtool is not installed.

Every metric the alerts and the dashboard use must be one the watcher exports: METRICS is
that contract (names and types), and it is compared with what `watcher.metrics.Metrics`
registers. The watcher configurations shipped for compose and Kubernetes are loaded with
`watcher.settings.load`, the same way the service loads them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from watcher import settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
KUBERNETES = DEPLOY / "kubernetes"
DASHBOARD = DEPLOY / "grafana" / "dashboard.json"
PROBE_PATHS = {"/healthz", "/readyz"}
LISTEN = "0.0.0.0:9108"

# The metrics contract: every name the watcher exports, with its type.
METRICS = {
    "order_watcher_build_info": "gauge",
    "order_watcher_polls_total": "counter",
    "order_watcher_poll_duration_seconds": "histogram",
    "order_watcher_last_successful_poll_timestamp_seconds": "gauge",
    "order_watcher_vendor_requests_total": "counter",
    "order_watcher_vendor_request_duration_seconds": "histogram",
    "order_watcher_vendor_throttled_total": "counter",
    "order_watcher_circuit_state": "gauge",
    "order_watcher_orders_tracked": "gauge",
    "order_watcher_changes_detected_total": "counter",
    "order_watcher_events_published_total": "counter",
    "order_watcher_outbox_backlog": "gauge",
    "order_watcher_outbox_oldest_age_seconds": "gauge",
    "order_watcher_publish_confirm_duration_seconds": "histogram",
    "order_watcher_broker_connected": "gauge",
    "order_watcher_unroutable_events": "gauge",
    "order_watcher_stuck_orders": "gauge",
    "order_watcher_poll_lag_seconds": "histogram",
    "order_watcher_customers": "gauge",
    "order_watcher_customers_hot": "gauge",
    "order_watcher_discovery_runs_total": "counter",
}
ALERTS = {
    "WatcherDown",
    "WatcherAbsent",
    "SourceNotPolling",
    "OutboxBacklogGrowing",
    "OrdersStuck",
    "VendorErrorsHigh",
    "VendorThrottled",
    "PollsLate",
    "CircuitOpen",
    "BrokerDisconnected",
    "UnroutableEvents",
}
COMPOSE_SERVICES = {"rabbitmq", "simulator", "watcher", "prometheus", "grafana"}
SIMULATOR_PORTS = {"adobe_vip": 8080, "partner_center": 8081, "elastic_path": 8082, "zuora": 8083}
_METRIC_NAME = re.compile(r"\border_watcher_[a-z0-9_]+")


def exposed_series() -> set[str]:
    """The series names a scrape shows: histograms add _bucket, _sum and _count."""
    names: set[str] = set()
    for name, kind in METRICS.items():
        suffixes = ("_bucket", "_sum", "_count") if kind == "histogram" else ("",)
        names.update(name + suffix for suffix in suffixes)
    return names


def referenced_metrics(text: str) -> set[str]:
    return set(_METRIC_NAME.findall(text))


def yaml_file(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def kubernetes_documents() -> Iterator[dict[str, Any]]:
    for path in sorted(KUBERNETES.glob("*.yaml")):
        yield from (doc for doc in yaml.safe_load_all(path.read_text()) if doc)


def kubernetes_object(kind: str) -> dict[str, Any]:
    (found,) = [doc for doc in kubernetes_documents() if doc["kind"] == kind]
    return found


@pytest.fixture
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not installed (Debian package `prometheus`); `make test` installs it")
    return path


def run_promtool(promtool: str, *args: str, cwd: Path) -> None:
    done = subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}"


def copy_rules(destination: Path) -> None:
    for name in ("alerts.yml", "alerts_test.yml"):
        shutil.copy(PROMETHEUS / name, destination / name)


# ---- Prometheus ---------------------------------------------------------------------------


def test_prometheus_config_is_valid(promtool: str, tmp_path: Path) -> None:
    shutil.copy(PROMETHEUS / "prometheus.yml", tmp_path / "prometheus.yml")
    copy_rules(tmp_path)
    run_promtool(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)


def test_kubernetes_prometheus_config_is_valid(promtool: str, tmp_path: Path) -> None:
    """Checked with its service discovery swapped for a static target, because Debian's
    Prometheus is built without Kubernetes discovery; the relabelling is checked as is."""
    config = yaml_file(PROMETHEUS / "prometheus-kubernetes.yml")
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "order-watcher"
    assert job["kubernetes_sd_configs"] == [{"role": "endpoints"}]
    job.pop("kubernetes_sd_configs")
    job["static_configs"] = [{"targets": ["order-watcher:9108"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    copy_rules(tmp_path)
    run_promtool(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)


def test_prometheus_scrapes_the_job_the_alerts_expect() -> None:
    config = yaml_file(PROMETHEUS / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["order-watcher"]["static_configs"] == [{"targets": ["watcher:9108"]}]
    assert config["rule_files"] == ["alerts.yml"]


def test_alert_rules_are_valid(promtool: str) -> None:
    run_promtool(promtool, "check", "rules", "alerts.yml", cwd=PROMETHEUS)


def test_alert_rules_pass_their_unit_tests(promtool: str, tmp_path: Path) -> None:
    copy_rules(tmp_path)
    run_promtool(promtool, "test", "rules", "alerts_test.yml", cwd=tmp_path)


def test_every_alert_is_annotated_for_on_call() -> None:
    rules = [
        rule for group in yaml_file(PROMETHEUS / "alerts.yml")["groups"] for rule in group["rules"]
    ]
    assert {rule["alert"] for rule in rules} == ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert set(rule["annotations"]) == {"summary", "description", "runbook", "runbook_url"}


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in yaml_file(PROMETHEUS / "alerts_test.yml")["tests"]:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    assert firing == ALERTS
    assert quiet == ALERTS


# ---- metric names -------------------------------------------------------------------------


def test_alerts_use_only_exported_metrics() -> None:
    used = referenced_metrics((PROMETHEUS / "alerts.yml").read_text())
    assert used
    assert used <= exposed_series(), used - exposed_series()


def test_dashboard_uses_only_exported_metrics() -> None:
    used = referenced_metrics(DASHBOARD.read_text())
    assert used <= exposed_series(), used - exposed_series()


def test_dashboard_shows_every_metric_but_build_info() -> None:
    used = referenced_metrics(DASHBOARD.read_text())
    shown = {name for name in METRICS if any(series.startswith(name) for series in used)}
    assert shown == set(METRICS) - {"order_watcher_build_info"}


def test_contract_is_what_the_watcher_registers() -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    metrics = pytest.importorskip("watcher.metrics")
    registry = prometheus_client.CollectorRegistry()
    metrics.Metrics(registry)
    registered = {}
    for family in registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        registered[name] = family.type
    assert registered == METRICS


# ---- Grafana ------------------------------------------------------------------------------


def dashboard_panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = json.loads(DASHBOARD.read_text())["panels"]
    nested = [inner for panel in panels for inner in panel.get("panels", [])]
    return panels + nested


def test_dashboard_panel_ids_are_unique() -> None:
    ids = [panel["id"] for panel in dashboard_panels()]
    assert len(ids) == len(set(ids))


def test_dashboard_queries_use_the_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {item["name"]: item for item in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert dashboard["schemaVersion"] >= 39
    queried = [panel for panel in dashboard_panels() if panel["type"] != "row"]
    assert queried
    for panel in queried:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        assert all(target["expr"] for target in panel["targets"]), panel["title"]


def test_dashboard_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    """Each panel query, with Grafana's variables filled in, checked as a recording rule."""
    variables = {"$__rate_interval": "5m", "$source": ".*"}
    rules = []
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in variables.items():
                expr = expr.replace(variable, value)
            rules.append(
                {"record": f"dashboard:panel_{panel['id']}:{target['refId']}", "expr": expr}
            )
    (tmp_path / "dashboard.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]})
    )
    run_promtool(promtool, "check", "rules", "dashboard.yml", cwd=tmp_path)


def test_grafana_provisioning_parses() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    (datasource,) = yaml_file(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["type"] == "prometheus"
    (provider,) = yaml_file(provisioning / "dashboards" / "order-watcher.yml")["providers"]
    assert provider["options"]["path"] == "/etc/grafana/dashboards"


# ---- Kubernetes ---------------------------------------------------------------------------


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml_file(KUBERNETES / "kustomization.yaml")
    manifests = {path.name for path in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests
    kinds = {doc["kind"] for doc in kubernetes_documents()} - {"Kustomization"}
    assert kinds == {"ConfigMap", "Secret", "PersistentVolumeClaim", "Deployment", "Service"}


def test_deployment_runs_one_non_root_replica_with_probes() -> None:
    deployment = kubernetes_object("Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"]["type"] == "Recreate"
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    probes = [container[key] for key in container if key.endswith("Probe")]
    assert {probe["httpGet"]["path"] for probe in probes} == PROBE_PATHS
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    (port,) = container["ports"]
    assert (port["name"], port["containerPort"]) == ("metrics", 9108)


def test_service_exposes_metrics_for_prometheus() -> None:
    service = kubernetes_object("Service")
    (port,) = service["spec"]["ports"]
    assert (port["name"], port["port"]) == ("metrics", 9108)
    annotations = service["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "9108"
    assert annotations["prometheus.io/path"] == "/metrics"
    pod_labels = kubernetes_object("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_configmap_config_loads_with_the_secrets_from_the_environment(tmp_path: Path) -> None:
    (container,) = kubernetes_object("Deployment")["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item for item in container["env"]}
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "config"]
    assert env["WATCHER_CONFIG"]["value"] == f"{mount['mountPath']}/watcher.toml"
    secret = kubernetes_object("Secret")["stringData"]
    environ = {}
    for name, item in env.items():
        if "valueFrom" in item:
            key = item["valueFrom"]["secretKeyRef"]["key"]
            assert key in secret, name
            environ[name] = f"from-secret-{key}"
    assert set(environ) == {
        "WATCHER_AMQP__URL",
        "WATCHER_SOURCES__ADOBE_PROD__AUTH__CLIENT_SECRET",
    }

    config = tmp_path / "watcher.toml"
    config.write_text(kubernetes_object("ConfigMap")["data"]["watcher.toml"])
    loaded = settings.load(config, environ)

    assert loaded.http.listen == LISTEN
    assert (
        loaded.store.url.get_secret_value() == "sqlite:////var/lib/order-watcher/order-watcher.db"
    )
    assert loaded.amqp.url.get_secret_value() == "from-secret-amqp-url"
    secret_value = loaded.sources[0].auth.client_secret.get_secret_value()
    assert secret_value == "from-secret-adobe-prod-client-secret"


def test_secret_values_are_placeholders() -> None:
    for value in kubernetes_object("Secret")["stringData"].values():
        assert "REPLACE" in value


# ---- docker compose, Dockerfile, Procfile -------------------------------------------------


def test_compose_config_watches_every_simulated_vendor() -> None:
    loaded = settings.load(DEPLOY / "compose" / "watcher.toml", {})
    assert loaded.http.listen == LISTEN
    assert "@rabbitmq:5672/" in loaded.amqp.url.get_secret_value()
    ports = {source.provider: source.base_url for source in loaded.sources}
    assert ports == {
        provider: f"http://simulator:{port}" for provider, port in SIMULATOR_PORTS.items()
    }
    for source in loaded.sources:
        assert source.auth.client_secret.get_secret_value(), source.name
        assert (source.auth.token_url or "").startswith(source.base_url), source.name


def test_compose_names_the_five_services_and_mounts_existing_files() -> None:
    compose = yaml_file(ROOT / "docker-compose.yml")
    services = compose["services"]
    assert set(services) == COMPOSE_SERVICES
    assert services["watcher"]["command"][0] == "run"
    assert services["simulator"]["command"][:2] == ["simulate", "--host"]
    mounted = [
        volume.split(":")[0]
        for service in services.values()
        for volume in service.get("volumes", [])
        if volume.startswith("./")
    ]
    assert "./deploy/compose/watcher.toml" in mounted
    for path in mounted:
        assert (ROOT / path).exists(), path


def test_dockerfile_runs_the_watcher_as_non_root() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    instructions = {line.split()[0]: line for line in lines if line and line[0].isupper()}
    assert instructions["FROM"] == "FROM python:3.11-slim-bookworm"
    assert instructions["USER"] == "USER 10001:10001"
    assert instructions["EXPOSE"] == "EXPOSE 9108"
    assert instructions["ENTRYPOINT"] == 'ENTRYPOINT ["order-watcher"]'
    assert instructions["CMD"] == 'CMD ["run"]'
    assert "/healthz" in (ROOT / "Dockerfile").read_text()


def test_procfile_names_the_watcher_and_the_simulator() -> None:
    processes = dict(
        line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    assert processes == {
        "watcher": "order-watcher run --config watcher.toml",
        "simulator": "order-watcher simulate --port 8080 --tick-s 5",
    }


# ---- locked dependencies and pinned images -----------------------------------------------

REQUIREMENTS = ROOT / "requirements"


def locked(path: Path) -> dict[str, str]:
    """`name: version` of each package a lock file pins, after checking each has a hash."""
    text = path.read_text()
    entries = re.findall(
        r"^([A-Za-z0-9._-]+(?:\[[^\]]+\])?)==(\S+) \\\n((?:\s+--hash=\S+.*\n)+)", text, re.M
    )
    assert entries, path
    assert len(entries) == len(re.findall(r"^\S+==", text, re.M)), "a pin without a hash"
    return {re.sub(r"\[.*", "", name).lower(): version for name, version, _ in entries}


def declared(extra: str | None = None) -> dict[str, str]:
    """Each dependency of pyproject.toml (or of its `extra`) and its version range."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["optional-dependencies"][extra] if extra else project["dependencies"]
    parsed = (re.match(r"([A-Za-z0-9._-]+)(?:\[[^\]]+\])?(.*)", spec) for spec in specs)
    return {match[1].lower(): match[2] for match in parsed if match}


def test_every_dependency_has_an_upper_bound() -> None:
    for name, spec in (declared() | declared("dev")).items():
        assert "<" in spec, f"{name}{spec} has no upper bound"


def test_the_lock_files_pin_every_dependency_with_hashes_within_its_range() -> None:
    runtime, dev = locked(REQUIREMENTS / "runtime.txt"), locked(REQUIREMENTS / "dev.txt")
    assert set(declared()) <= set(runtime)
    assert set(declared()) | set(declared("dev")) <= set(dev)
    for name, version in runtime.items():
        assert dev[name] == version, f"{name}: runtime and dev locks disagree"
    for name, spec in (declared() | declared("dev")).items():
        upper = re.search(r"<([0-9.]+)", spec)
        assert upper is not None
        assert _numbers(dev[name]) < _numbers(upper[1]), f"{name} {dev[name]} outside {spec}"


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def test_make_and_the_image_install_the_locked_versions_first() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes --requirement requirements/dev.txt" in makefile
    assert "--no-deps --editable ." in makefile
    dockerfile = (ROOT / "Dockerfile").read_text()
    steps = [line for line in dockerfile.splitlines() if line.startswith(("COPY", "RUN pip"))]
    assert steps[:2] == [
        "COPY requirements/runtime.txt ./requirements/runtime.txt",
        "RUN pip install --require-hashes --requirement requirements/runtime.txt",
    ]
    assert "COPY watcher ./watcher" in steps[2:]
    assert "RUN pip install --no-deps . \\" in steps
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {"tests/", "docs/", "deploy/"} <= set(ignored)


def test_compose_images_are_current_and_pinned() -> None:
    services = yaml_file(ROOT / "docker-compose.yml")["services"]
    images = {name: service["image"] for name, service in services.items() if "image" in service}
    for name in ("rabbitmq", "prometheus", "grafana"):
        assert re.search(r":v?\d+\.\d+\.\d+", images[name]), f"{images[name]} is not pinned"
    assert re.fullmatch(r"rabbitmq:4\.\d+\.\d+-management", images["rabbitmq"])
    assert re.fullmatch(r"prom/prometheus:v3\.\d+\.\d+", images["prometheus"])
    assert re.fullmatch(r"grafana/grafana:1[12]\.\d+\.\d+", images["grafana"])


def test_each_alert_links_to_its_runbook_section() -> None:
    rules = [
        rule for group in yaml_file(PROMETHEUS / "alerts.yml")["groups"] for rule in group["rules"]
    ]
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    sections = dict(re.findall(r"^## (\w+)\n(.*?)(?=^## |\Z)", runbook, re.M | re.S))
    for rule in rules:
        name = rule["alert"]
        assert rule["annotations"]["runbook_url"] == f"docs/runbook.md#{name.lower()}"
        assert name in sections, f"docs/runbook.md has no section for {name}"
        for part in ("**Means.**", "**Confirm.**", "**Do.**"):
            assert part in sections[name], f"{name}: {part}"
    assert set(sections) == {rule["alert"] for rule in rules}
