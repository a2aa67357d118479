"""Capture the request bodies the real SDKs send, as fixtures for the adapter tests.

Also holds the few helpers the adapter tests share (`load_fixture`, `sse`, `assemble`).

Run with `python -m tests.providers.capture_fixtures`: it starts a tiny recording HTTP server
on 127.0.0.1, points the installed openai, anthropic and google-genai SDKs at it, makes one
call per scenario and writes `tests/providers/fixtures/<name>.json` holding the method,
path, query, the headers that carry keys, the parsed JSON body and the SDK version.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from capsem_proxy.streaming.events import (
    Delta,
    ErrorDelta,
    FinishDelta,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    UsageDelta,
)

__all__ = ["PNG_BYTES", "assemble", "load_fixture", "main", "sse"]

FIXTURES = Path(__file__).with_name("fixtures")
PNG_BYTES = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
_KEPT_HEADERS = ("authorization", "x-api-key", "x-goog-api-key", "content-type", "accept")


def load_fixture(name: str) -> dict[str, Any]:
    """A captured request: {"sdk", "sdk_version", "method", "path", "query", "headers", "body"}."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def sse(event: str | None, data: Any) -> StreamEvent:
    """A StreamEvent as the SSE reader would produce it (data given as an object or raw text)."""
    text = data if isinstance(data, str) else json.dumps(data)
    raw = (f"event: {event}\n" if event else "") + f"data: {text}\n\n"
    return StreamEvent(raw=raw.encode(), data=text, event=event)


def assemble(deltas: list[Delta]) -> dict[str, Any]:
    """Put deltas together the way a consumer would: text, thinking, tool calls by index, ..."""
    out: dict[str, Any] = {"text": "", "thinking": "", "calls": {}, "finish": [], "usage": [], "errors": []}
    for delta in deltas:
        if isinstance(delta, TextDelta):
            out["text"] += delta.text
        elif isinstance(delta, ThinkingDelta):
            out["thinking"] += delta.text
        elif isinstance(delta, ToolCallDelta):
            call = out["calls"].setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] = call["id"] or delta.call_id
            call["name"] = call["name"] or delta.name
            call["arguments"] += delta.arguments_fragment
        elif isinstance(delta, FinishDelta):
            out["finish"].append(delta.reason)
        elif isinstance(delta, UsageDelta):
            out["usage"].append((delta.input_tokens, delta.output_tokens))
        elif isinstance(delta, ErrorDelta):
            out["errors"].append(delta.message)
    return out


def _sse(events: list[tuple[str | None, dict[str, Any] | str]], sep: str = "\n") -> bytes:
    out = []
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        out.append((f"event: {name}{sep}" if name else "") + f"data: {text}{sep}{sep}")
    return "".join(out).encode()


_CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 0,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
_CHAT_CHUNK = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4o-mini"}
_RESPONSE = {
    "id": "resp_1",
    "object": "response",
    "created_at": 0,
    "status": "completed",
    "model": "gpt-4o-mini",
    "output": [
        {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "ok", "annotations": []}],
        }
    ],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2},
}
_ANTHROPIC_MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-6",
    "content": [{"type": "text", "text": "ok"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 1, "output_tokens": 1},
}
_GEMINI = {
    "candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP", "index": 0}],
    "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2},
    "modelVersion": "gemini-2.0-flash",
}


def _answer(path: str, body: dict[str, Any]) -> tuple[str, bytes]:
    """A canned answer good enough for each SDK to finish its call."""
    stream = bool(body.get("stream"))
    if path.endswith("/chat/completions"):
        if not stream:
            return "application/json", json.dumps(_CHAT).encode()
        chunks = [
            {**_CHAT_CHUNK, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "ok"}}]},
            {**_CHAT_CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {**_CHAT_CHUNK, "choices": [], "usage": _CHAT["usage"]},
        ]
        return "text/event-stream", _sse([*((None, c) for c in chunks), (None, "[DONE]")])
    if path.endswith("/responses"):
        if not stream:
            return "application/json", json.dumps(_RESPONSE).encode()
        done = {"type": "response.completed", "sequence_number": 1, "response": _RESPONSE}
        return "text/event-stream", _sse([("response.completed", done)])
    if path.endswith("/embeddings"):
        data = {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.0, 1.0]}]}
        return "application/json", json.dumps({**data, "model": "m", "usage": {"prompt_tokens": 1}}).encode()
    if path.endswith("/messages"):
        if not stream:
            return "application/json", json.dumps(_ANTHROPIC_MESSAGE).encode()
        start = {**_ANTHROPIC_MESSAGE, "content": [], "stop_reason": None}
        return "text/event-stream", _sse(
            [
                ("message_start", {"type": "message_start", "message": start}),
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                ),
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ok"}},
                ),
                ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                (
                    "message_delta",
                    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}},
                ),
                ("message_stop", {"type": "message_stop"}),
            ]
        )
    if path.endswith(":streamGenerateContent"):
        return "text/event-stream", _sse([(None, _GEMINI)], sep="\r\n")
    if path.endswith(":generateContent"):
        return "application/json", json.dumps(_GEMINI).encode()
    return "application/json", b"{}"


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    records: list[dict[str, Any]]

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        body = json.loads(raw) if raw else None
        url = urlsplit(self.path)
        headers = {name: self.headers[name] for name in _KEPT_HEADERS if self.headers.get(name) is not None}
        self.records.append(
            {"method": "POST", "path": url.path, "query": dict(parse_qsl(url.query)), "headers": headers, "body": body}
        )
        content_type, answer = _answer(url.path, body if isinstance(body, dict) else {})
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _openai_scenarios(base_url: str) -> dict[str, Callable[[], Any]]:
    import openai

    client = openai.OpenAI(api_key="sk-test-capsem", base_url=base_url + "/v1", max_retries=0)
    data_url = "data:image/png;base64," + base64.b64encode(PNG_BYTES).decode()
    weather_tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }

    def stream_chat() -> None:
        for _ in client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Count to three"}],
            stream=True,
            stream_options={"include_usage": True},
        ):
            pass

    def stream_responses() -> None:
        for _ in client.responses.create(model="gpt-4o-mini", input="Hi", stream=True):
            pass

    return {
        "openai_chat_plain": lambda: client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}],
        ),
        "openai_chat_image": lambda: client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in this image?"},
                        {"type": "image_url", "image_url": {"url": data_url, "detail": "low"}},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                    ],
                }
            ],
        ),
        "openai_chat_tools": lambda: client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[weather_tool],
            tool_choice="auto",
        ),
        "openai_chat_tool_history": lambda: client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_abc",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_abc", "content": '{"temperature_c": 21, "sky": "clear"}'},
            ],
            tools=[weather_tool],
        ),
        "openai_chat_stream": stream_chat,
        "openai_chat_developer": lambda: client.chat.completions.create(
            model="o3-mini",
            messages=[
                {"role": "developer", "content": "Answer in French."},
                {"role": "user", "content": [{"type": "text", "text": "Good morning"}]},
            ],
        ),
        "openai_responses_string": lambda: client.responses.create(model="gpt-4o-mini", input="Tell me a joke"),
        "openai_responses_items": lambda: client.responses.create(
            model="gpt-4o-mini",
            instructions="You are a weather bot.",
            input=[
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "type": "function_call",
                    "call_id": "call_w1",
                    "name": "get_weather",
                    "arguments": '{"city":"Paris"}',
                },
                {"type": "function_call_output", "call_id": "call_w1", "output": '{"temperature_c": 21}'},
            ],
        ),
        "openai_responses_tools": lambda: client.responses.create(
            model="gpt-4o-mini",
            input=[
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "Look at this and check the weather"},
                        {"type": "input_image", "image_url": data_url, "detail": "auto"},
                    ],
                }
            ],
            tools=[
                {
                    "type": "function",
                    "name": "get_weather",
                    "description": "Current weather in a city",
                    "parameters": weather_tool["function"]["parameters"],
                    "strict": False,
                },
                {"type": "web_search"},
            ],
        ),
        "openai_responses_stream": stream_responses,
        "openai_embeddings": lambda: client.embeddings.create(
            model="text-embedding-3-small", input=["first text", "second text"]
        ),
    }


def _anthropic_scenarios(base_url: str) -> dict[str, Callable[[], Any]]:
    import anthropic

    client = anthropic.Anthropic(api_key="sk-ant-test-capsem", base_url=base_url, max_retries=0)
    model = "claude-sonnet-4-6"
    weather_tool = {
        "name": "get_weather",
        "description": "Current weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }

    def stream() -> None:
        with client.messages.stream(
            model=model, max_tokens=64, messages=[{"role": "user", "content": "Stream please"}]
        ) as events:
            for _ in events:
                pass

    return {
        "anthropic_plain": lambda: client.messages.create(
            model=model, max_tokens=64, messages=[{"role": "user", "content": "Hello Claude"}]
        ),
        "anthropic_system_blocks": lambda: client.messages.create(
            model=model,
            max_tokens=64,
            system=[
                {"type": "text", "text": "You are terse."},
                {"type": "text", "text": "Never use emoji.", "cache_control": {"type": "ephemeral"}},
            ],
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Describe this"},
                        {
                            "type": "image",
                            "source": {
                                "type": "base64",
                                "media_type": "image/png",
                                "data": base64.b64encode(PNG_BYTES).decode(),
                            },
                        },
                    ],
                }
            ],
        ),
        "anthropic_tools_history": lambda: client.messages.create(
            model=model,
            max_tokens=64,
            tools=[weather_tool, {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}],
            messages=[
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "Let me check."},
                        {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_01",
                            "content": [{"type": "text", "text": "21C and sunny"}],
                        },
                        {"type": "text", "text": "And tomorrow?"},
                    ],
                },
            ],
        ),
        "anthropic_thinking": lambda: client.messages.create(
            model=model,
            max_tokens=2048,
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[
                {"role": "user", "content": "What is 2+2?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "Simple addition.", "signature": "sig123"},
                        {"type": "redacted_thinking", "data": "ZW5jcnlwdGVk"},
                        {"type": "text", "text": "4"},
                    ],
                },
                {"role": "user", "content": "And 3+3?"},
            ],
        ),
        "anthropic_stream": stream,
        "anthropic_count_tokens": lambda: client.messages.count_tokens(
            model=model, system="Be brief.", messages=[{"role": "user", "content": "Count me"}]
        ),
    }


def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"sunny in {city}"


def _gemini_scenarios(base_url: str) -> dict[str, Callable[[], Any]]:
    from google import genai
    from google.genai import types

    client = genai.Client(api_key="AIza-test-capsem", http_options=types.HttpOptions(base_url=base_url))
    model = "gemini-2.0-flash"
    no_afc = types.AutomaticFunctionCallingConfig(disable=True)
    declaration = {
        "name": "get_time",
        "description": "Current time in a timezone",
        "parameters": {"type": "OBJECT", "properties": {"tz": {"type": "STRING"}}, "required": ["tz"]},
    }

    def stream() -> None:
        for _ in client.models.generate_content_stream(model=model, contents="Stream a poem"):
            pass

    return {
        "gemini_plain": lambda: client.models.generate_content(model=model, contents="Hello Gemini"),
        "gemini_system": lambda: client.models.generate_content(
            model=model,
            contents=[
                types.Part.from_text(text="Describe this"),
                types.Part.from_bytes(data=PNG_BYTES, mime_type="image/png"),
            ],
            config=types.GenerateContentConfig(system_instruction="You are a pirate.", temperature=0.2),
        ),
        "gemini_tools": lambda: client.models.generate_content(
            model=model,
            contents="Weather in Paris and time in Tokyo?",
            config=types.GenerateContentConfig(
                tools=[get_weather, types.Tool(function_declarations=[declaration])],
                automatic_function_calling=no_afc,
            ),
        ),
        "gemini_function_response": lambda: client.models.generate_content(
            model=model,
            contents=[
                types.Content(role="user", parts=[types.Part.from_text(text="Weather in Paris?")]),
                types.Content(
                    role="model",
                    parts=[types.Part.from_function_call(name="get_weather", args={"city": "Paris"})],
                ),
                types.Content(
                    role="user",
                    parts=[types.Part.from_function_response(name="get_weather", response={"result": "sunny"})],
                ),
            ],
            config=types.GenerateContentConfig(tools=[get_weather], automatic_function_calling=no_afc),
        ),
        "gemini_stream": stream,
        "gemini_count_tokens": lambda: client.models.count_tokens(model=model, contents="How many tokens?"),
    }


def main() -> None:
    """Capture every scenario and write the fixtures."""
    records: list[dict[str, Any]] = []
    handler = type("Handler", (_Recorder,), {"records": records})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    FIXTURES.mkdir(exist_ok=True)
    groups = [
        ("openai", _openai_scenarios(base_url)),
        ("anthropic", _anthropic_scenarios(base_url)),
        ("google-genai", _gemini_scenarios(base_url)),
    ]
    try:
        for sdk, scenarios in groups:
            for name, call in scenarios.items():
                records.clear()
                call()
                record = {"sdk": sdk, "sdk_version": version(sdk), **records[-1]}
                (FIXTURES / f"{name}.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
                print(f"wrote {name}.json")
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
