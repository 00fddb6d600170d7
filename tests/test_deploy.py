"""Deployment files: Prometheus config and alert rules, Grafana dashboard, Kubernetes
manifests, docker-compose.yml, Dockerfile and Procfile.

The Prometheus files are checked by the real `promtool` (Debian package `prometheus`):
`check config`, `check rules` and the rules' unit tests in deploy/prometheus/alerts_test.yml.
Those tests are skipped, saying why, only when promtool is not installed.

Every metric the alerts and the dashboard use must be one the watcher exports: METRICS is
that contract (names and types), and it is compared with what `watcher.metrics.Metrics`
registers. The watcher configurations shipped for compose and Kubernetes are loaded with
`watcher.settings.load`, the same way the service loads them, with the environment the
compose file or the manifests give.

The Kubernetes variant on PostgreSQL (deploy/kubernetes/postgres, a kustomize overlay of
deploy/kubernetes/base) is checked twice: rendered by the real kustomize (`kustomize build` or
`kubectl kustomize`; skipped, saying why, when neither is installed), and by applying its
patches here the way kustomize merges those lists, which needs nothing installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from watcher import settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
KUBERNETES_ROOT = DEPLOY / "kubernetes"
KUBERNETES = KUBERNETES_ROOT / "base"
POSTGRES_OVERLAY = KUBERNETES_ROOT / "postgres"
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
    "order_watcher_relaying": "gauge",
    "order_watcher_unroutable_events": "gauge",
    "order_watcher_stuck_orders": "gauge",
    "order_watcher_poll_lag_seconds": "histogram",
    "order_watcher_customers": "gauge",
    "order_watcher_customers_hot": "gauge",
    "order_watcher_discovery_runs_total": "counter",
    "order_watcher_replica_info": "gauge",
    "order_watcher_leases_held": "gauge",
}
ALERTS = {
    "WatcherDown",
    "WatcherAbsent",
    "SourceNotPolling",
    "SourceNotLeased",
    "OutboxBacklogGrowing",
    "OrdersStuck",
    "VendorErrorsHigh",
    "VendorThrottled",
    "PollsLate",
    "CircuitOpen",
    "BrokerDisconnected",
    "UnroutableEvents",
}
# What a plain `docker compose up` starts, and what the profile "fleet" adds.
COMPOSE_SERVICES = {"rabbitmq", "simulator", "watcher", "prometheus", "grafana"}
FLEET_REPLICAS = ("watcher-1", "watcher-2", "watcher-3")
FLEET_SERVICES = {"postgres", "prometheus-fleet", *FLEET_REPLICAS}
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


def test_fleet_prometheus_config_is_valid(promtool: str, tmp_path: Path) -> None:
    shutil.copy(PROMETHEUS / "prometheus-fleet.yml", tmp_path / "prometheus-fleet.yml")
    copy_rules(tmp_path)
    run_promtool(promtool, "check", "config", "prometheus-fleet.yml", cwd=tmp_path)


def test_fleet_prometheus_scrapes_every_replica_of_the_compose_fleet() -> None:
    config = yaml_file(PROMETHEUS / "prometheus-fleet.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = [f"{replica}:9108" for replica in FLEET_REPLICAS]
    assert jobs["order-watcher"]["static_configs"] == [{"targets": targets}]
    assert config["rule_files"] == ["alerts.yml"]
    service = yaml_file(ROOT / "docker-compose.yml")["services"]["prometheus-fleet"]
    assert "--config.file=/etc/prometheus/prometheus-fleet.yml" in service["command"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in service["volumes"]
    assert set(service["depends_on"]) == set(FLEET_REPLICAS)


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
    watcher_metrics = metrics.Metrics(registry)
    watcher_metrics.replica(
        "replica-1", store="postgresql", held=lambda: {}, sources=["adobe-prod", "@tasks"]
    )
    registered = {}
    for family in registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        registered[name] = family.type
    assert registered == METRICS


def leases_held(registry: Any) -> dict[str, float] | None:
    """The order_watcher_leases_held samples by source, or None when it is not exported."""
    for family in registry.collect():
        if family.name == "order_watcher_leases_held":
            return {sample.labels["source"]: sample.value for sample in family.samples}
    return None


def test_only_a_fleet_exports_leases_and_every_source_of_it() -> None:
    """SourceNotLeased relies on this: no leases_held series from a single process (so it
    cannot fire there), and a 0 from a replica holding none of a source (so a fleet holding
    none sums to 0 rather than to nothing)."""
    prometheus_client = pytest.importorskip("prometheus_client")
    metrics = pytest.importorskip("watcher.metrics")
    single = prometheus_client.CollectorRegistry()
    metrics.Metrics(single).replica("host-1-42-abcdef", store="sqlite")
    info = single.get_sample_value(
        "order_watcher_replica_info", {"replica": "host-1-42-abcdef", "store": "sqlite"}
    )
    assert info == 1
    assert leases_held(single) is None

    fleet = prometheus_client.CollectorRegistry()
    metrics.Metrics(fleet).replica(
        "replica-1",
        store="postgresql",
        held=lambda: {"adobe-prod": 2, "@tasks": 1},
        sources=["adobe-prod", "zuora-prod", "@tasks"],
    )
    assert leases_held(fleet) == {"adobe-prod": 2.0, "zuora-prod": 0.0, "@tasks": 1.0}


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
    # `kubectl apply -k deploy/kubernetes` applies the base (an overlay cannot live inside
    # the directory of its base, so the base has one of its own)
    assert yaml_file(KUBERNETES_ROOT / "kustomization.yaml")["resources"] == ["base"]
    assert {path.name for path in KUBERNETES_ROOT.glob("*.yaml")} == {"kustomization.yaml"}
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


# ---- Kubernetes on PostgreSQL: the overlay deploy/kubernetes/postgres ----------------------


@pytest.fixture
def kustomize() -> list[str]:
    for name, command in (("kustomize", "build"), ("kubectl", "kustomize")):
        path = shutil.which(name)
        if path is not None:
            return [path, command]
    pytest.skip("neither kustomize nor kubectl is installed; the patches are checked without")


def rendered(kustomize: list[str], directory: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [*kustomize, str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"{' '.join(kustomize)} {directory}:\n{done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def merged_list(base: list[dict[str, Any]], patch: list[dict[str, Any]], key: str) -> list[Any]:
    """A strategic merge of a list whose items merge on `key`, as kustomize merges a
    container's env (name) and volumeMounts (mountPath), and a pod's volumes (name)."""
    items = {item[key]: item for item in base}
    for item in patch:
        assert key in item, f"{item} lacks the key its list merges on, {key}"
        if item.get("$patch") == "delete":
            assert items.pop(item[key], None) is not None, f"{item} deletes nothing"
        else:
            items[item[key]] = {**items.get(item[key], {}), **item}
    return list(items.values())


def patched_deployment(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """The base Deployment with the overlay's patch applied: the fields the patch sets."""
    spec, changes = dict(base["spec"]), patch["spec"]
    assert set(changes) <= {"replicas", "strategy", "template"}, set(changes)
    spec.update({key: changes[key] for key in ("replicas", "strategy") if key in changes})
    pod, pod_changes = dict(spec["template"]["spec"]), changes["template"]["spec"]
    assert set(pod_changes) <= {"containers", "volumes"}, set(pod_changes)
    (container,) = pod["containers"]
    (container_changes,) = pod_changes["containers"]
    assert container_changes["name"] == container["name"]
    assert set(container_changes) <= {"name", "env", "volumeMounts"}, set(container_changes)
    container = dict(container)
    for field, key in (("env", "name"), ("volumeMounts", "mountPath")):
        container[field] = merged_list(container[field], container_changes.get(field, []), key)
    pod["containers"] = [container]
    pod["volumes"] = merged_list(pod["volumes"], pod_changes.get("volumes", []), "name")
    spec["template"] = {**spec["template"], "spec": pod}
    return {**base, "spec": spec}


def patched_base() -> list[dict[str, Any]]:
    """The base's objects with the overlay's patches applied, without kustomize."""
    kustomization = yaml_file(POSTGRES_OVERLAY / "kustomization.yaml")
    assert kustomization["resources"] == ["../base"]
    objects = {
        (doc["kind"], doc["metadata"]["name"]): doc
        for doc in kubernetes_documents()
        if doc["kind"] != "Kustomization"
    }
    for entry in kustomization["patches"]:
        patch = yaml_file(POSTGRES_OVERLAY / entry["path"])
        target = (patch["kind"], patch["metadata"]["name"])
        assert target in objects, f"{entry['path']} patches nothing of the base"
        if patch.get("$patch") == "delete":
            del objects[target]
        elif patch["kind"] == "Secret":
            data = {**objects[target]["stringData"], **patch["stringData"]}
            objects[target] = {**objects[target], "stringData": data}
        else:
            assert patch["kind"] == "Deployment", entry["path"]
            objects[target] = patched_deployment(objects[target], patch)
    return list(objects.values())


def check_postgres_variant(documents: list[dict[str, Any]], tmp_path: Path) -> None:
    """Three replicas on a PostgreSQL store named by the Deployment, its password from the
    Secret, no volume for a SQLite file; the config loads with the manifests' environment."""
    by_kind = {doc["kind"]: doc for doc in documents}
    assert len(by_kind) == len(documents), "one object of each kind"
    assert set(by_kind) == {"ConfigMap", "Secret", "Deployment", "Service"}
    spec = by_kind["Deployment"]["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert {volume["name"] for volume in pod["volumes"]} == {"config", "tmp"}
    (container,) = pod["containers"]
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert mounts == {"/etc/order-watcher": "config", "/tmp": "tmp"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"

    secret = by_kind["Secret"]["stringData"]
    for value in secret.values():
        assert "REPLACE" in value, "a Secret value that is not a placeholder"
    environ = {}
    for item in container["env"]:
        if "valueFrom" in item:
            key = item["valueFrom"]["secretKeyRef"]["key"]
            assert key in secret, item["name"]
            environ[item["name"]] = f"from-secret-{key}"
        else:
            value = item["value"]
            assert urlsplit(value).password is None, f"{item['name']} holds a password"
            environ[item["name"]] = value
    assert {name for name in environ if name.startswith("WATCHER_STORE__")} == {
        "WATCHER_STORE__URL",
        "WATCHER_STORE__PASSWORD",
    }

    config = tmp_path / "watcher.toml"
    config.write_text(by_kind["ConfigMap"]["data"]["watcher.toml"])
    assert environ["WATCHER_CONFIG"] == "/etc/order-watcher/watcher.toml"
    loaded = settings.load(config, environ)

    store = urlsplit(loaded.store.url.get_secret_value())
    assert store.scheme == "postgresql"
    assert (store.hostname, store.port, store.path) == ("postgres", 5432, "/order_watcher")
    assert (store.username, store.password) == ("order_watcher", "from-secret-store-password")
    assert loaded.amqp.url.get_secret_value() == "from-secret-amqp-url"
    assert loaded.http.listen == LISTEN


def test_postgres_overlay_patches_the_base_into_three_replicas(tmp_path: Path) -> None:
    overlay_files = {path.name for path in POSTGRES_OVERLAY.iterdir()}
    listed = {
        entry["path"] for entry in yaml_file(POSTGRES_OVERLAY / "kustomization.yaml")["patches"]
    }
    assert overlay_files == listed | {"kustomization.yaml"}
    check_postgres_variant(patched_base(), tmp_path)


def test_postgres_overlay_as_kustomize_renders_it(kustomize: list[str], tmp_path: Path) -> None:
    check_postgres_variant(rendered(kustomize, POSTGRES_OVERLAY), tmp_path)
    # and the base is what `kubectl apply -k deploy/kubernetes` applies, one replica
    (deployment,) = [
        doc for doc in rendered(kustomize, KUBERNETES_ROOT) if doc["kind"] == "Deployment"
    ]
    assert deployment["spec"]["replicas"] == 1


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


def test_compose_names_the_services_and_mounts_existing_files() -> None:
    compose = yaml_file(ROOT / "docker-compose.yml")
    services = compose["services"]
    assert set(services) == COMPOSE_SERVICES | FLEET_SERVICES
    # a plain `docker compose up` starts the five, and nothing of the fleet
    assert {name for name, service in services.items() if "profiles" not in service} == (
        COMPOSE_SERVICES
    )
    for name in FLEET_SERVICES:
        assert services[name]["profiles"] == ["fleet"], name
    for name in COMPOSE_SERVICES:
        assert not set(services[name].get("depends_on", ())) & FLEET_SERVICES, name
    assert services["watcher"]["command"][0] == "run"
    for name in FLEET_REPLICAS:
        assert services[name]["command"][0] == "run", name
    assert services["simulator"]["command"][:2] == ["simulate", "--host"]
    mounted = [
        volume.split(":")[0]
        for service in services.values()
        for volume in service.get("volumes", [])
        if volume.startswith("./")
    ]
    assert "./deploy/compose/watcher.toml" in mounted
    assert "./deploy/compose/watcher-fleet.toml" in mounted
    for path in mounted:
        assert (ROOT / path).exists(), path


def mounted_config(service: Mapping[str, Any]) -> str:
    """The host file mounted where the service's `run --config PATH` reads its config."""
    command: list[str] = service["command"]
    volumes: list[str] = service["volumes"]
    path = command[command.index("--config") + 1]
    (host,) = [v.split(":")[0] for v in volumes if v.split(":")[1] == path]
    return host


def test_compose_fleet_shares_the_postgres_service_as_its_store() -> None:
    compose = yaml_file(ROOT / "docker-compose.yml")
    services = compose["services"]
    postgres = services["postgres"]
    database = postgres["environment"]
    assert "pg_isready" in postgres["healthcheck"]["test"]
    (data,) = postgres["volumes"]
    assert data.split(":")[0] in compose["volumes"], "PostgreSQL's data on a named volume"

    replicas = [services[name] for name in FLEET_REPLICAS]
    for replica in replicas:
        assert replica["depends_on"]["postgres"] == {"condition": "service_healthy"}
        assert mounted_config(replica) == "./deploy/compose/watcher-fleet.toml"
        assert replica["environment"] == replicas[0]["environment"]
    # each replica on a host port of its own
    published = [port.split(":")[0] for s in services.values() for port in s.get("ports", [])]
    assert len(published) == len(set(published)), published
    assert mounted_config(services["watcher"]) == "./deploy/compose/watcher.toml"

    fleet = settings.load(ROOT / mounted_config(replicas[0]), replicas[0]["environment"])
    store = urlsplit(fleet.store.url.get_secret_value())
    assert (store.scheme, store.hostname, store.port) == ("postgresql", "postgres", 5432)
    assert store.username == database["POSTGRES_USER"]
    assert store.password == database["POSTGRES_PASSWORD"]
    assert store.path == f"/{database['POSTGRES_DB']}"

    single = settings.load(DEPLOY / "compose" / "watcher.toml", {})
    assert single.store.url.get_secret_value().startswith("sqlite:")
    assert [source.model_dump() for source in fleet.sources] == [
        source.model_dump() for source in single.sources
    ]
    # the two sets of events stay apart
    assert fleet.amqp.exchange != single.amqp.exchange
    assert fleet.amqp.unroutable_queue != single.amqp.unroutable_queue
    assert {q.name for q in fleet.amqp.queues}.isdisjoint(q.name for q in single.amqp.queues)


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
    assert images["prometheus-fleet"] == images["prometheus"]
    # PostgreSQL's releases are major.minor: pinned to one, and to its Debian release
    assert re.fullmatch(r"postgres:1[89]\.\d+-(trixie|bookworm)", images["postgres"])


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
