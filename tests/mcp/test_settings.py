"""The `mcp:` config section: validated at load, naming the key at fault; `${VAR}` read at start-up."""

from __future__ import annotations

import pytest

from capsem_proxy.config import ConfigError, Settings, load_settings
from capsem_proxy.mcp.settings import McpSettings, expand_variables
from capsem_proxy.mcp.upstream import McpUpstream


def _load(tmp_path, text: str) -> Settings:
    path = tmp_path / "proxy.yaml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path)


def test_servers_pins_and_blocked_tools_load(tmp_path):
    settings = _load(tmp_path, "mcp:\n  servers:\n    files: {url: 'http://127.0.0.1:9000/mcp'}\n"
                               "  pin_tools: block\n  blocked_tools: refuse\n")
    assert settings.mcp.servers["files"].url == "http://127.0.0.1:9000/mcp"
    assert settings.mcp.pin_action == "block" and settings.mcp.blocked_tools == "refuse"
    assert McpSettings().pin_action == "confirm" and McpSettings(pin_tools=False).pin_action is None


@pytest.mark.parametrize(
    ("server", "complaint"),
    [
        ("{url: 'ftp://x/mcp'}", "http:// or https://"),
        ("{url: 'http://x/mcp', headers: {host: x}}", "set by the proxy"),
        ("{url: 'http://x/mcp', headers: {'bad header': x}}", "not a valid header name"),
        ("{url: 'http://x/mcp', forward_headers: [mcp-session-id]}", "set by the proxy"),
        ("{url: 'http://x/mcp', read_timeout: 0}", "read_timeout"),
        ("{url: 'http://x/mcp', surprise: 1}", "surprise"),
    ],
)
def test_a_bad_server_is_refused_naming_its_key(tmp_path, server, complaint):
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, f"mcp:\n  servers:\n    files: {server}\n")
    assert complaint in str(refused.value) and "mcp" in str(refused.value)


def test_a_bad_server_name_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="server name"):
        _load(tmp_path, "mcp:\n  servers:\n    'a/b': {url: 'http://x/mcp'}\n")


def test_variables_are_read_at_start_up_and_a_missing_one_is_named(monkeypatch):
    monkeypatch.setenv("MCP_TEST_TOKEN", "t0ken")
    monkeypatch.delenv("MCP_TEST_MISSING", raising=False)
    assert expand_variables("Bearer ${MCP_TEST_TOKEN} costs $$5") == "Bearer t0ken costs $5"
    settings = McpSettings(servers={
        "ok": {"url": "http://x/mcp", "headers": {"authorization": "Bearer ${MCP_TEST_TOKEN}"}},
        "missing": {"url": "http://x/mcp", "headers": {"authorization": "Bearer ${MCP_TEST_MISSING}"}},
    })
    assert settings.missing_variables() == ["mcp.servers.missing.headers.authorization: ${MCP_TEST_MISSING}"]
    assert McpUpstream("ok", settings.servers["ok"]).headers == {"authorization": "Bearer t0ken"}
    with pytest.raises(ConfigError, match="MCP_TEST_MISSING"):
        McpUpstream("missing", settings.servers["missing"])
