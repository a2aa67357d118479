"""`capsem-proxy mcp-stdio` guarding a local server over stdio, driven by the official `mcp` client
as a desktop client would (it starts the command; the command starts the fake server on the SDK)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from pathlib import Path

import pytest
import yaml
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from tests.fake_mcp.server import INJECTION, PII_EMAIL

REPO_ROOT = Path(__file__).resolve().parents[2]


GUARDING_POLICIES = [
    {"class": "capsem.policies.debug_policy.DebugPolicy"},
    {"class": "pii_detect"},
    {"class": "injection"},
    {"class": "tool_rules"},
]


def _stdio_command(tmp_path: Path, policies: list[dict]) -> tuple[StdioServerParameters, Path, Path]:
    config = tmp_path / "proxy.yaml"
    audit = tmp_path / "audit.db"
    config.write_text(yaml.safe_dump({
        "server": {"data_dir": str(tmp_path / "data")},
        "audit": {"url": f"sqlite:///{audit}", "flush_interval_ms": 10},
        "policies": policies,
    }), encoding="utf-8")
    record = tmp_path / "calls.jsonl"
    parameters = StdioServerParameters(
        command=sys.executable,
        args=["-m", "capsem_proxy.cli", "mcp-stdio", "--name", "local", "--config", str(config), "--",
              sys.executable, "-m", "tests.fake_mcp", "--stdio"],
        env={"FAKE_MCP_RECORD": str(record), "PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
        cwd=str(REPO_ROOT),
    )
    return parameters, record, audit


@pytest.fixture
def guarded(tmp_path: Path) -> tuple[StdioServerParameters, Path, Path]:
    return _stdio_command(tmp_path, GUARDING_POLICIES)


def _calls(record: Path) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_stdio_server_is_guarded_like_an_http_one(guarded, mode):
    parameters, record, audit = guarded
    async with Client(parameters, mode=mode) as client:
        listed = await client.list_tools()
        clean = await client.call_tool("echo", {"text": "over stdio"})
        redacted = await client.call_tool("contact", {"name": "Ann"})
        with pytest.raises(MCPError) as blocked_call:
            await client.call_tool("capsem_block_files", {})
        with pytest.raises(MCPError) as blocked_result:
            await client.call_tool("summarize", {"url": "https://docs.example.org"})
        with pytest.raises(MCPError) as invalid:
            await client.call_tool("add", {"a": "one", "b": 2})
    names = {tool.name for tool in listed.tools}
    assert "echo" in names and "capsem_block_files" not in names
    assert clean.content[0].text == "over stdio"
    assert redacted.content[0].text == "Ann can be reached at [REDACTED:email]."
    assert PII_EMAIL not in repr(redacted)
    for refused in (blocked_call, blocked_result, invalid):
        assert refused.value.error.code == -32001
        assert refused.value.error.message.startswith("Tool blocked by security policy: ")
    assert INJECTION not in blocked_result.value.error.message
    tools_called = [call["tool"] for call in _calls(record)]
    assert tools_called == ["echo", "contact", "summarize"]  # never the blocked call or the invalid one

    deadline = time.monotonic() + 10
    rows: list[tuple] = []
    while time.monotonic() < deadline and not rows:
        with sqlite3.connect(audit) as db:
            rows = db.execute(
                "SELECT provider, operation, verdict, session_id FROM decisions WHERE verdict = 'BLOCK'"
            ).fetchall()
        time.sleep(0.1)
    assert rows and {row[0] for row in rows} == {"mcp:local"}
    assert all(row[3].startswith("mcp-stdio-") for row in rows)


async def test_garbage_from_the_client_gets_a_parse_error_and_the_session_goes_on(tmp_path):
    # The framing of stdio, not the screening: one cheap policy, so that start-up (the first answer's
    # wait) does not load the detectors' tables.
    parameters, _, _ = _stdio_command(tmp_path, [{"class": "tool_rules"}])
    process = await asyncio.create_subprocess_exec(
        parameters.command, *parameters.args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env=parameters.env, cwd=parameters.cwd,
    )
    assert process.stdin is not None and process.stdout is not None
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}
    process.stdin.write(b"{not json\n" + json.dumps(initialize).encode() + b"\n")
    await process.stdin.drain()
    first = json.loads(await asyncio.wait_for(process.stdout.readline(), 60))  # after start-up
    second = json.loads(await asyncio.wait_for(process.stdout.readline(), 20))
    process.stdin.close()
    assert await asyncio.wait_for(process.wait(), 20) == 0
    assert first["id"] is None and first["error"]["code"] == -32700
    assert second["id"] == 1 and second["result"]["serverInfo"]["name"] == "fake-mcp"
