"""The ready-made Grafana dashboard (deploy/grafana/capsem-proxy.json) and Prometheus alert rules
(deploy/prometheus/alerts.yaml) fit the proxy they watch: every metric they query is served by a real
proxy's /metrics after ordinary traffic, the dashboard is well-formed, and the rules parse and pass
their unit tests under promtool (the Debian `prometheus` package; without it, their YAML structure
is checked and promtool's part is skipped, or fails under CI=true). The dashboard's queries are
checked by promtool too, as recording rules with Grafana's variables filled in."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.browser import REPO_ROOT
from tests.proxy_process import start_proxy

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "capsem-proxy.json"
ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yaml"
ALERT_TESTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.test.yaml"
# Series the proxy does not serve: Prometheus's own, and the load balancer's of the compose stack
# (HAProxy's exporter; the panel and alert reading it stay empty where it is not scraped).
NOT_THE_PROXYS = {"up", "haproxy_backend_active_servers"}
_TOKEN = re.compile(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = {"and", "or", "unless", "offset", "bool", "by", "without", "on", "ignoring", "group_left", "group_right"}
_GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "1h", "$job": ".*", "$instance": ".*"}


def _dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def _alert_rules() -> list[dict]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    exprs = [target["expr"] for panel in _dashboard()["panels"] for target in panel.get("targets", [])]
    for variable in _dashboard()["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            exprs.append(query["query"])
    return exprs


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (or Grafana's label_values(metric, label)) reads."""
    text = re.sub(r"label_values\(([^,]+),[^)]*\)", r"\1", expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", " ", text)  # matchers, ranges, strings
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", text)  # grouping labels
    names = set()
    for match in _TOKEN.finditer(text):
        if match.group(0) in _KEYWORDS or text[match.end():].lstrip().startswith("("):
            continue  # a function or an operator
        names.add(match.group(0))
    return names


def test_metric_names_are_read_from_promql():
    assert metric_names(
        'histogram_quantile(0.95, sum by (le, policy) (rate(capsem_proxy_policy_duration_seconds_bucket{a="b"}[5m])))'
        " > 0.25 and sum(rate(up[1h] offset 1h)) > 1e-9"
    ) == {"capsem_proxy_policy_duration_seconds_bucket", "up"}
    assert metric_names('label_values(capsem_proxy_requests_total{job=~"$job"}, instance)') == {
        "capsem_proxy_requests_total"}


@pytest.fixture(scope="module")
def scraped_names(fake_provider) -> set[str]:
    """Every sample name a proxy serves after allowed, blocked and streamed requests."""
    proxy = start_proxy(fake_provider.base_url, {"admin": {"token": "observability-admin-token-0123"}})
    try:
        client = openai.OpenAI(api_key="sk-observability", base_url=f"{proxy.base_url}/v1", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
        for _ in client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "stream"}], stream=True,
        ):
            pass
        with pytest.raises(openai.PermissionDeniedError):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "capsem_block"}])
        text = httpx.get(f"{proxy.base_url}/metrics").text
    finally:
        proxy.stop()
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def test_every_metric_the_dashboard_and_alerts_query_is_served(scraped_names):
    queried = set()
    for expr in _dashboard_exprs() + [rule["expr"] for rule in _alert_rules()]:
        queried |= metric_names(expr)
    assert {name for name in queried if name.startswith("capsem_proxy_")}, queried
    missing = sorted(queried - scraped_names - NOT_THE_PROXYS)
    assert missing == [], f"queried but not served by /metrics: {missing}"


def test_the_grafana_dashboard_is_well_formed():
    dashboard = _dashboard()
    assert dashboard["uid"] == "capsem-proxy" and dashboard["title"]
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    variables = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert {"datasource", "job", "instance"} <= variables
    for panel in panels:
        position = panel["gridPos"]
        assert position["x"] >= 0 and position["x"] + position["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
            if "capsem_proxy_" in target["expr"]:  # every panel of the proxy's metrics follows the variables
                assert 'job=~"$job"' in target["expr"], target["expr"]


def test_alert_rules_have_the_fields_alertmanager_routes_on():
    rules = _alert_rules()
    assert len({rule["alert"] for rule in rules}) == len(rules)
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert re.fullmatch(r"CapsemProxy[A-Za-z]+", rule["alert"])
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert "for" not in rule or re.fullmatch(r"\d+[smh]", rule["for"])


def _promtool() -> str:
    executable = os.environ.get("CAPSEM_PROXY_PROMTOOL") or shutil.which("promtool")
    if executable:
        return executable
    message = "promtool is not installed (apt-get install -y prometheus, or set CAPSEM_PROXY_PROMTOOL)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; CI must provide it")
    pytest.skip(message)


def _run(command: list[str], cwd: Path) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_promtool_accepts_the_alert_rules_and_their_tests():
    promtool = _promtool()
    assert "SUCCESS" in _run([promtool, "check", "rules", ALERTS.name], ALERTS.parent)
    assert "SUCCESS" in _run([promtool, "test", "rules", ALERT_TESTS.name], ALERTS.parent)


def test_promtool_parses_every_dashboard_query(tmp_path):
    promtool = _promtool()
    rules = []
    for index, expr in enumerate(_dashboard_exprs()):
        if expr.startswith("label_values("):
            continue
        for variable, value in _GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"capsem_proxy:dashboard_query_{index}", "expr": expr})
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")
    assert f"SUCCESS: {len(rules)} rules found" in _run([promtool, "check", "rules", path.name], tmp_path)
