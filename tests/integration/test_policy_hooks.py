"""Each hook is called with CAPSEM's arguments, for each provider, streamed and not; policies
that crash or overrun their budget fail closed unless configured to fail open."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.proxy_process import start_proxy

REPO_ROOT = Path(__file__).resolve().parents[2]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
WEATHER = {"type": "object", "properties": {"location": {"type": "string"}}}


@pytest.fixture(scope="module")
def recording(fake_provider, tmp_path_factory):
    record_path = tmp_path_factory.mktemp("hooks") / "hooks.jsonl"
    config = {"policies": [{"class": "tests.integration.policies.RecordingPolicy",
                            "options": {"path": str(record_path)}}]}
    process = start_proxy(fake_provider.base_url, config, env={"PYTHONPATH": str(REPO_ROOT)})
    yield process, record_path
    process.stop()


def _calls(record_path: Path, request_id: str, expected_hooks: set[str]) -> list[dict]:
    deadline = time.monotonic() + 5
    calls: list[dict] = []
    while time.monotonic() < deadline:
        lines = record_path.read_text().splitlines() if record_path.exists() else []
        calls = [call for call in map(json.loads, lines) if call["invocation_id"] == request_id]
        if expected_hooks <= {call["hook"] for call in calls}:
            return calls
        time.sleep(0.05)
    raise AssertionError(f"hooks {expected_hooks} not all seen: {calls}")


def _one(calls: list[dict], hook: str, **match) -> dict:
    found = [c for c in calls if c["hook"] == hook and all(c.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (hook, match, calls)
    return found[0]


def test_openai_chat_hooks_get_capsem_arguments(recording, fake_provider):
    proxy, record_path = recording
    body = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "What is in this image?"},
                                         {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]},
            {"role": "assistant", "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"location":"Oslo"}'}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 3}'},
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "weather",
                                                    "parameters": WEATHER}}],
    }
    response = httpx.post(f"{proxy.base_url}/v1/chat/completions", json=body,
                          headers={"authorization": "Bearer sk-hooks", "x-capsem-agent-id": "travel-agent"})
    assert response.status_code == 200
    request_id = response.headers["x-capsem-request-id"]
    calls = _calls(record_path, request_id, {"on_model_call", "on_tool_call", "on_tool_response", "on_model_response"})
    model_call = _one(calls, "on_model_call")
    assert model_call["model_name"] == "gpt-4o-mini"
    assert model_call["system_instructions"] == "Be brief."
    # The prompt a CAPSEM policy reads holds every request text without a hook of its own: the
    # history's tool call (name and arguments as sent) included.
    assert model_call["prompt"] == 'What is in this image?\nget_weather\n{"location":"Oslo"}'
    assert model_call["media"] == ["image/png"]
    assert model_call["agent"] == "travel-agent"
    assert model_call["tools"] == ["get_weather"]
    assert _one(calls, "on_tool_call", tool="get_weather")["args"] == {}
    assert _one(calls, "on_tool_response", tool="get_weather")["response"] == {"temp": 3}
    assert _one(calls, "on_model_response")["response"] == "Hello from the fake provider."


@pytest.mark.parametrize("stream", [False, True])
def test_openai_emitted_tool_call_reaches_on_tool_call_with_assembled_args(recording, fake_provider, stream):
    proxy, record_path = recording
    fake_provider.script(tool_call=True, tool_args={"location": "Paris", "unit": "celsius"})
    body = {"model": "m", "stream": stream, "messages": [{"role": "user", "content": "weather?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]}
    response = httpx.post(f"{proxy.base_url}/v1/chat/completions", json=body, headers={"authorization": "Bearer k"})
    assert response.status_code == 200
    calls = _calls(record_path, response.headers["x-capsem-request-id"], {"on_tool_call", "on_model_response"})
    emitted = [c for c in calls if c["hook"] == "on_tool_call" and c["args"]]
    assert [c["args"] for c in emitted] == [{"location": "Paris", "unit": "celsius"}]


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_hooks(recording, fake_provider, stream):
    proxy, record_path = recording
    body = {
        "model": "claude-x", "max_tokens": 50, "stream": stream,
        "system": [{"type": "text", "text": "You are terse."}],
        "messages": [
            {"role": "user", "content": "Look this up"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "tu_1", "name": "search",
                                               "input": {"q": "capsem"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu_1", "content": "found it"},
                                         {"type": "text", "text": "Summarise"}]},
        ],
        "tools": [{"name": "search", "description": "web search", "input_schema": {"type": "object"}}],
    }
    response = httpx.post(f"{proxy.base_url}/v1/messages", json=body,
                          headers={"x-api-key": "sk-ant-k", "anthropic-version": "2023-06-01"})
    assert response.status_code == 200
    calls = _calls(record_path, response.headers["x-capsem-request-id"],
                   {"on_model_call", "on_tool_call", "on_tool_response", "on_model_response"})
    model_call = _one(calls, "on_model_call")
    assert model_call["system_instructions"] == "You are terse."
    assert "Look this up" in model_call["prompt"] and "Summarise" in model_call["prompt"]
    assert _one(calls, "on_tool_response", tool="search")["response"] == {"content": "found it"}
    assert _one(calls, "on_model_response")["response"] == "Hello from the fake provider."


@pytest.mark.parametrize("path", [":generateContent", ":streamGenerateContent?alt=sse", ":streamGenerateContent"])
def test_gemini_hooks(recording, fake_provider, path):
    proxy, record_path = recording
    body = {
        "systemInstruction": {"parts": [{"text": "Answer in French."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Weather in Lyon?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"location": "Lyon"}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 12}}}]},
        ],
        "tools": [{"functionDeclarations": [{"name": "get_weather", "parameters": WEATHER}]}],
    }
    response = httpx.post(f"{proxy.base_url}/v1beta/models/gemini-2.0-flash{path}", json=body,
                          headers={"x-goog-api-key": "AIza-k"})
    assert response.status_code == 200
    calls = _calls(record_path, response.headers["x-capsem-request-id"],
                   {"on_model_call", "on_tool_call", "on_tool_response", "on_model_response"})
    model_call = _one(calls, "on_model_call")
    assert (model_call["model_name"], model_call["system_instructions"]) == ("gemini-2.0-flash", "Answer in French.")
    assert model_call["prompt"] == 'Weather in Lyon?\nget_weather\n{"location":"Lyon"}'
    assert _one(calls, "on_tool_response", tool="get_weather")["response"] == {"temp": 12}
    assert _one(calls, "on_model_response")["response"] == "Hello from the fake provider."


def test_responses_api_string_input_is_the_prompt(recording, fake_provider):
    proxy, record_path = recording
    response = httpx.post(f"{proxy.base_url}/v1/responses",
                          json={"model": "gpt-4.1", "input": "Tell me a joke", "instructions": "Be funny"},
                          headers={"authorization": "Bearer k"})
    assert response.status_code == 200
    model_call = _one(_calls(record_path, response.headers["x-capsem-request-id"], {"on_model_call"}), "on_model_call")
    assert (model_call["prompt"], model_call["system_instructions"]) == ("Tell me a joke", "Be funny")


@pytest.fixture(scope="module")
def failing_proxies(fake_provider):
    env = {"PYTHONPATH": str(REPO_ROOT)}
    closed = start_proxy(fake_provider.base_url, {"policies": [
        {"class": "tests.integration.policies.RaisingPolicy"},
        {"class": "tests.integration.policies.SlowPolicy", "timeout_ms": 100, "options": {"seconds": 3600}},
    ]}, env=env)
    opened = start_proxy(fake_provider.base_url, {"policies": [
        {"class": "tests.integration.policies.RaisingPolicy", "fail_open": True},
        {"class": "tests.integration.policies.SlowPolicy", "timeout_ms": 100, "fail_open": True,
         "options": {"seconds": 3600}},
    ]}, env=env)
    yield closed, opened
    closed.stop()
    opened.stop()


def test_crashing_and_slow_policies_fail_closed_by_default(failing_proxies, fake_provider):
    closed, _ = failing_proxies
    started = time.monotonic()
    response = httpx.post(f"{closed.base_url}/v1/chat/completions",
                          json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                          headers={"authorization": "Bearer k"}, timeout=120)
    assert time.monotonic() - started < 60  # the slow policy waits an hour unless its 100 ms budget cuts it
    assert response.status_code == 403
    detail = response.json()["detail"]
    assert detail.startswith("Request blocked by security policy: policy 'Raiser' failed (RuntimeError)")
    assert "policy bug" not in response.text and "Traceback" not in response.text
    assert fake_provider.requests() == []


def test_crashing_and_slow_policies_pass_when_configured_fail_open(failing_proxies, fake_provider):
    _, opened = failing_proxies
    response = httpx.post(f"{opened.base_url}/v1/chat/completions",
                          json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                          headers={"authorization": "Bearer k"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["x-capsem-decision-id"]  # the LOG decisions are recorded
    assert orjson.loads(response.content)["choices"]


def test_a_capsem_prompt_holds_every_request_text_without_a_hook_of_its_own(recording, fake_provider):
    proxy, record_path = recording
    document = base64.b64encode(b"Quarterly numbers: up 4%").decode()
    body = {
        "model": "claude-x", "max_tokens": 50, "metadata": {"user_id": "team-blue"},
        "messages": [
            {"role": "user", "content": [
                {"type": "document", "title": "Plan", "source": {"type": "text", "media_type": "text/plain",
                                                                  "data": "Ship on Friday"}},
                {"type": "document", "source": {"type": "base64", "media_type": "text/plain", "data": document}},
                {"type": "text", "text": "Summarise"},
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "They want a summary", "signature": "c2ln"},
                {"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {"query": "ship dates"}},
                {"type": "web_search_tool_result", "tool_use_id": "srv_1", "content": [
                    {"type": "web_search_result", "title": "Dates", "url": "https://d.example",
                     "encrypted_content": base64.b64encode(bytes(range(96))).decode()}
                ]},
            ]},
            {"role": "user", "content": "Go on"},
        ],
    }
    response = httpx.post(f"{proxy.base_url}/v1/messages", json=body,
                          headers={"x-api-key": "sk-ant-k", "anthropic-version": "2023-06-01"})
    assert response.status_code == 200
    calls = _calls(record_path, response.headers["x-capsem-request-id"], {"on_model_call", "on_tool_response"})
    prompt = _one(calls, "on_model_call")["prompt"]
    for text in ("Plan", "Ship on Friday", "Summarise", "They want a summary", "Go on", "Quarterly numbers: up 4%",
                 "web_search", '{"query":"ship dates"}', "team-blue"):
        assert text in prompt, text
    # The provider's own tool's result is a tool result, as the client's are.
    assert _one(calls, "on_tool_response", tool="web_search")["response"] == {"content": "Dates\nhttps://d.example"}
