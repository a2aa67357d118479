"""The limits table of docs/security.md says what the configuration does: each row's default is
the setting's default, and every limit the configuration has is in the table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from capsem_proxy.config import MAX_TOOLS_HARD_LIMIT, PolicySettings, Settings
from capsem_proxy.mcp.settings import McpServerSettings

DOC = Path(__file__).resolve().parents[1] / "docs" / "security.md"
# Every setting that bounds work, memory, time or the audit trail: each must have a row.
LIMITS = {
    "server.max_body_bytes", "server.max_header_bytes", "server.max_headers", "server.header_timeout",
    "server.body_timeout", "server.keep_alive_timeout", "server.max_connections", "server.backlog",
    "server.max_tools_per_request", "providers.*.max_answer_bytes", "providers.*.read_timeout",
    "providers.*.connect_timeout", "providers.*.max_connections", "streaming.max_event_bytes",
    "streaming.max_buffer_bytes", "scanning.max_chars_per_request", "scanning.slice_chars",
    "scanning.max_concurrent_large_scans", "policies[].timeout_ms", "audit.queue_max", "audit.reserved_rows",
    "audit.max_decision_rows", "audit.max_content_chars", "audit.queue_max_content_chars",
    "mcp.servers.*.max_answer_bytes", "mcp.servers.*.read_timeout", "mcp.max_sessions",
    "mcp.max_listed_tools",
}
_ROW = re.compile(r"^\| `(?P<key>[a-z_.*\[\]]+)` \| `(?P<default>[^`]+)`(?P<rest>[^|]*)\|")


def _table() -> dict[str, tuple[Any, str]]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Limits and their defaults", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = _ROW.match(line)
        if match:
            rows[match["key"]] = (yaml.safe_load(match["default"]), match["rest"])
    return rows


def _default(key: str) -> Any:
    """The default of a dotted setting; `*` and `[]` stand for any provider, server or policy."""
    parts = key.split(".")
    model: BaseModel
    if parts[0] == "policies[]":
        model, parts = PolicySettings(**{"class": "x"}), parts[1:]
    elif parts[:2] == ["mcp", "servers"]:
        model, parts = McpServerSettings(url="http://127.0.0.1/mcp"), parts[3:]
    else:
        model = Settings()
    for part in parts:
        model = getattr(model, "openai" if part == "*" else part)
    return model


def test_every_limit_of_the_configuration_has_a_row():
    assert set(_table()) == LIMITS


def test_each_row_gives_the_settings_default(monkeypatch):
    for name in ("CAPSEM_PROXY_CONFIG", "CAPSEM_PROXY_OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    drifted = {key: (documented, _default(key)) for key, (documented, _) in _table().items()
               if documented != _default(key)}
    assert not drifted, f"docs/security.md (documented, configured): {drifted}"


def test_the_hard_limit_on_tools_is_the_one_documented():
    _, rest = _table()["server.max_tools_per_request"]
    assert f"at most {MAX_TOOLS_HARD_LIMIT:,}" in rest
