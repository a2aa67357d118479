"""Model chains over HTTP with the openai SDK against two fake upstreams: a first upstream that answers
503, times out or resets the connection falls over to the second; a stream broken after its first
byte is never retried; the breaker opens after its failures and closes after a good probe; every
attempt is in the audit trail and the metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from capsem_proxy.audit import AuditQuery
from capsem_proxy.audit.tools import open_reader
from tests.fake_provider.process import FakeProviderProcess
from tests.proxy_process import ProxyProcess, start_proxy

pytestmark = pytest.mark.integration  # a real proxy and real fake upstreams over HTTP

KEY = "sk-test-failover-0123456789"
HELLO = [{"role": "user", "content": "Say hello"}]


@pytest.fixture(scope="module")
def chained(primary: FakeProviderProcess, backup: FakeProviderProcess, resetting_server: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    first, second = primary.base_url + "/v1", backup.base_url + "/v1"
    audit_path = tmp_path_factory.mktemp("audit") / "audit.db"
    config = {
        "upstreams": [
            {"name": "flaky", "type": "openai", "base_url": first},
            {"name": "slow", "type": "openai", "base_url": first, "read_timeout": 0.5},
            {"name": "reset", "type": "openai", "base_url": resetting_server + "/v1"},
            {"name": "breaking", "type": "openai", "base_url": first},
            {"name": "fragile", "type": "openai", "base_url": first},
            {"name": "limited", "type": "openai", "base_url": first},
            {"name": "throttled", "type": "openai", "base_url": first},
            {"name": "backup", "type": "openai", "base_url": second},
        ],
        "models": {
            "smart": ["flaky:gpt-4o", "backup:gpt-4o-mini"],
            "patient": ["slow:gpt-4o", "backup:gpt-4o-mini"],
            "sturdy": ["reset:gpt-4o", "backup:gpt-4o-mini"],
            "streamy": ["breaking:gpt-4o", "backup:gpt-4o-mini"],
            "lonely": ["fragile:gpt-4o"],
            "polite": ["limited:gpt-4o", "backup:gpt-4o-mini"],
            "impatient": ["throttled:gpt-4o", "backup:gpt-4o-mini"],
        },
        "retries": {"attempts": 2, "backoff_ms": 5, "max_retry_after_s": 5,
                    "retry_on": [429, 500, 502, 503, 504, "timeout", "connect"]},
        "circuit_breaker": {"failures": 3, "open_s": 1},
        "audit": {"url": f"sqlite:///{audit_path}"},
    }
    process = start_proxy(first, config)
    process.audit_url = f"sqlite:///{audit_path}"  # type: ignore[attr-defined]
    yield process
    process.stop()


@pytest.fixture
def client(chained: ProxyProcess) -> Iterator[OpenAI]:
    with OpenAI(base_url=chained.base_url + "/v1", api_key=KEY, max_retries=0, timeout=20) as sdk:
        yield sdk


def _attempt_rows(proxy: ProxyProcess, request_id: str, count: int) -> list[dict]:
    """The request's attempt rows in the order tried, once `count` are written (writes are batched)."""
    async def read() -> list[dict]:
        reader = open_reader(proxy.audit_url)  # type: ignore[attr-defined]
        await reader.open()
        try:
            return await reader.query_decisions(AuditQuery(request_id=request_id))
        finally:
            await reader.close()

    deadline = time.monotonic() + 10
    while True:
        rows = [row for row in asyncio.run(read()) if row["hook"] == "upstream"] if Path(
            proxy.audit_url.removeprefix("sqlite:///")  # type: ignore[attr-defined]
        ).exists() else []
        if len(rows) >= count or time.monotonic() > deadline:
            return sorted(rows, key=lambda row: row["details"])
        time.sleep(0.05)


def _metric(proxy: ProxyProcess, line_start: str) -> float | None:
    for line in httpx.get(proxy.base_url + "/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_first_upstream_answering_503_falls_over_to_the_second(chained, client, primary, backup):
    primary.script(overloaded=True)
    raw = client.chat.completions.with_raw_response.create(model="smart", messages=HELLO)
    assert raw.parse().choices[0].message.content == "Hello from the fake provider."
    assert raw.headers["x-capsem-upstream"] == "backup:gpt-4o-mini"
    assert len(primary.requests()) == 2  # tried twice (retries.attempts), then fell over
    assert [r["path"] for r in backup.requests()] == ["/v1/chat/completions"]
    assert primary.body_of(primary.requests()[0]).count(b'"model":"gpt-4o"') == 1
    assert b'"model":"gpt-4o-mini"' in backup.body_of(backup.requests()[0])
    rows = _attempt_rows(chained, raw.headers["x-capsem-request-id"], 3)
    assert [(row["subject"], row["reason"]) for row in rows] == [
        ("flaky:gpt-4o", "503"), ("flaky:gpt-4o", "503"), ("backup:gpt-4o-mini", "answered")
    ]
    assert all(row["verdict"] == "ALLOW" for row in rows)
    assert _metric(chained, 'capsem_proxy_upstream_failovers_total{upstream="flaky"}') == 1
    assert _metric(chained, 'capsem_proxy_upstream_attempts_total{outcome="503",upstream="flaky"}') == 2


def test_first_upstream_timing_out_falls_over_to_the_second(client, primary, backup):
    primary.script(slow_ms=5000)
    raw = client.chat.completions.with_raw_response.create(model="patient", messages=HELLO)
    assert raw.headers["x-capsem-upstream"] == "backup:gpt-4o-mini"
    assert raw.parse().choices[0].message.content == "Hello from the fake provider."
    assert len(backup.requests()) == 1


def test_first_upstream_resetting_the_connection_falls_over_to_the_second(client, backup):
    raw = client.chat.completions.with_raw_response.create(model="sturdy", messages=HELLO, stream=False)
    assert raw.headers["x-capsem-upstream"] == "backup:gpt-4o-mini"
    assert len(backup.requests()) == 1


def test_streamed_chain_falls_over_before_the_first_byte(client, primary, backup):
    primary.script(overloaded=True)
    stream = client.chat.completions.create(model="smart", messages=HELLO, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Hello from the fake provider."
    assert len(backup.requests()) == 1


def test_stream_broken_mid_way_is_not_retried(client, primary, backup):
    primary.script(break_after=2, events=10)
    stream = client.chat.completions.create(model="streamy", messages=HELLO, stream=True)
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass
    assert len(primary.requests()) == 1
    assert backup.requests() == []


def test_429_is_retried_on_the_same_upstream_after_its_retry_after(client, primary, backup):
    primary.script(rate_limit=True, retry_after=0, fail_times=1)
    raw = client.chat.completions.with_raw_response.create(model="polite", messages=HELLO)
    assert raw.headers["x-capsem-upstream"] == "limited:gpt-4o"
    assert len(primary.requests()) == 2
    assert backup.requests() == []


def test_a_retry_after_longer_than_allowed_falls_over_at_once(client, primary, backup):
    primary.script(rate_limit=True, retry_after=60)
    raw = client.chat.completions.with_raw_response.create(model="impatient", messages=HELLO)
    assert raw.headers["x-capsem-upstream"] == "backup:gpt-4o-mini"
    assert len(primary.requests()) == 1
    assert len(backup.requests()) == 1


def test_breaker_opens_after_its_failures_and_closes_after_a_good_probe(chained, client, primary):
    primary.script(overloaded=True)
    with pytest.raises(openai.InternalServerError):  # 2 tries, both 503: the last answer is the client's
        client.chat.completions.create(model="lonely", messages=HELLO)
    with pytest.raises(openai.InternalServerError):  # the third failure opens the breaker
        client.chat.completions.create(model="lonely", messages=HELLO)
    tries = len(primary.requests())
    assert tries == 3
    assert _metric(chained, 'capsem_proxy_upstream_breaker_state{upstream="fragile"}') == 1
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="lonely", messages=HELLO)
    assert caught.value.status_code == 503
    assert "circuit open" in caught.value.message
    assert caught.value.response.headers["retry-after"]
    assert len(primary.requests()) == tries  # nothing reached the upstream while open
    primary.script()  # healthy again
    deadline = time.monotonic() + 15
    while True:
        try:
            completion = client.chat.completions.create(model="lonely", messages=HELLO)
            break
        except openai.InternalServerError:
            assert time.monotonic() < deadline, "the breaker never let a probe through"
            time.sleep(0.2)
    assert completion.choices[0].message.content == "Hello from the fake provider."
    assert _metric(chained, 'capsem_proxy_upstream_breaker_state{upstream="fragile"}') == 0
