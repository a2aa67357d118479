"""A full audit queue: with `fail_closed`, tenants that must be audited are refused with 503
(provider-shaped) and the refusals are counted in /metrics; with `drop`, requests go on and the
dropped rows are counted."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.proxy_process import free_port, start_proxy

BODY = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}'


def _refused_total(proxy) -> float:
    families = text_string_to_metric_families(httpx.get(f"{proxy.base_url}/metrics").text)
    for family in families:
        if family.name == "capsem_proxy_audit_refused_requests":
            return sum(sample.value for sample in family.samples if sample.name.endswith("_total"))
    raise AssertionError("no audit refusal counter in /metrics")


def test_a_full_queue_refuses_audited_tenants_with_503(fake_provider):
    # A PostgreSQL store nobody listens on: every row stays queued.
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    config = {"audit": {"url": down, "queue_max": 100, "overflow": "fail_closed", "required_tenants": ["*"]}}
    process = start_proxy(fake_provider.base_url, config)
    try:
        statuses = []
        with httpx.Client(base_url=process.base_url, headers={"authorization": "Bearer sk-audited"}) as client:
            for _ in range(160):  # one row each (the ALLOW is folded into it): past queue_max before the end
                answer = client.post("/v1/chat/completions", content=BODY)
                statuses.append(answer.status_code)
                if answer.status_code == 503:
                    refused = answer
                    break
        assert statuses[0] == 200
        assert statuses[-1] == 503, statuses
        body = refused.json()
        assert body["detail"].startswith("the audit trail cannot take this request now")
        assert body["error"]["message"] == body["detail"]
        assert refused.headers["x-capsem-request-id"]
        assert len(fake_provider.requests()) == len(statuses) - 1  # the refused one never left
        assert _refused_total(process) >= 1
        assert httpx.get(f"{process.base_url}/readyz").status_code == 503
    finally:
        process.stop(timeout=1)  # its rows can never reach the store: no need to wait for its flush


def test_drop_mode_keeps_answering(fake_provider):
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    config = {"audit": {"url": down, "queue_max": 100, "overflow": "drop", "required_tenants": ["*"]}}
    process = start_proxy(fake_provider.base_url, config)
    try:
        with httpx.Client(base_url=process.base_url, headers={"authorization": "Bearer sk-audited"}) as client:
            statuses = {client.post("/v1/chat/completions", content=BODY).status_code for _ in range(160)}
        assert statuses == {200}
        families = {f.name: f for f in text_string_to_metric_families(httpx.get(f"{process.base_url}/metrics").text)}
        dropped = sum(s.value for s in families["capsem_proxy_audit_dropped_rows"].samples if s.name.endswith("_total"))
        assert dropped > 0
    finally:
        process.stop(timeout=1)  # its rows can never reach the store: no need to wait for its flush
