"""deploy/compose.yaml and the files it mounts: parsed, every referenced file present, the ports, service
names and environment of the replicas, HAProxy, Prometheus and Grafana consistent with each other and
with the proxy's own config and metrics."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from capsem_proxy.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
REPLICAS = sorted(name for name in SERVICES if name.startswith("proxy-"))
METRIC = re.compile(r"\bcapsem_proxy_[a-z_]+")


def _metric_families() -> set[str]:
    source = (ROOT / "capsem_proxy" / "metrics.py").read_text()
    return set(re.findall(r'"(capsem_proxy_[a-z_]+)"', source))


def _family(name: str) -> str:
    return re.sub(r"_(total|bucket|count|sum)$", "", name)


def _env_values() -> dict[str, str]:
    """What deploy/.env.example sets: compose interpolates ${VAR} from it."""
    pairs = (line.split("=", 1) for line in (DEPLOY / ".env.example").read_text().splitlines()
             if line and not line.startswith("#"))
    return dict(pairs)


def _interpolate(text: str) -> str:
    values = _env_values()

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in values, f"${{{name}}} is used in compose.yaml but deploy/.env.example does not set it"
        return values[name]

    return re.sub(r"\$\{(\w+)(?::?[-?][^}]*)?\}", substitute, text)


def test_two_replicas_and_every_supporting_service() -> None:
    assert len(REPLICAS) == 2
    assert {"haproxy", "postgres", "redis", "prometheus", "grafana"} <= set(SERVICES)


def test_every_mounted_file_exists() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith(("./", "../")):
                assert (DEPLOY / source).exists(), f"{name} mounts {source}, which does not exist"
        build = service.get("build")
        if build:
            context = DEPLOY / build["context"]
            assert (context / build.get("dockerfile", "Dockerfile")).is_file()


def test_replicas_share_stores_and_secrets_and_read_the_mounted_config() -> None:
    envs = [SERVICES[name]["environment"] for name in REPLICAS]
    assert envs[0] == envs[1], "replicas must run the same config"
    env = envs[0]
    audit_url = env["CAPSEM_PROXY_AUDIT__URL"]
    assert audit_url.startswith("postgresql://") and "@postgres:5432/" in audit_url
    assert env["CAPSEM_PROXY_CONFIRM__STORE_URL"].startswith("redis://redis:6379/")
    assert env["CAPSEM_PROXY_LIMITS__STORE_URL"].startswith("redis://redis:6379/")  # one limit across replicas
    assert "CAPSEM_PROXY_SERVER__TENANT_SECRET" in env  # tenant ids and the audit chain key must match
    mounted = {volume.split(":")[1]: volume.split(":")[0] for volume in SERVICES[REPLICAS[0]]["volumes"]}
    assert env["CAPSEM_PROXY_CONFIG"] in mounted
    postgres = SERVICES["postgres"]["environment"]
    url = _interpolate(env["CAPSEM_PROXY_AUDIT__URL"])
    assert url.startswith(f"postgresql://{postgres['POSTGRES_USER']}:") and url.split("?")[0].endswith(
        f"/{postgres['POSTGRES_DB']}"
    )


def test_the_mounted_config_is_valid_with_the_replicas_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [key for key in os.environ if key.startswith("CAPSEM_PROXY_")]:
        monkeypatch.delenv(key)
    for key, value in SERVICES[REPLICAS[0]]["environment"].items():
        if key != "CAPSEM_PROXY_CONFIG":
            monkeypatch.setenv(key, _interpolate(str(value)))
    settings = load_settings(str(DEPLOY / "proxy.yaml"))
    assert settings.server.host == "0.0.0.0"
    assert settings.audit.url.startswith("postgresql://")  # the environment wins over the file
    assert settings.confirm.store_url.startswith("redis://")
    assert settings.limits is not None and settings.limits.store_url.startswith("redis://")
    port = int(SERVICES[REPLICAS[0]]["environment"]["CAPSEM_PROXY_SERVER__PORT"])
    assert settings.server.port == port
    grace = SERVICES[REPLICAS[0]]["stop_grace_period"]
    assert settings.server.drain_delay_seconds + settings.server.drain_seconds < int(grace.rstrip("s"))


def test_haproxy_balances_over_every_replica_on_its_port() -> None:
    env = SERVICES["haproxy"]["environment"]
    port = SERVICES[REPLICAS[0]]["environment"]["CAPSEM_PROXY_SERVER__PORT"]
    config = (DEPLOY / "haproxy.cfg").read_text()
    servers = re.findall(r'^\s*server (\S+) "\$\{(\w+)\}"', config, re.MULTILINE)
    assert sorted(name for name, _ in servers) == REPLICAS
    for name, variable in servers:
        assert env[variable] == f"{name}:{port}"
    assert "http-check send meth GET uri /readyz" in config
    published = {mapping.split(":")[1] for mapping in SERVICES["haproxy"]["ports"]}
    assert {env["CAPSEM_LB_PORT"], env["CAPSEM_LB_STATS_PORT"]} <= published


def test_the_real_haproxy_accepts_the_config() -> None:
    haproxy = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if haproxy is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("haproxy is missing; .ci/run installs it")
        pytest.skip("haproxy is not installed (Debian package haproxy)")
    env = {**os.environ, **SERVICES["haproxy"]["environment"]}
    result = subprocess.run([haproxy, "-c", "-f", str(DEPLOY / "haproxy.cfg")], env=env, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    # Outside the compose network the replica names do not resolve: HAProxy starts anyway (init-addr none).
    warnings = [line for line in (result.stdout + result.stderr).splitlines()
                if "WARNING" in line and "could not resolve address" not in line]
    assert not warnings, warnings


def test_prometheus_scrapes_every_replica_directly_and_loads_the_alerts() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    port = SERVICES[REPLICAS[0]]["environment"]["CAPSEM_PROXY_SERVER__PORT"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = [target for group in jobs["capsem-proxy"]["static_configs"] for target in group["targets"]]
    assert sorted(targets) == [f"{name}:{port}" for name in REPLICAS]
    assert jobs["capsem-proxy"].get("metrics_path", "/metrics") == "/metrics"
    haproxy_targets = jobs["haproxy"]["static_configs"][0]["targets"]
    assert haproxy_targets == [f"haproxy:{SERVICES['haproxy']['environment']['CAPSEM_LB_STATS_PORT']}"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in SERVICES["prometheus"]["volumes"]}
    for rule_file in config["rule_files"]:
        assert rule_file in mounts, f"{rule_file} is not mounted into the Prometheus container"


def test_alert_rules_are_well_formed_and_name_real_metrics() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text())
    families = _metric_families()
    names = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert rule["alert"] not in names
            names.add(rule["alert"])
            assert rule["labels"]["severity"] in {"warning", "critical"}
            assert rule["expr"].count("(") == rule["expr"].count(")")
            for metric in METRIC.findall(rule["expr"]):
                assert _family(metric) in families, f"{rule['alert']} names {metric}, which the proxy does not export"
    assert len(names) >= 5


def test_grafana_provisions_the_dashboard_on_the_prometheus_datasource() -> None:
    datasources = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yaml").read_text())
    source = datasources["datasources"][0]
    prometheus_port = SERVICES["prometheus"]["ports"][0].split(":")[1]
    assert source["url"] == f"http://prometheus:{prometheus_port}"
    providers = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/capsem-proxy.yaml").read_text())
    dashboards_dir = providers["providers"][0]["options"]["path"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in SERVICES["grafana"]["volumes"]}
    # The dashboard file (deploy/grafana/capsem-proxy.json) is mounted into the provider's folder.
    files = [DEPLOY / source for target, source in mounts.items()
             if target.startswith(dashboards_dir + "/") and target.endswith(".json")]
    assert files == [DEPLOY / "grafana" / "capsem-proxy.json"]
    families = _metric_families()
    for path in files:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] and dashboard["panels"]
        # Panels read the dashboard's datasource variable, which Grafana sets to the default
        # datasource: the provisioned Prometheus.
        variables = {item["name"]: item for item in dashboard["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
        assert source.get("isDefault") is True
        for panel in dashboard["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] in (source["uid"], "${datasource}"), panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] in (source["uid"], "${datasource}")
                for metric in METRIC.findall(target["expr"]):
                    assert _family(metric) in families, f"panel {panel['title']!r} names {metric}"


def test_secrets_come_from_the_environment_never_from_the_repository() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    for variable in _env_values():
        assert f"${{{variable}:?" in text, f"{variable} must be required (${{{variable}:?...}}) in compose.yaml"
    assert "deploy/.env" in (ROOT / ".gitignore").read_text().splitlines()
