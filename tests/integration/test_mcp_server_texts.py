"""The texts an MCP server writes about itself reach a client (and its model) only screened, over
HTTP through the real proxy: the `initialize` result's `instructions`, the names and descriptions of
`resources/list`, `resources/templates/list` and `prompts/list`, the strings of a result's `_meta`,
and a listed tool's `_meta`. A finding is redacted where it can be, otherwise the answer is refused
with the policy error; the fake server answers these methods with scripted results."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fake_mcp.process import FakeMcpProcess, start_fake_mcp
from tests.fake_mcp.server import INJECTION, PII_EMAIL
from tests.integration.mcp_helpers import LEGACY_VERSION, answer_messages, initialize, jsonrpc
from tests.proxy_process import ProxyProcess, start_proxy

ACCEPT = {"accept": "application/json, text/event-stream"}
SECRET = "ghp_" + "Zq8vN3xR5tL2wK9mP4sD7fG1hJ6cB0aY3eU8"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeMcpProcess]:
    server = start_fake_mcp("--json")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(fake: FakeMcpProcess) -> Iterator[ProxyProcess]:
    config = {
        "policies": [{"class": "secrets"}, {"class": "pii_detect"}, {"class": "injection"}],
        "mcp": {"servers": {"files": {"url": fake.url}}},
    }
    process = start_proxy("http://127.0.0.1:9", config)
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def _fresh(fake: FakeMcpProcess) -> None:
    fake.reset()


def _url(proxy: ProxyProcess) -> str:
    return f"{proxy.base_url}/mcp/files"


def _ask(proxy: ProxyProcess, method: str, params: dict[str, Any] | None = None, session: str = "") -> dict[str, Any]:
    headers = {**ACCEPT, **({"mcp-session-id": session, "mcp-protocol-version": LEGACY_VERSION} if session else {})}
    response = httpx.post(_url(proxy), json=jsonrpc(method, params, request_id=7), headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    [message] = answer_messages(response)
    return message


def _initialize_params() -> dict[str, Any]:
    return {"protocolVersion": LEGACY_VERSION, "capabilities": {}, "clientInfo": {"name": "raw-test", "version": "1"}}


def _server_info(instructions: str) -> dict[str, Any]:
    return {"protocolVersion": LEGACY_VERSION, "capabilities": {"tools": {}}, "instructions": instructions,
            "serverInfo": {"name": "scripted", "version": "1"}}


def test_an_injection_in_the_initialize_instructions_is_refused(proxy, fake):
    fake.script("initialize", _server_info(f"Use these tools well. {INJECTION}"))
    answer = _ask(proxy, "initialize", _initialize_params())
    assert answer["error"]["code"] == -32001
    assert INJECTION not in str(answer)


@pytest.mark.parametrize("leak", [PII_EMAIL, SECRET])
def test_a_leak_in_the_initialize_instructions_never_reaches_the_client(proxy, fake, leak):
    fake.script("initialize", _server_info(f"Questions go to the owner ({leak})."))
    answer = _ask(proxy, "initialize", _initialize_params())
    assert leak not in str(answer)
    assert "error" in answer or "[REDACTED" in answer["result"]["instructions"]


def test_clean_instructions_come_through_unchanged(proxy, fake):
    fake.script("initialize", _server_info("Use the notes tools to read the team's notes."))
    answer = _ask(proxy, "initialize", _initialize_params())
    assert answer["result"]["instructions"] == "Use the notes tools to read the team's notes."


@pytest.mark.parametrize(
    ("method", "result"),
    [
        ("resources/list", {"resources": [{"uri": "notes://a", "name": "a", "description": "{text}"}]}),
        ("resources/templates/list",
         {"resourceTemplates": [{"uriTemplate": "notes://{id}", "name": "note", "title": "{text}"}]}),
        ("prompts/list", {"prompts": [{"name": "greet", "description": "{text}",
                                       "arguments": [{"name": "who", "description": "whom to greet"}]}]}),
        ("tools/call", {"content": [{"type": "text", "text": "done"}], "_meta": {"note": "{text}"}}),
    ],
)
def test_listings_and_meta_are_screened(proxy, fake, method, result):
    session = initialize(httpx.Client(timeout=30), _url(proxy))
    params = {"name": "echo", "arguments": {"text": "hi"}} if method == "tools/call" else {}

    def scripted(text: str) -> dict[str, Any]:
        fake.script(method, _filled(result, text))
        return _ask(proxy, method, params, session)

    redacted = scripted(f"Written by {PII_EMAIL}.")
    assert PII_EMAIL not in str(redacted) and "[REDACTED:email]" in str(redacted["result"])
    refused = scripted(INJECTION)
    assert refused["error"]["code"] == -32001 and INJECTION not in str(refused)
    clean = scripted("The team's shared notes.")
    assert "The team's shared notes." in str(clean["result"])


def _filled(value: Any, text: str) -> Any:
    if isinstance(value, str):
        return value.replace("{text}", text)
    if isinstance(value, dict):
        return {key: _filled(item, text) for key, item in value.items()}
    if isinstance(value, list):
        return [_filled(item, text) for item in value]
    return value


def test_a_tool_whose_meta_carries_an_injection_is_left_out_of_the_list(proxy, fake):
    session = initialize(httpx.Client(timeout=30), _url(proxy))
    fake.script("tools/list", {"tools": [
        {"name": "clean", "description": "A clean tool.", "inputSchema": {"type": "object"}},
        {"name": "tainted", "description": "Looks clean.", "inputSchema": {"type": "object"},
         "_meta": {"hint": INJECTION}},
    ]})
    answer = _ask(proxy, "tools/list", {}, session)
    assert [tool["name"] for tool in answer["result"]["tools"]] == ["clean"]
