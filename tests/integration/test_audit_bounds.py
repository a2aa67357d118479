"""The audit trail cannot be flooded, over HTTP through the real proxy: a request offering 19,000 tools
writes a handful of decision rows (blocked or not), more tools than `server.max_tools_per_request`
are refused with 400 before any policy runs, a 1 MB model name or prompt is stored cut to its cap,
and while the store is locked a flood of allowed requests loses its own rows but never the row and
decisions of a blocked request, whatever the overflow setting; when even the room kept for blocks is
used up, new requests are refused with 503 and every request that was blocked is in the store once
it is back."""

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
        """The rows of a request once written (writes are batched, and wait while the store is locked).
        Decisions are read once the request row is there: the last row a request writes, and the one its
        ALLOW decisions are folded into."""
        if table == "decisions":
            self.rows("requests", request_id)
        deadline = time.monotonic() + timeout
        while True:
            rows = asyncio.run(self._read(table, request_id))
            if rows or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


# The proxies of `audited` and `default_cap` are shared by the tests of this file: each test reads back
# only the rows of its own request ids.
@pytest.fixture(scope="module")
def audited(fake_provider, tmp_path_factory) -> Iterator[tuple[ProxyProcess, Store]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('audited') / 'audit.db'}"
    config = {"audit": {"url": url, "flush_interval_ms": 20, "store_content": True, "max_content_chars": 4096},
              "server": {"max_tools_per_request": 20_000},
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


@pytest.fixture(scope="module")
def default_cap(fake_provider, tmp_path_factory) -> Iterator[tuple[ProxyProcess, Store]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('default_cap') / 'audit.db'}"
    proxy = start_proxy(fake_provider.base_url, {"audit": {"url": url, "flush_interval_ms": 20}})
    yield proxy, Store(url)
    proxy.stop()


def _offer(provider: str, count: int) -> tuple[str, dict[str, Any], dict[str, str]]:
    """A request of `provider` offering `count` tools: path, body, headers."""
    if provider == "anthropic":
        tools = [{"name": f"t_{index}", "input_schema": {"type": "object"}} for index in range(count)]
        return ("/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 16, "tools": tools,
                                 "messages": [{"role": "user", "content": "hello"}]},
                {"x-api-key": "sk-ant-audit-bounds", "anthropic-version": "2023-06-01"})
    if provider == "gemini":
        declarations = [{"name": f"t_{index}", "description": "a tool"} for index in range(count)]
        return ("/v1beta/models/gemini-2.5-flash:generateContent",
                {"contents": [{"parts": [{"text": "hello"}]}], "tools": [{"functionDeclarations": declarations}]},
                {"x-goog-api-key": "g-audit-bounds"})
    return "/v1/chat/completions", {**ALLOWED, "tools": _tools(count, "t")}, KEY_HEADER


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_more_tools_than_the_cap_are_refused_with_400_and_audited(default_cap, fake_provider, provider):
    proxy, store = default_cap
    path, body, headers = _offer(provider, 1025)  # server.max_tools_per_request defaults to 1024
    seen = len(fake_provider.requests())
    response = httpx.post(f"{proxy.base_url}{path}", json=body, headers=headers, timeout=60)
    assert response.status_code == 400
    assert "1025 tools; at most 1024" in response.text and "Traceback" not in response.text
    document = response.json()
    if provider == "openai":
        assert document["error"]["type"] == "invalid_request_error"
    elif provider == "anthropic":
        assert document["type"] == "error" and document["error"]["type"] == "invalid_request_error"
    else:
        assert document["error"]["status"] == "INVALID_ARGUMENT"
    assert len(fake_provider.requests()) == seen  # nothing reached the provider
    [row] = store.rows("requests", response.headers["x-capsem-request-id"])
    assert row["status"] == 400
    assert not store.rows("decisions", response.headers["x-capsem-request-id"], timeout=0.5)  # no policy ran


def test_as_many_tools_as_the_cap_are_served(default_cap):
    proxy, store = default_cap
    path, body, headers = _offer("openai", 1024)
    response = httpx.post(f"{proxy.base_url}{path}", json=body, headers=headers, timeout=60)
    assert response.status_code == 200
    store.rows("requests", response.headers["x-capsem-request-id"])  # the last row the request writes
    decisions = store.rows("decisions", response.headers["x-capsem-request-id"])
    assert sorted(row["count"] for row in decisions) == [1, 1024]


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


@pytest.fixture(params=["drop", "fail_closed"])
def overflowing(request, fake_provider, tmp_path) -> Iterator[tuple[ProxyProcess, Store, Path, str]]:
    """A proxy with 100 rows of queue, 20 of them kept for blocks, under each overflow setting (every
    tenant required under fail_closed)."""
    path = tmp_path / "audit.db"
    audit = {"url": f"sqlite:///{path}", "queue_max": 100, "reserved_rows": 20, "flush_interval_ms": 20,
             "overflow": request.param, "required_tenants": ["*"] if request.param == "fail_closed" else []}
    proxy = start_proxy(fake_provider.base_url, {"audit": audit})
    yield proxy, Store(f"sqlite:///{path}"), path, request.param
    proxy.stop()


def test_no_block_is_dropped_whatever_the_overflow_setting(overflowing):
    """Allowed requests, requests blocked by their prompt and requests offering 300 blocked tools,
    interleaved while the store is locked: every request answered 403 has its row and all its BLOCK
    decisions (counted) in the store once it is back; none is left unaudited, whichever rows the
    queue gave up for want of room."""
    proxy, store, path, overflow = overflowing
    many_blocked_tools = {**ALLOWED, "tools": _tools(300, "capsem_block_tool")}
    holder = _lock(path)
    answered: list[tuple[httpx.Response, int]] = []
    try:
        with httpx.Client(base_url=proxy.base_url, headers=KEY_HEADER, timeout=30) as client:
            for index in range(120):
                body, blocks = (BLOCKED, 1) if index % 7 == 3 else (many_blocked_tools, 300) if index % 11 == 5 \
                    else (ALLOWED, 0)
                response = client.post("/v1/chat/completions", json=body)
                assert response.status_code in (200, 403, 503), response.text
                if response.status_code == 503:
                    assert response.json()["detail"].startswith("the audit trail cannot take this request now")
                else:
                    assert response.status_code == (403 if blocks else 200)
                answered.append((response, blocks))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    blocked = [(response, blocks) for response, blocks in answered if response.status_code == 403]
    assert {blocks for _, blocks in blocked} == {1, 300}, "both kinds of blocked request were answered"
    if overflow == "drop":  # allowed requests went on (their rows dropped) until blocks used up the reserve
        assert [response for response, blocks in answered if not blocks and response.status_code == 200]
    for response, blocks in blocked:
        request_id = response.headers["x-capsem-request-id"]
        [row] = store.rows("requests", request_id)
        assert (row["verdict"], row["status"]) == ("BLOCK", 403)
        decisions = store.rows("decisions", request_id)
        assert sum(decision["count"] for decision in decisions if decision["verdict"] == "BLOCK") == blocks
        assert response.headers["x-capsem-decision-id"] in {decision["decision_id"] for decision in decisions}


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
