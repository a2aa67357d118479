"""MCP over Streamable HTTP through the real proxy: the official `mcp` client (both protocol eras:
the 2025-11-25 session handshake, `mode="legacy"`, and the stateless 2026-07-28 revision, `"auto"`)
and raw JSON-RPC, against a fake server built on the official SDK that records every call it gets."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest
from mcp.shared.exceptions import MCPError

from tests.fake_mcp.process import FakeMcpProcess, start_fake_mcp
from tests.fake_mcp.server import INJECTION, PII_EMAIL
from tests.integration.mcp_helpers import (
    ADMIN_TOKEN,
    answer_messages,
    audit_rows,
    connect,
    initialize,
    jsonrpc,
)
from tests.proxy_process import ProxyProcess, free_port, start_proxy

MODES = ["legacy", "auto"]
SERVER_TOKEN = "server-side-token-4711"
CLIENT_KEY = "client-own-key-0042"
ACCEPT = {"accept": "application/json, text/event-stream"}
POLICIES = [
    {"class": "capsem.policies.debug_policy.DebugPolicy"},
    {"class": "pii_detect"},
    {"class": "injection"},
    {"class": "tool_rules"},
]


@pytest.fixture(scope="module")
def fake() -> FakeMcpProcess:
    server = start_fake_mcp()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(fake: FakeMcpProcess) -> ProxyProcess:
    config = {
        "admin": {"token": ADMIN_TOKEN},
        "cors": {"allow_origins": ["https://app.example"]},
        "policies": POLICIES,
        "mcp": {
            "servers": {
                "files": {"url": fake.url, "headers": {"authorization": "Bearer ${FAKE_MCP_TOKEN}"}},
                "down": {"url": f"http://127.0.0.1:{free_port()}/mcp", "connect_timeout": 2},
            },
        },
    }
    process = start_proxy("http://127.0.0.1:9", config, env={"FAKE_MCP_TOKEN": SERVER_TOKEN})
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def _fresh_fake(request: pytest.FixtureRequest) -> None:
    if "fake" in request.fixturenames:
        request.getfixturevalue("fake").reset()


def _url(proxy: ProxyProcess, name: str = "files") -> str:
    return f"{proxy.base_url}/mcp/{name}"


def _tool_calls(fake: FakeMcpProcess, tool: str) -> list[dict]:
    return [call for call in fake.calls() if call["tool"] == tool]


# --- the hooks, through the official client ------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_tool_list_comes_through_without_the_blocked_tool(proxy, fake, mode):
    async with connect(_url(proxy), mode) as client:
        listed = await client.list_tools()
    names = {tool.name for tool in listed.tools}
    assert {"echo", "add", "contact", "summarize", "document", "steps"} <= names
    assert "capsem_block_files" not in names
    assert "weather" not in names  # its description carries an injection (tool poisoning)


@pytest.mark.parametrize("mode", MODES)
async def test_clean_call_reaches_the_server_and_comes_back_unchanged(proxy, fake, mode):
    async with connect(_url(proxy), mode) as client:
        result = await client.call_tool("add", {"a": 2, "b": 40})
    assert not result.is_error
    assert result.structured_content == {"result": 42}
    assert _tool_calls(fake, "add") == [{"tool": "add", "arguments": {"a": 2, "b": 40}}]


@pytest.mark.parametrize("mode", MODES)
async def test_blocked_call_is_a_jsonrpc_error_and_never_reaches_the_server(proxy, fake, mode):
    async with connect(_url(proxy), mode) as client:
        await client.list_tools()
        with pytest.raises(MCPError) as refused:
            await client.call_tool("capsem_block_files", {})
    error = refused.value.error
    assert error.code == -32001
    assert error.message.startswith("Tool blocked by security policy: ")
    assert "capsem_block" in error.message
    assert len(error.data["decision_id"]) == 16
    assert _tool_calls(fake, "capsem_block_files") == []
    (recorded,) = audit_rows(proxy.base_url, "decisions", lambda row: row["decision_id"] == error.data["decision_id"],
                             verdict="BLOCK", limit=100)
    assert recorded["provider"] == "mcp:files" and recorded["subject"] == "capsem_block_files"


@pytest.mark.parametrize("mode", MODES)
async def test_blocked_result_never_reaches_the_client(proxy, fake, mode):
    async with connect(_url(proxy), mode) as client:
        with pytest.raises(MCPError) as refused:
            await client.call_tool("summarize", {"url": "https://docs.example.org/page"})
    assert refused.value.error.code == -32001
    assert "Tool blocked by security policy: " in refused.value.error.message
    assert INJECTION not in str(refused.value.error.message)
    assert _tool_calls(fake, "summarize")  # the server ran the call; its result stopped at the proxy


@pytest.mark.parametrize("mode", MODES)
async def test_personal_data_in_a_result_is_redacted(proxy, fake, mode):
    async with connect(_url(proxy), mode) as client:
        result = await client.call_tool("contact", {"name": "Bob"})
        document = await client.call_tool("document", {})
    assert result.content[0].text == "Bob can be reached at [REDACTED:email]."
    assert result.structured_content == {"result": "Bob can be reached at [REDACTED:email]."}
    embedded = document.content[1].resource
    assert embedded.text == "Owner: [REDACTED:email]"
    assert document.content[2].type == "image" and document.content[2].data  # binaries untouched
    assert PII_EMAIL not in repr(result) + repr(document)


@pytest.mark.parametrize("mode", MODES)
async def test_resources_and_prompts_are_scanned_like_tool_results(proxy, fake, mode):
    async with connect(_url(proxy), mode) as client:
        welcome = await client.read_resource("notes://welcome")
        prompt = await client.get_prompt("greet", {"name": "Ann"})
        with pytest.raises(MCPError) as refused:
            await client.read_resource("notes://poisoned")
    assert welcome.contents[0].text == "Welcome! Your admin is [REDACTED:email]."
    assert "[REDACTED:email]" in prompt.messages[0].content.text
    assert PII_EMAIL not in repr(prompt)
    assert refused.value.error.code == -32001


@pytest.mark.parametrize("mode", MODES)
async def test_arguments_that_break_the_listed_schema_are_refused(proxy, fake, mode):
    async with connect(_url(proxy), mode) as client:
        await client.list_tools()
        with pytest.raises(MCPError) as refused:
            await client.call_tool("add", {"a": "two", "b": 40})
    assert refused.value.error.code == -32001
    assert "do not match its schema" in refused.value.error.message
    assert _tool_calls(fake, "add") == []


async def test_schema_is_checked_even_when_the_client_never_listed_the_tools(proxy, fake):
    with httpx.Client(timeout=10) as http:
        session = initialize(http, _url(proxy))
        headers = {**ACCEPT, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
        refused = http.post(_url(proxy), headers=headers,
                            json=jsonrpc("tools/call", {"name": "add", "arguments": {"a": []}}, 7))
    (message,) = answer_messages(refused)
    assert message["id"] == 7 and message["error"]["code"] == -32001
    assert "schema" in message["error"]["message"]
    assert _tool_calls(fake, "add") == []


def test_a_stateless_2026_call_is_checked_against_the_list_the_proxy_reads_itself(proxy, fake):
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"}}
    headers = {**ACCEPT, "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "add",
               "authorization": "Bearer a-caller-never-seen-before"}

    def call(arguments: dict, request_id: int) -> dict:
        params = {"name": "add", "arguments": arguments, "_meta": meta}
        answer = httpx.post(_url(proxy), headers=headers, json=jsonrpc("tools/call", params, request_id), timeout=10)
        (message,) = answer_messages(answer)
        return message

    refused = call({"a": "x", "b": 1}, 1)
    passed = call({"a": 1, "b": 1}, 2)
    assert refused["error"]["code"] == -32001 and "schema" in refused["error"]["message"]
    assert passed["result"]["structuredContent"] == {"result": 2}
    assert _tool_calls(fake, "add") == [{"tool": "add", "arguments": {"a": 1, "b": 1}}]
    # The proxy read the list once, as a 2026-07-28 request, then checked both calls against it.
    assert [seen.get("mcp-method") for seen in fake.headers()] == ["tools/list", "tools/call"]


# --- streams ------------------------------------------------------------------------------------


async def test_progress_and_log_messages_arrive_in_order_before_the_result(proxy, fake):
    seen: list[str] = []

    async def on_log(params) -> None:
        seen.append(f"log {params.data}")

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(f"progress {progress:g}")

    async with connect(_url(proxy), "legacy", logging_callback=on_log) as client:
        result = await client.call_tool("steps", {"count": 3}, progress_callback=on_progress)
    seen.append(result.content[0].text)
    assert seen == [
        "log step 1", "progress 1", "log step 2", "progress 2", "log step 3", "progress 3", "done after 3 steps",
    ]


async def test_sse_answer_is_relayed_event_by_event_with_its_events_in_order(proxy, fake):
    with httpx.Client(timeout=10) as http:
        session = initialize(http, _url(proxy))
        headers = {**ACCEPT, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
        call = jsonrpc("tools/call", {"name": "steps", "arguments": {"count": 2}, "_meta": {"progressToken": "p"}}, 3)
        answer = http.post(_url(proxy), headers=headers, json=call)
    assert answer.headers["content-type"].startswith("text/event-stream")
    methods = [message.get("method", "result") for message in answer_messages(answer)]
    assert methods == ["notifications/message", "notifications/progress"] * 2 + ["result"]


async def test_server_initiated_messages_come_through_the_get_stream(proxy, fake):
    received: list[str] = []
    changed = asyncio.Event()

    async def on_message(message) -> None:
        method = getattr(getattr(message, "root", message), "method", None)
        if method:
            received.append(method)
            if method == "notifications/tools/list_changed":
                changed.set()

    async with connect(_url(proxy), "legacy", message_handler=on_message) as client:
        await client.list_tools()
        await client.call_tool("rotate", {"description": "Echo the text back, loudly."})
        await asyncio.wait_for(changed.wait(), 10)
    assert "notifications/tools/list_changed" in received


# --- sessions and headers -----------------------------------------------------------------------


def test_a_session_is_bound_to_the_caller_that_opened_it(proxy, fake):
    url = _url(proxy)
    with httpx.Client(timeout=10) as http:
        session = initialize(http, url, authorization="Bearer caller-a")
        call = jsonrpc("tools/call", {"name": "echo", "arguments": {"text": "hi"}}, 2)
        base = {**ACCEPT, "mcp-protocol-version": "2025-11-25"}
        ridden = http.post(url, json=call, headers={**base, "mcp-session-id": session, "authorization": "Bearer b"})
        anonymous = http.post(url, json=call, headers={**base, "mcp-session-id": session})
        upstream_id = session.rpartition(".")[0]
        forged = http.post(url, json=call, headers={**base, "mcp-session-id": upstream_id,
                                                    "authorization": "Bearer caller-a"})
        owner = http.post(url, json=call,
                          headers={**base, "mcp-session-id": session, "authorization": "Bearer caller-a"})
    for refused in (ridden, anonymous, forged):
        assert refused.status_code == 404
        assert refused.json()["error"]["message"] == "session not found"
    assert owner.status_code == 200
    assert answer_messages(owner)[-1]["result"]["content"][0]["text"] == "hi"
    assert _tool_calls(fake, "echo") == [{"tool": "echo", "arguments": {"text": "hi"}}]


def test_configured_credentials_replace_the_clients_own(proxy, fake):
    with httpx.Client(timeout=10) as http:
        initialize(http, _url(proxy), authorization=f"Bearer {CLIENT_KEY}")
    seen = fake.headers()
    assert seen and all(headers.get("authorization") == f"Bearer {SERVER_TOKEN}" for headers in seen)
    assert CLIENT_KEY not in orjson.dumps(seen).decode()


def test_protocol_version_header_reaches_the_server(proxy, fake):
    with httpx.Client(timeout=10) as http:
        session = initialize(http, _url(proxy))
        answer = http.post(_url(proxy), json=jsonrpc("tools/list", {}, 5),
                           headers={**ACCEPT, "mcp-session-id": session, "mcp-protocol-version": "1999-01-01"})
    assert answer.status_code == 400  # the server's own refusal of an unknown revision, relayed
    assert fake.headers()[-1]["mcp-protocol-version"] == "1999-01-01"


def test_delete_ends_the_session(proxy, fake):
    with httpx.Client(timeout=10) as http:
        session = initialize(http, _url(proxy))
        headers = {**ACCEPT, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
        ended = http.delete(_url(proxy), headers=headers)
        after = http.post(_url(proxy), json=jsonrpc("tools/list", {}, 9), headers=headers)
    assert ended.status_code == 200
    assert after.status_code == 404


# --- malformed input, batches, failures ----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, -32700),
        (b"[]", 400, -32600),
        (b'{"jsonrpc": "1.0", "id": 1, "method": "tools/list"}', 400, -32600),
        (b'{"jsonrpc": "2.0", "id": {"a": 1}, "method": "tools/list"}', 400, -32600),
        (b'"just a string"', 400, -32600),
    ],
)
def test_malformed_jsonrpc_gets_the_specs_error_codes(proxy, body, status, code):
    answer = httpx.post(_url(proxy), content=body, headers={**ACCEPT, "content-type": "application/json"})
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code


def test_a_batch_is_checked_member_by_member_where_the_revision_allows_it(proxy, fake):
    url = _url(proxy)
    with httpx.Client(timeout=10) as http:
        session = initialize(http, url, version="2025-03-26")
        batch = [
            jsonrpc("tools/call", {"name": "capsem_block_files", "arguments": {}}, 1),
            jsonrpc("tools/call", {"name": "echo", "arguments": {"text": "batched"}}, 2),
        ]
        answer = http.post(url, json=batch, headers={**ACCEPT, "mcp-session-id": session})
        newer = http.post(url, json=batch, headers={**ACCEPT, "mcp-session-id": session,
                                                    "mcp-protocol-version": "2025-06-18"})
    by_id = {message["id"]: message for message in answer_messages(answer)}
    assert by_id[1]["error"]["code"] == -32001
    assert by_id[2]["result"]["content"][0]["text"] == "batched"
    assert [call["tool"] for call in fake.calls()] == ["echo"]
    assert newer.status_code == 400 and newer.json()["error"]["code"] == -32600


def test_mcp_method_header_that_disagrees_with_the_body_is_refused(proxy, fake):
    call = jsonrpc("tools/call", {"name": "capsem_block_files", "arguments": {}}, 4)
    answer = httpx.post(_url(proxy), json=call, headers={**ACCEPT, "mcp-method": "tools/call", "mcp-name": "echo",
                                                        "mcp-protocol-version": "2026-07-28"})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == -32020
    assert fake.calls() == []


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


async def test_an_unreachable_server_is_a_jsonrpc_error(proxy):
    with pytest.raises(BaseException) as failed:  # the client may wrap the error in a group
        async with connect(_url(proxy, "down"), "legacy"):
            pass
    (error,) = [leaf for leaf in _leaves(failed.value) if isinstance(leaf, MCPError)]
    assert error.error.code == -32000 and error.error.message == "the MCP server 'down' could not be reached"
    answer = httpx.post(_url(proxy, "down"), json=jsonrpc("tools/list", {}, 11), headers=ACCEPT, timeout=10)
    assert answer.status_code == 502
    assert answer.json() == {"jsonrpc": "2.0", "id": 11, "error": {
        "code": -32000, "message": "the MCP server 'down' could not be reached"}}


def test_an_unknown_server_name_is_404(proxy):
    answer = httpx.post(_url(proxy, "nowhere"), json=jsonrpc("tools/list"), headers=ACCEPT)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == -32600


# --- audit, metrics -----------------------------------------------------------------------------


async def test_mcp_traffic_is_audited_and_counted_with_its_session(proxy, fake):
    agent = {"x-capsem-agent-id": "audit-agent"}
    async with connect(_url(proxy), "legacy", key="audited-caller", headers=agent) as client:
        await client.call_tool("echo", {"text": "audit me"})
        with pytest.raises(MCPError):
            await client.call_tool("capsem_block_files", {})

    def ours(row: dict) -> bool:
        return row["agent_id"] == "audit-agent"

    audit_rows(proxy.base_url, "requests", lambda row: ours(row) and row["operation"] == "delete", limit=500)
    rows = audit_rows(proxy.base_url, "requests", ours, limit=500)
    blocked_calls = [row for row in rows if row["verdict"] == "BLOCK" and row["operation"] == "tools/call"]
    assert len(blocked_calls) == 1
    assert {"initialize", "tools/call", "delete"} <= {row["operation"] for row in rows}
    assert {(row["provider"], row["route"]) for row in rows} == {("mcp:files", "/mcp/files")}
    (session,) = {row["session_id"] for row in rows if row["operation"] != "initialize" or row["session_id"]}
    assert session.startswith("mcp-")
    assert len({row["tenant_id"] for row in rows}) == 1 and rows[0]["tenant_id"]
    assert "audited-caller" not in orjson.dumps(rows).decode()
    decisions = audit_rows(proxy.base_url, "decisions", lambda row: ours(row) and row["verdict"] == "BLOCK"
                           and row["request_id"] == blocked_calls[0]["request_id"], limit=500)
    assert decisions[0]["session_id"] == session and decisions[0]["hook"] == "on_tool_call"
    metrics = httpx.get(f"{proxy.base_url}/metrics").text
    assert 'provider="mcp:files",route="/mcp/files",status="200"' in metrics
    blocks = [line.lower() for line in metrics.splitlines() if line.startswith("capsem_proxy_decisions_total")]
    assert any('hook="on_tool_call",policy="debug",verdict="block"' in line for line in blocks)


def test_browser_origins_are_checked(proxy):
    refused = httpx.post(_url(proxy), json=jsonrpc("tools/list"), headers={**ACCEPT, "origin": "https://evil.example"})
    preflight = httpx.options(_url(proxy), headers={"origin": "https://evil.example",
                                                   "access-control-request-method": "POST"})
    assert refused.status_code == 403 and refused.json()["error"]["message"] == "origin not allowed"
    assert preflight.status_code == 403
    allowed = httpx.options(_url(proxy), headers={"origin": "https://app.example",
                                                 "access-control-request-method": "DELETE"})
    assert allowed.status_code == 204
    assert "DELETE" in allowed.headers["access-control-allow-methods"]
    assert "mcp-session-id" in allowed.headers["access-control-allow-headers"]
    params = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "b", "version": "1"}}
    opened = httpx.post(_url(proxy), headers={**ACCEPT, "origin": "https://app.example"},
                        json=jsonrpc("initialize", params))
    assert opened.status_code == 200 and opened.headers["access-control-allow-origin"] == "https://app.example"
    assert "mcp-session-id" in opened.headers["access-control-expose-headers"]  # readable by the page
