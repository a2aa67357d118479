"""deploy/k8s: rendered with `kubectl kustomize` (offline), every object valid against the Kubernetes schemas
(kubernetes-validate), and the pieces agree: probes, drain and grace period, selectors, ports, config."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from capsem_proxy.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30.0"


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("kubectl is missing; .ci/run installs it (Debian kubernetes-client)")
        pytest.skip("kubectl is not installed (Debian package kubernetes-client)")
    result = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    objects = {f"{doc['kind']}/{doc['metadata']['name']}": doc for doc in yaml.safe_load_all(result.stdout) if doc}
    return objects


def _one(rendered: dict[str, dict[str, Any]], kind: str) -> dict[str, Any]:
    matches = [doc for key, doc in rendered.items() if key.startswith(f"{kind}/")]
    assert len(matches) == 1, f"expected one {kind}, found {len(matches)}"
    return matches[0]


def test_every_object_is_valid_against_the_kubernetes_schemas(rendered: dict[str, dict[str, Any]]) -> None:
    kinds = {doc["kind"] for doc in rendered.values()}
    assert kinds == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap", "Secret",
                     "NetworkPolicy"}
    for key, doc in rendered.items():
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{key}: {exc.message} at {'/'.join(map(str, exc.path))}")


def test_probes_drain_and_grace_period_agree(rendered: dict[str, dict[str, Any]]) -> None:
    deployment = _one(rendered, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    settings = load_settings(str(K8S / "proxy.yaml"))
    drain = settings.server.drain_delay_seconds + settings.server.drain_seconds
    grace = pod["terminationGracePeriodSeconds"]
    assert drain < grace <= drain + 10, (drain, grace)
    readiness = container["readinessProbe"]
    # The pod leaves the endpoints before its listener closes.
    assert readiness["periodSeconds"] * readiness["failureThreshold"] <= settings.server.drain_delay_seconds
    assert container["ports"][0]["containerPort"] == settings.server.port
    env = {item["name"]: item for item in container["env"]}
    assert env["CAPSEM_PROXY_CONFIG"]["value"] == "/etc/capsem-proxy/proxy.yaml"
    for name in ("CAPSEM_PROXY_SERVER__TENANT_SECRET", "CAPSEM_PROXY_ADMIN__TOKEN", "CAPSEM_PROXY_MASTER_KEY",
                 "CAPSEM_PROXY_AUDIT__URL", "CAPSEM_PROXY_CONFIRM__STORE_URL", "CAPSEM_PROXY_LIMITS__STORE_URL"):
        assert "secretKeyRef" in env[name]["valueFrom"], f"{name} must come from the Secret"
    secret = _one(rendered, "Secret")
    for item in env.values():
        reference = item.get("valueFrom", {}).get("secretKeyRef")
        if reference:
            assert reference["name"] == secret["metadata"]["name"] and reference["key"] in secret["stringData"]


def test_every_pod_shares_the_stores_the_compose_stack_uses(
    rendered: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Approvals and limits in Redis (so a limit holds across pods), the same databases as deploy/compose.yaml."""
    container = _one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    secret = _one(rendered, "Secret")["stringData"]
    env = {item["name"]: secret[item["valueFrom"]["secretKeyRef"]["key"]] for item in container["env"]
           if "secretKeyRef" in item.get("valueFrom", {})}
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())["services"]["proxy-1"]["environment"]
    for name in ("CAPSEM_PROXY_CONFIRM__STORE_URL", "CAPSEM_PROXY_LIMITS__STORE_URL"):
        assert env[name].startswith("redis://") and env[name] == compose[name], name
    for key in [key for key in os.environ if key.startswith("CAPSEM_PROXY_")]:
        monkeypatch.delenv(key)
    for name in ("CAPSEM_PROXY_CONFIRM__STORE_URL", "CAPSEM_PROXY_LIMITS__STORE_URL"):
        monkeypatch.setenv(name, env[name])
    settings = load_settings(str(K8S / "proxy.yaml"))
    assert settings.confirm.store_url == env["CAPSEM_PROXY_CONFIRM__STORE_URL"]
    assert settings.limits is not None and settings.limits.store_url == env["CAPSEM_PROXY_LIMITS__STORE_URL"]


def test_the_config_map_is_the_shared_proxy_config_and_is_mounted(rendered: dict[str, dict[str, Any]]) -> None:
    assert (K8S / "proxy.yaml").read_text() == (ROOT / "deploy" / "proxy.yaml").read_text()
    config_map = _one(rendered, "ConfigMap")
    assert set(config_map["data"]) == {"proxy.yaml"}
    pod = _one(rendered, "Deployment")["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in pod["containers"][0]["volumeMounts"]}
    assert volumes[mounts["/etc/capsem-proxy"]]["configMap"]["name"] == config_map["metadata"]["name"]
    settings = load_settings(str(K8S / "proxy.yaml"))
    assert str(settings.server.data_dir) in mounts  # writable even with a read-only root filesystem


def test_the_pod_runs_unprivileged_with_resources(rendered: dict[str, dict[str, Any]]) -> None:
    pod = _one(rendered, "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])


def test_selectors_and_ports_connect(rendered: dict[str, dict[str, Any]]) -> None:
    deployment = _one(rendered, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selected = deployment["spec"]["selector"]["matchLabels"]
    assert selected.items() <= labels.items()
    service = _one(rendered, "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    port_names = {port["name"] for port in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert all(port["targetPort"] in port_names for port in service["spec"]["ports"])
    assert _one(rendered, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert _one(rendered, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    hpa = _one(rendered, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2  # a PDB of minAvailable 1 then still allows a drain
    egress = _one(rendered, "NetworkPolicy")["spec"]["egress"]
    egress_ports = {port["port"] for rule in egress for port in rule["ports"]}
    assert {53, 443, 5432, 6379} <= egress_ports
