"""The audit trail cannot be flooded, over HTTP through the real proxy: a request offering 19,000 tools
writes a handful of decision rows (blocked or not), a 1 MB model name or prompt is stored cut to its
cap, and while the store is locked a flood of allowed requests loses its own rows but never the row
and decision of a blocked request; when even the room kept for blocks is used up, new requests are
refused with 503 and every request that was blocked is in the store once it is back."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from capsem_proxy.audit import AuditQuery
from capsem_proxy.audit.tools import open_reader
from tests.proxy_process import ProxyProcess, start_proxy

KEY_HEADER = {"authorization": "Bearer sk-audit-bounds"}
ALLOWED = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}
BLOCKED = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "please capsem_block this"}]}


class Store:
    def __init__(self, url: str) -> None:
        self.url = url

    async def _read(self, table: str, request_id: str) -> list[dict[str, Any]]:
        reader = open_reader(self.url)
        await reader.open()
        try:
            return await getattr(reader, f"query_{table}")(AuditQuery(request_id=request_id, limit=1000))
        finally:
            await reader.close()

    def rows(self, table: str, request_id: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The rows of a request once written (writes are batched, and wait while the store is locked)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = asyncio.run(self._read(table, request_id))
            if rows or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


@pytest.fixture
def audited(fake_provider, tmp_path) -> Iterator[tuple[ProxyProcess, Store]]:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    config = {"audit": {"url": url, "flush_interval_ms": 20, "store_content": True, "max_content_chars": 4096},
              # 19,000 inline policy calls in one request: a garbage collection pause in one of them must
              # not count as the policy overrunning its budget here.
              "policies": [{"class": "capsem.policies.debug_policy.DebugPolicy", "hooks": ["on_model_call",
                                                                                         "on_tool_call"],
                            "timeout_ms": 10_000}]}
    proxy = start_proxy(fake_provider.base_url, config)
    yield proxy, Store(url)
    proxy.stop()


def _tools(count: int, prefix: str) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": f"{prefix}_{index}", "description": "a tool",
                                              "parameters": {"type": "object", "properties": {}}}}
            for index in range(count)]


def _post(proxy: ProxyProcess, body: dict[str, Any], timeout: float = 120) -> httpx.Response:
    return httpx.post(f"{proxy.base_url}/v1/chat/completions", json=body, headers=KEY_HEADER, timeout=timeout)


def test_a_request_offering_19000_tools_writes_a_handful_of_rows(audited):
    proxy, store = audited
    response = _post(proxy, {**ALLOWED, "tools": _tools(19_000, "lookup")})
    assert response.status_code == 200
    request_id = response.headers["x-capsem-request-id"]
    assert store.rows("requests", request_id)
    decisions = store.rows("decisions", request_id)
    assert sorted((row["hook"], row["verdict"], row["count"]) for row in decisions) == [
        ("on_model_call", "ALLOW", 1), ("on_tool_call", "ALLOW", 19_000)
    ]
    folded = next(row for row in decisions if row["count"] == 19_000)
    assert folded["subject"].startswith("lookup_0, lookup_1") and len(folded["subject"]) <= 256


def test_19000_blocked_tools_keep_every_block_counted_and_the_governing_one_named(audited):
    proxy, store = audited
    response = _post(proxy, {**ALLOWED, "tools": _tools(19_000, "capsem_block_tool")})
    assert response.status_code == 403
    request_id, decision_id = response.headers["x-capsem-request-id"], response.headers["x-capsem-decision-id"]
    assert store.rows("requests", request_id)[0]["verdict"] == "BLOCK"
    decisions = store.rows("decisions", request_id)
    blocks = [row for row in decisions if row["verdict"] == "BLOCK"]
    assert len(decisions) <= 53  # audit.max_decision_rows (50), one folded row, the model call
    assert sum(row["count"] for row in blocks) == 19_000
    assert [row for row in blocks if row["decision_id"] == decision_id and row["count"] == 1]


def test_a_megabyte_model_name_and_prompt_are_stored_cut_to_their_caps(audited):
    proxy, store = audited
    model = "m" * 1_000_000
    response = _post(proxy, {"model": model, "messages": [{"role": "user", "content": "p" * 300_000}]})
    request_id = response.headers["x-capsem-request-id"]
    [row] = store.rows("requests", request_id)
    assert len(row["model"]) == 256 and row["model"].endswith("…[1000000 chars]")
    assert len(row["prompt"]) == 4096 and row["prompt"].endswith("…[300000 chars]")
    assert all(len(decision["model"]) == 256 for decision in store.rows("decisions", request_id))


def _dropped_rows(proxy: ProxyProcess) -> float:
    families = text_string_to_metric_families(httpx.get(f"{proxy.base_url}/metrics").text)
    family = next(family for family in families if family.name == "capsem_proxy_audit_dropped_rows")
    return sum(sample.value for sample in family.samples if sample.name.endswith("_total"))


@pytest.fixture
def small_queue(fake_provider, tmp_path) -> Iterator[tuple[ProxyProcess, Store, Path]]:
    """A proxy with 100 rows of queue, 20 of them kept for blocks, overflow: drop (the default)."""
    path = tmp_path / "audit.db"
    config = {"audit": {"url": f"sqlite:///{path}", "queue_max": 100, "reserved_rows": 20, "flush_interval_ms": 20}}
    proxy = start_proxy(fake_provider.base_url, config)
    yield proxy, Store(f"sqlite:///{path}"), path
    proxy.stop()


def _lock(path: Path) -> sqlite3.Connection:
    """Another writer holding the audit file: every write of the proxy waits, then fails and retries."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


def test_a_flood_while_the_store_is_locked_cannot_push_a_block_out(small_queue):
    proxy, store, path = small_queue
    holder = _lock(path)
    try:
        with httpx.Client(base_url=proxy.base_url, headers=KEY_HEADER, timeout=30) as client:
            flood = [client.post("/v1/chat/completions", json=ALLOWED) for _ in range(150)]
            assert {response.status_code for response in flood} == {200}  # drop mode: allowed requests go on
            assert _dropped_rows(proxy) > 0
            blocked = client.post("/v1/chat/completions", json=BLOCKED)
            assert blocked.status_code == 403
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    request_id = blocked.headers["x-capsem-request-id"]
    [row] = store.rows("requests", request_id)
    assert (row["verdict"], row["status"]) == ("BLOCK", 403)
    [decision] = store.rows("decisions", request_id)
    assert (decision["verdict"], decision["decision_id"]) == ("BLOCK", blocked.headers["x-capsem-decision-id"])


def test_when_even_the_reserve_is_used_up_requests_are_refused_not_left_unaudited(small_queue):
    proxy, store, path = small_queue
    holder = _lock(path)
    blocked_ids: list[str] = []
    try:
        with httpx.Client(base_url=proxy.base_url, headers=KEY_HEADER, timeout=30) as client:
            for _ in range(200):
                response = client.post("/v1/chat/completions", json=BLOCKED)
                if response.status_code == 503:
                    refused = response
                    break
                assert response.status_code == 403
                blocked_ids.append(response.headers["x-capsem-request-id"])
            else:
                pytest.fail("the proxy never refused a request while its audit queue was full")
            assert refused.json()["detail"].startswith("the audit trail cannot take this request now")
            assert client.post("/v1/chat/completions", json=ALLOWED).status_code == 503  # allowed ones too
            blocked_count = len(blocked_ids)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert 40 <= blocked_count <= 60  # about queue_max / 2 rows per blocked request
    for request_id in blocked_ids:
        [row] = store.rows("requests", request_id)
        assert row["verdict"] == "BLOCK"
        assert [decision["verdict"] for decision in store.rows("decisions", request_id)] == ["BLOCK"]
    # Once the store took the queue, requests are served again.
    deadline = time.monotonic() + 30
    while _post(proxy, ALLOWED).status_code != 200:
        assert time.monotonic() < deadline, "the proxy kept refusing after its store came back"
        time.sleep(0.2)
