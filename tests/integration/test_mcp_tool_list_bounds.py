"""An MCP server cannot make the proxy screen an unbounded tool list: over HTTP through the real
proxy, a `tools/list` answer (all pages of a session together) beyond `mcp.max_listed_tools` is
refused whole with a JSON-RPC policy error and recorded, never passed on partly screened."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fake_mcp.process import FakeMcpProcess, start_fake_mcp
from tests.integration.mcp_helpers import (
    ADMIN_TOKEN,
    LEGACY_VERSION,
    answer_messages,
    audit_rows,
    initialize,
    jsonrpc,
)
from tests.proxy_process import ProxyProcess, start_proxy

pytestmark = pytest.mark.integration

ACCEPT = {"accept": "application/json, text/event-stream"}
LIMIT = 50


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeMcpProcess]:
    server = start_fake_mcp("--json")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(fake: FakeMcpProcess) -> Iterator[ProxyProcess]:
    config = {"mcp": {"servers": {"files": {"url": fake.url}}, "max_listed_tools": LIMIT},
              "admin": {"token": ADMIN_TOKEN}}
    process = start_proxy("http://127.0.0.1:9", config)
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def _fresh(fake: FakeMcpProcess) -> None:
    fake.reset()


def _tools(count: int) -> list[dict[str, Any]]:
    return [{"name": f"tool_{index}", "description": "Does one thing.", "inputSchema": {"type": "object"}}
            for index in range(count)]


def _list(proxy: ProxyProcess, session: str, params: dict[str, Any]) -> dict[str, Any]:
    headers = {**ACCEPT, "mcp-session-id": session, "mcp-protocol-version": LEGACY_VERSION}
    response = httpx.post(f"{proxy.base_url}/mcp/files", json=jsonrpc("tools/list", params, request_id=7),
                          headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    [message] = answer_messages(response)
    return message


def _session(proxy: ProxyProcess) -> str:
    with httpx.Client(timeout=30) as client:
        return initialize(client, f"{proxy.base_url}/mcp/files")


def test_a_list_at_the_bound_reaches_the_client_whole(proxy, fake):
    fake.script("tools/list", {"tools": _tools(LIMIT)})
    answer = _list(proxy, _session(proxy), {})
    assert len(answer["result"]["tools"]) == LIMIT


def test_a_list_beyond_the_bound_is_refused_and_recorded(proxy, fake):
    fake.script("tools/list", {"tools": _tools(LIMIT + 1)})
    answer = _list(proxy, _session(proxy), {})
    assert "result" not in answer
    error = answer["error"]
    assert error["code"] == -32001
    assert "max_listed_tools" in error["message"]
    assert error["data"]["policy"] == "mcp_limits"
    assert error["data"]["verdict"] == "BLOCK"
    decision_id = error["data"]["decision_id"]
    [row] = audit_rows(proxy.base_url, "decisions", lambda row: row["decision_id"] == decision_id,
                       policy="mcp_limits")
    assert row["verdict"] == "BLOCK"
    assert row["reason"] == "too_many_tools"


def test_pages_of_one_session_count_together(proxy, fake):
    session = _session(proxy)
    fake.script("tools/list", {"tools": _tools(30), "nextCursor": "page-2"})
    first = _list(proxy, session, {})
    assert len(first["result"]["tools"]) == 30
    second = _list(proxy, session, {"cursor": "page-2"})
    assert second["error"]["data"]["policy"] == "mcp_limits"
    # A new first page starts the count afresh.
    again = _list(proxy, session, {})
    assert len(again["result"]["tools"]) == 30
