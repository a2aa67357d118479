"""What the MCP integration tests share: the official client through the proxy, raw JSON-RPC over
HTTP, and a read of the admin API."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

__all__ = ["ADMIN_TOKEN", "admin_get", "audit_rows", "connect", "initialize", "jsonrpc", "sse_messages"]

ADMIN_TOKEN = "admin-token-for-the-mcp-tests-0123"
LEGACY_VERSION = "2025-11-25"


@contextlib.asynccontextmanager
async def connect(
    url: str, mode: str = "legacy", *, key: str | None = None, headers: dict[str, str] | None = None, **options: Any
) -> AsyncIterator[Client]:
    """The official MCP client connected to `url` (with `authorization: Bearer key` when given)."""
    headers = {**(headers or {}), **({"authorization": f"Bearer {key}"} if key else {})}
    transport = streamable_http_client(url, http_client=create_mcp_http_client(headers=headers))
    async with Client(transport, mode=mode, **options) as client:
        yield client


def jsonrpc(method: str, params: dict[str, Any] | None = None, request_id: Any = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params or {}}
    if request_id is not None:
        message["id"] = request_id
    return message


def sse_messages(text: str) -> list[dict[str, Any]]:
    """The JSON-RPC messages of an SSE body, in order (events without data skipped)."""
    messages = []
    for event in text.replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(line[5:].lstrip() for line in event.split("\n") if line.startswith("data:"))
        if data.strip():
            messages.append(orjson.loads(data))
    return messages


def answer_messages(response: httpx.Response) -> list[dict[str, Any]]:
    """The JSON-RPC messages of an answer, JSON or SSE."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return sse_messages(response.text)
    document = response.json()
    return document if isinstance(document, list) else [document]


def initialize(http: httpx.Client, url: str, version: str = LEGACY_VERSION, **headers: str) -> str:
    """Open a session with raw HTTP (initialize, then initialized); returns the session id the proxy gave."""
    params = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "raw-test", "version": "1"}}
    base = {"accept": "application/json, text/event-stream", **headers}
    opened = http.post(url, json=jsonrpc("initialize", params), headers=base)
    assert opened.status_code == 200, opened.text
    session = opened.headers["mcp-session-id"]
    done = http.post(url, json=jsonrpc("notifications/initialized", request_id=None),
                     headers={**base, "mcp-session-id": session, "mcp-protocol-version": version})
    assert done.status_code == 202, done.text
    return session


def audit_rows(base_url: str, table: str, matches: Any, timeout: float = 10.0, **params: Any) -> list[dict[str, Any]]:
    """The rows of `/admin/{table}` that `matches` accepts, waiting for the audit writer (it batches)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = [row for row in admin_get(base_url, f"/admin/{table}", **params)[table] if matches(row)]
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def admin_get(base_url: str, path: str, **params: Any) -> Any:
    response = httpx.get(f"{base_url}{path}", params=params, headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    response.raise_for_status()
    return response.json()
