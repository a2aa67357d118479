"""`capsem-proxy run` explains itself once it listens: one banner (also with several workers), after
uvicorn's own start line, naming the upstreams, the policies, the data and the admin API, and never a
secret; with JSON logs the same facts arrive as one JSON log line."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.audit.stores import drop_schema, new_schema_url
from tests.proxy_process import start_proxy

ADMIN_TOKEN = "admin-token-banner-never-printed-0123"
TENANT_SECRET = "tenant-secret-banner-never-printed"
PG_PASSWORD = "pg-password-banner-never-printed"


@pytest.fixture
def postgres_with_password():
    url = new_schema_url()
    yield url.replace("postgresql://postgres@", f"postgresql://postgres:{PG_PASSWORD}@")  # trust auth ignores it
    drop_schema(url)


def test_two_workers_print_one_banner_with_no_secret(fake_provider, postgres_with_password):
    config = {
        "server": {"tenant_secret": TENANT_SECRET},
        "admin": {"token": ADMIN_TOKEN},
        "audit": {"url": postgres_with_password},
        "policies": [{"class": "capsem.policies.debug_policy.DebugPolicy"}, {"class": "secrets"}],
    }
    proxy = start_proxy(fake_provider.base_url, config, workers=2, log_level="info")
    try:
        assert httpx.get(f"{proxy.base_url}/health").status_code == 200
        log = _wait_for(proxy, "read next")
    finally:
        proxy.stop()
    assert log.count("is listening on") == 1
    assert log.index("Uvicorn running on") < log.index("is listening on")
    for secret in (ADMIN_TOKEN, TENANT_SECRET, PG_PASSWORD):
        assert secret not in log
    words = " ".join(log.split())
    for expected in (
        f"is listening on http://127.0.0.1:{proxy.port}, 2 workers",
        f"openai {fake_provider.base_url}/v1",
        f"anthropic {fake_provider.base_url}",
        "debug: blocks prompts and tool names containing capsem_block",
        "secrets: API keys, tokens, private keys, connection strings",
        "audit trail postgresql://postgres:[REDACTED]@127.0.0.1:5432/test?schema=",
        "tenant secret server.tenant_secret (set in the configuration)",
        f"dashboard http://127.0.0.1:{proxy.port}/dashboard (log in with admin.token)",
    ):
        assert expected in words, expected


def test_json_logs_carry_the_banner_as_one_json_line(fake_provider):
    proxy = start_proxy(fake_provider.base_url, {"logging": {"json": True}}, log_level="info")
    try:
        _wait_for(proxy, '"startup"')
    finally:
        proxy.stop()
    entries = [json.loads(line) for line in proxy.log_text().splitlines() if line.strip()]
    started = [entry for entry in entries if "startup" in entry]
    assert len(started) == 1
    facts = started[0]["startup"]
    assert facts["listen"] == f"http://127.0.0.1:{proxy.port}"
    assert facts["upstreams"]["gemini"] == fake_provider.base_url
    assert facts["admin_api"] is None and facts["dashboard"] is None
    assert facts["policies"][0].startswith("debug: blocks prompts")


def _wait_for(proxy, text: str, timeout_s: float = 30) -> str:
    """The proxy's output once it contains `text` (the banner is printed by a thread of its own)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        log = proxy.log_text()
        if text in log:
            return log
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never printed:\n{proxy.log_text()}")
