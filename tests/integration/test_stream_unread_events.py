"""Streams under the default policy, which reads no answer text but screens the tool calls the
model emits: events that hold no call go out unread and untouched, the token counts are still
recorded, and a call is screened however the provider's bytes are cut (its marker split across
two reads too), in every streamed format, over raw HTTP."""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from capsem_proxy.audit import AuditQuery
from capsem_proxy.audit.tools import open_reader
from tests.proxy_process import ProxyProcess, start_proxy

GEMINI_PATH = "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
FORMATS = {
    "openai-chat": ("/v1/chat/completions", {"model": "m", "stream": True, "stream_options": {"include_usage": True},
                                             "messages": [{"role": "user", "content": "hi"}]},
                    {"authorization": "Bearer sk-test"}),
    "openai-responses": ("/v1/responses", {"model": "m", "stream": True, "input": "hi"},
                         {"authorization": "Bearer sk-test"}),
    "anthropic": ("/v1/messages", {"model": "claude-x", "max_tokens": 100, "stream": True,
                                   "messages": [{"role": "user", "content": "hi"}]},
                  {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}),
    "gemini-sse": (f"{GEMINI_PATH}?alt=sse", {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
                   {"x-goog-api-key": "AIza-test"}),
    "gemini-array": (GEMINI_PATH, {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
                     {"x-goog-api-key": "AIza-test"}),
}
# One event per write, one byte per write (every marker split), the whole stream in one write, random cuts.
CHUNKINGS = [{}, {"rechunk": "bytes"}, {"rechunk": "whole"}, {"rechunk": "random", "rechunk_seed": 1},
             {"rechunk": "random", "rechunk_seed": 2}, {"rechunk": "random", "rechunk_seed": 3}]
CHUNKING_IDS = ["events", "bytes", "whole", "random1", "random2", "random3"]
TOOLS = {
    "openai-chat": {"tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]},
    "openai-responses": {"tools": [{"type": "function", "name": "get_weather", "parameters": {}}]},
    "anthropic": {"tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]},
    "gemini-sse": {"tools": [{"functionDeclarations": [{"name": "get_weather"}]}]},
    "gemini-array": {"tools": [{"functionDeclarations": [{"name": "get_weather"}]}]},
}
EMITTED_BLOCK = "Tool blocked by security policy: Detected 'capsem_block' in tool name"
# What differs between two answers of the fake provider to the same request: ids, clocks and OpenAI's padding.
_VARYING = re.compile(
    rb'"(?:id|item_id|call_id|responseId|created|created_at|completed_at|obfuscation)": ?("[^"]*"|\d+)')


@pytest.fixture(scope="module")
def default_proxy(fake_provider) -> Iterator[tuple[ProxyProcess, str]]:
    directory = Path(tempfile.mkdtemp(prefix="capsem-unread-"))
    url = f"sqlite:///{directory / 'audit.db'}"
    process = start_proxy(fake_provider.base_url, {"audit": {"url": url, "flush_interval_ms": 20}})
    yield process, url
    process.stop()
    shutil.rmtree(directory, ignore_errors=True)


def _post(base_url: str, kind: str, scenario: dict[str, Any], tools: bool = False) -> httpx.Response:
    path, body, headers = FORMATS[kind]
    body = {**body, **TOOLS[kind]} if tools else body
    headers = {**headers, "x-fake-scenario": orjson.dumps(scenario).decode()}
    response = httpx.post(f"{base_url}{path}", json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response


def _documents(kind: str, body: bytes) -> list[dict[str, Any]]:
    if kind == "gemini-array":
        return orjson.loads(body)
    return [orjson.loads(line[5:]) for line in body.splitlines()
            if line.startswith(b"data:") and line[5:].strip() != b"[DONE]"]


def _reported_usage(kind: str, body: bytes) -> tuple[int | None, int | None]:
    """The last input and output token counts the stream reported, as its client reads them."""
    counts: list[int | None] = [None, None]

    def take(usage: Any, input_key: str, output_key: str) -> None:
        if isinstance(usage, dict):
            for slot, key in ((0, input_key), (1, output_key)):
                if usage.get(key) is not None:
                    counts[slot] = usage[key]

    for document in _documents(kind, body):
        if kind == "openai-chat":
            take(document.get("usage"), "prompt_tokens", "completion_tokens")
        elif kind == "openai-responses":
            take((document.get("response") or {}).get("usage"), "input_tokens", "output_tokens")
        elif kind == "anthropic":
            take((document.get("message") or {}).get("usage"), "input_tokens", "output_tokens")
            take(document.get("usage"), "input_tokens", "output_tokens")
        else:
            take(document.get("usageMetadata"), "promptTokenCount", "candidatesTokenCount")
    return counts[0], counts[1]


def _request_row(url: str, request_id: str) -> dict[str, Any]:
    async def read() -> list[dict[str, Any]]:
        reader = open_reader(url)
        await reader.open()
        try:
            return await reader.query_requests(AuditQuery(request_id=request_id))
        finally:
            await reader.close()

    deadline = time.monotonic() + 10
    while True:
        try:
            rows = asyncio.run(read())
        except Exception:  # the store may not exist before the first batch
            rows = []
        if rows or time.monotonic() > deadline:
            [row] = rows
            return row
        time.sleep(0.05)


@pytest.mark.parametrize("chunking", CHUNKINGS, ids=CHUNKING_IDS)
@pytest.mark.parametrize("kind", list(FORMATS))
def test_an_emitted_tool_call_is_screened_however_the_bytes_are_cut(default_proxy, kind, chunking):
    proxy, _ = default_proxy
    scenario = {"tool_call": True, "tool_name": "capsem_block_tool", "chunk_size": 4, **chunking}
    body = _post(proxy.base_url, kind, scenario, tools=True).content
    head, found, _ = body.partition(EMITTED_BLOCK.encode())
    assert found, body[-400:]
    assert b"capsem_block_tool" not in head  # no byte of the call went out before the block


@pytest.mark.parametrize("chunking", CHUNKINGS, ids=CHUNKING_IDS)
@pytest.mark.parametrize("kind", list(FORMATS))
def test_an_allowed_stream_arrives_as_sent_with_its_token_counts_recorded(default_proxy, fake_provider, kind,
                                                                          chunking):
    proxy, url = default_proxy
    for tools, scenario in ((False, {"reply": "The sea is wide and deep. " * 12, "chunk_size": 9}),
                            (True, {"tool_call": True, "tool_name": "get_weather"})):
        scenario = {**scenario, **chunking}
        response = _post(proxy.base_url, kind, scenario, tools=tools)
        direct = _post(fake_provider.base_url, kind, scenario, tools=tools)
        assert _VARYING.sub(b"", response.content) == _VARYING.sub(b"", direct.content)
        row = _request_row(url, response.headers["x-capsem-request-id"])
        reported = _reported_usage(kind, response.content)
        assert None not in reported
        assert (row["input_tokens"], row["output_tokens"]) == reported
