"""The audit trail through the real proxy, on SQLite and on PostgreSQL: a request row and its decision
rows for every provider, streamed or not; blocks and redactions as they happened; prompts and answers
stored (after redaction) when asked; never a provider key; a chain that verifies."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import openai
import pytest

from capsem_proxy.audit import AuditQuery
from capsem_proxy.audit.tools import open_reader
from tests.audit.stores import drop_schema, new_schema_url
from tests.proxy_process import ProxyProcess, start_proxy

ROOT = Path(__file__).resolve().parents[2]
EMAIL = "alice.smith@example.com"
KEYS = {
    "openai": "sk-AUDITTRAIL-openai-5d1c9e",
    "anthropic": "sk-ant-AUDITTRAIL-anthropic-77aa01",
    "gemini": "AIzaAUDITTRAILgemini0123456789",
}
POLICIES = [
    {"class": "capsem.policies.debug_policy.DebugPolicy", "hooks": ["on_model_call", "on_tool_call"]},
    {"class": "regex_redact", "options": {"patterns": {"EMAIL": r"[\w.+-]+@[\w-]+\.[\w.]+"}}},
]
FAKE_REPLY = "Hello from the fake provider."


class Audited:
    """A proxy writing to one store, and a way to read that store."""

    def __init__(self, kind: str, url: str, proxy: ProxyProcess) -> None:
        self.kind, self.url, self.proxy = kind, url, proxy

    async def _read(self, table: str, request_id: str) -> list[dict[str, Any]]:
        reader = open_reader(self.url)
        await reader.open()
        try:
            return await getattr(reader, f"query_{table}")(AuditQuery(request_id=request_id))
        finally:
            await reader.close()

    def rows(self, table: str, request_id: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The rows of a request, once written (writes are batched). Decisions are read once the request
        row is there: the last row a request writes, and the one its ALLOW decisions are folded into."""
        if table == "decisions":
            self.rows("requests", request_id, timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                rows = asyncio.run(self._read(table, request_id))
            except Exception:  # the store may not exist before the first batch
                rows = []
            if rows or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)

    def request_row(self, request_id: str) -> dict[str, Any]:
        [row] = self.rows("requests", request_id)
        return row

    def everything(self) -> bytes:
        """Every byte the store holds, as far as a test can see it."""
        if self.kind == "sqlite":
            path = Path(self.url.removeprefix("sqlite:///"))
            return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        base, _, schema = self.url.partition("?schema=")

        async def dump() -> bytes:
            connection = await asyncpg.connect(base)
            try:
                texts = []
                for table in ("requests", "decisions", "chain_head", "schema_version"):
                    rows = await connection.fetch(f'SELECT t::text FROM "{schema}".{table} t')
                    texts += [row[0] for row in rows]
                return "\n".join(texts).encode()
            finally:
                await connection.close()

        return asyncio.run(dump())


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def audited(request: pytest.FixtureRequest, fake_provider) -> Iterator[Audited]:
    directory = Path(tempfile.mkdtemp(prefix="capsem-audit-trail-"))
    url = f"sqlite:///{directory / 'audit.db'}" if request.param == "sqlite" else new_schema_url()
    config = {"audit": {"url": url, "store_content": True, "flush_interval_ms": 20}, "policies": POLICIES}
    proxy = start_proxy(fake_provider.base_url, config)
    yield Audited(request.param, url, proxy)
    proxy.stop()
    if request.param == "postgres":
        drop_schema(url)
    shutil.rmtree(directory, ignore_errors=True)


def _send(proxy: ProxyProcess, provider: str, prompt: str, stream: bool, **headers: str) -> httpx.Response:
    key = KEYS[provider]
    if provider == "openai":
        path, body = "/v1/chat/completions", {"model": "gpt-4o", "stream": stream,
                                              "messages": [{"role": "user", "content": prompt}]}
        headers["authorization"] = f"Bearer {key}"
    elif provider == "anthropic":
        path, body = "/v1/messages", {"model": "claude-x", "max_tokens": 50, "stream": stream,
                                      "messages": [{"role": "user", "content": prompt}]}
        headers.update({"x-api-key": key, "anthropic-version": "2023-06-01"})
    else:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        path, body = f"/v1beta/models/gemini-x:{method}", {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
        headers["x-goog-api-key"] = key
    return httpx.post(f"{proxy.base_url}{path}", json=body, headers=headers, timeout=30)


ROUTES = {
    "openai": ("/v1/chat/completions", "gpt-4o"),
    "anthropic": ("/v1/messages", "claude-x"),
    "gemini": ("/v1beta/models/{model}:generateContent", "gemini-x"),
}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_each_request_gets_a_request_row_and_decision_rows(audited, provider, stream):
    response = _send(audited.proxy, provider, "what is the weather?", stream,
                     **{"x-capsem-agent-id": f"agent-{provider}", "x-capsem-session-id": f"session-{provider}"})
    assert response.status_code == 200
    request_id = response.headers["x-capsem-request-id"]
    row = audited.request_row(request_id)
    route, model = ROUTES[provider]
    if provider == "gemini" and stream:
        route = "/v1beta/models/{model}:streamGenerateContent"
    assert (row["provider"], row["route"], row["model"], row["stream"]) == (provider, route, model, stream)
    assert (row["status"], row["verdict"], row["decision_id"]) == (200, "ALLOW", "")
    assert (row["agent_id"], row["session_id"]) == (f"agent-{provider}", f"session-{provider}")
    assert re.fullmatch(r"[0-9a-f]{32}", row["tenant_id"])
    assert row["latency_ms"] > 0 and row["ttfb_ms"] is not None and row["upstream_ms"] is not None
    assert row["latency_ms"] >= row["ttfb_ms"]
    assert row["prompt"] == "what is the weather?" and row["answer"] == FAKE_REPLY
    decisions = audited.rows("decisions", request_id)
    assert {(d["policy"], d["hook"], d["verdict"]) for d in decisions} >= {("Debug", "on_model_call", "ALLOW")}
    for decision in decisions:
        assert (decision["tenant_id"], decision["session_id"], decision["agent_id"]) == (
            row["tenant_id"], row["session_id"], row["agent_id"])
        assert (decision["provider"], decision["model"]) == (provider, model)
        # Taken before the request ended: in rows before its own, or folded into it (ALLOWs, folding.py).
        assert decision["seq"] < row["seq"] or (decision["seq"] == row["seq"] and decision["hash"] == row["hash"])


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_a_blocked_request_is_recorded_with_its_governing_decision(audited, provider):
    response = _send(audited.proxy, provider, "please capsem_block this", False)
    assert response.status_code == 403
    request_id, decision_id = response.headers["x-capsem-request-id"], response.headers["x-capsem-decision-id"]
    row = audited.request_row(request_id)
    assert (row["status"], row["verdict"], row["decision_id"]) == (403, "BLOCK", decision_id)
    assert "prompt" not in row and "answer" not in row  # a blocked prompt is not kept
    [blocking] = [d for d in audited.rows("decisions", request_id) if d["verdict"] == "BLOCK"]
    assert (blocking["decision_id"], blocking["policy"]) == (decision_id, "Debug")
    assert blocking["details"] == "Detected 'capsem_block' in prompt"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_stored_prompts_are_redacted(audited, stream):
    response = _send(audited.proxy, "openai", f"mail {EMAIL} please", stream)
    assert response.status_code == 200
    row = audited.request_row(response.headers["x-capsem-request-id"])
    assert row["verdict"] == "REDACT" and row["prompt"] == "mail [REDACTED:EMAIL] please"
    redactions = [d for d in audited.rows("decisions", row["request_id"]) if d["verdict"] == "REDACT"]
    assert len(redactions) == 1 and redactions[0]["decision_id"] == row["decision_id"]


def test_sdk_requests_are_audited_with_token_counts(audited):
    client = openai.OpenAI(base_url=f"{audited.proxy.base_url}/v1", api_key=KEYS["openai"], max_retries=0,
                           default_headers={"x-capsem-agent-id": "sdk-agent"})
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "count my tokens"}]
    )
    completion = raw.parse()
    row = audited.request_row(raw.headers["x-capsem-request-id"])
    assert row["agent_id"] == "sdk-agent" and row["session_id"].startswith("s-")  # derived from the conversation
    assert (row["input_tokens"], row["output_tokens"]) == (
        completion.usage.prompt_tokens, completion.usage.completion_tokens
    )


def test_no_provider_key_is_ever_stored_and_the_chain_verifies(audited):
    request_ids = []
    for provider in KEYS:
        for stream in (False, True):
            response = _send(audited.proxy, provider, f"key check {EMAIL} capsem_block" if stream else "hi", stream)
            request_ids.append(response.headers["x-capsem-request-id"])
    for request_id in request_ids:
        assert audited.rows("requests", request_id)
    stored = audited.everything()
    assert request_ids[-1].encode() in stored
    for key in KEYS.values():
        assert key.encode() not in stored
    assert EMAIL.encode() not in stored
    config = str(audited.proxy.workdir / "proxy.yaml")  # the proxy's: its store, data dir and exported head
    result = subprocess.run([sys.executable, "-m", "capsem_proxy.cli", "audit", "verify", "--config", config],
                            capture_output=True, text=True, cwd=ROOT, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("audit chain intact")


def test_the_default_store_is_a_sqlite_file_in_the_data_directory(proxy):
    response = httpx.post(f"{proxy.base_url}/v1/chat/completions", headers={"authorization": "Bearer sk-default"},
                          json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200
    default = Audited("sqlite", f"sqlite:///{proxy.workdir / 'capsem-data' / 'audit.db'}", proxy)
    row = default.request_row(response.headers["x-capsem-request-id"])
    assert row["status"] == 200 and "prompt" not in row  # content is not stored unless configured
