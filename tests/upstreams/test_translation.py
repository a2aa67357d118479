"""An OpenAI client served by Anthropic and Gemini upstreams through the real proxy: requests
translated out (tools, tool results, images), answers translated back (streamed or not, tool calls
and usage) so the SDK's parsed objects hold what a native OpenAI answer gives; a chain falls over
from an OpenAI upstream to an Anthropic one."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai import OpenAI

from tests.fake_provider.process import FakeProviderProcess
from tests.proxy_process import ProxyProcess, start_proxy

pytestmark = pytest.mark.integration  # a real proxy and real fake upstreams over HTTP

REPO_ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-test-translation-0123456789"
HELLO = [{"role": "user", "content": "Say hello"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}
ARGS = {"location": "Oslo"}
TRANSLATED = ["via-claude", "via-gemini", "via-vertex"]
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG fake image").decode()


@pytest.fixture(scope="module")
def translating(primary: FakeProviderProcess, backup: FakeProviderProcess) -> Iterator[ProxyProcess]:
    base = primary.base_url
    config = {
        "upstreams": [
            {"name": "openai", "type": "openai", "base_url": base + "/v1"},
            {"name": "claude", "type": "anthropic", "base_url": base},
            {"name": "gem", "type": "gemini", "base_url": base},
            {"name": "vtx", "type": "vertex_gemini", "base_url": base, "project": "capsem", "location": "us-east1"},
            {"name": "claude-backup", "type": "anthropic", "base_url": backup.base_url},
        ],
        "models": {
            "native": ["openai:gpt-4o"],
            "via-claude": ["claude:claude-sonnet-4-5"],
            "via-gemini": ["gem:gemini-2.5-flash"],
            "via-vertex": ["vtx:gemini-2.5-flash"],
            "smart": ["openai:gpt-4o", "claude-backup:claude-sonnet-4-5"],
            "hearing": ["claude:claude-sonnet-4-5", "openai:gpt-4o"],
        },
        "retries": {"attempts": 1},
    }
    process = start_proxy(base, config)
    yield process
    process.stop()


@pytest.fixture
def client(translating: ProxyProcess) -> Iterator[OpenAI]:
    with OpenAI(base_url=translating.base_url + "/v1", api_key=KEY, max_retries=0, timeout=20) as sdk:
        yield sdk


def _sent(fake: FakeProviderProcess) -> tuple[dict, dict]:
    record = fake.last()
    assert record is not None
    headers = {name.lower(): value for name, value in record["headers"]}
    return json.loads(base64.b64decode(record["body_b64"])), {**headers, "path": record["path"]}


def _native_and(client: OpenAI, model: str, **options):
    native = client.chat.completions.create(model="native", **options)
    translated = client.chat.completions.with_raw_response.create(model=model, **options)
    return native, translated.parse(), translated.headers


@pytest.mark.parametrize("model", TRANSLATED)
def test_text_answer_reads_as_a_native_one(client, primary, model):
    native, answer, headers = _native_and(client, model, messages=HELLO)
    assert answer.choices[0].message.content == native.choices[0].message.content
    assert answer.choices[0].finish_reason == native.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.role == "assistant"
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens
    upstream = {"via-claude": "claude:claude-sonnet-4-5", "via-gemini": "gem:gemini-2.5-flash",
                "via-vertex": "vtx:gemini-2.5-flash"}[model]
    assert headers["x-capsem-upstream"] == upstream
    sent, sent_headers = _sent(primary)
    if model == "via-claude":
        assert sent_headers["path"] == "/v1/messages"
        assert sent_headers["x-api-key"] == KEY and "authorization" not in sent_headers
        assert sent_headers["anthropic-version"]
        assert sent == {"model": "claude-sonnet-4-5", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Say hello"}]}], "max_tokens": 4096}
    elif model == "via-gemini":
        assert sent_headers["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
        assert sent_headers["x-goog-api-key"] == KEY
        assert sent == {"contents": [{"role": "user", "parts": [{"text": "Say hello"}]}]}
    else:
        assert sent_headers["path"] == (
            "/v1/projects/capsem/locations/us-east1/publishers/google/models/gemini-2.5-flash:generateContent"
        )
        assert sent_headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("model", TRANSLATED)
def test_tool_call_answer_reads_as_a_native_one(client, primary, model):
    scenario = primary.scenario_header(tool_call=True, tool_args=ARGS)
    native, answer, _ = _native_and(client, model, messages=HELLO, tools=[WEATHER], extra_headers=scenario)
    [call] = answer.choices[0].message.tool_calls
    [native_call] = native.choices[0].message.tool_calls
    assert call.function.name == native_call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == json.loads(native_call.function.arguments) == ARGS
    assert call.type == "function" and call.id
    assert answer.choices[0].finish_reason == native.choices[0].finish_reason == "tool_calls"


def _streamed(client: OpenAI, model: str, **options) -> tuple[str, list, str | None, object]:
    text, calls, finish, usage = "", {}, None, None
    stream = client.chat.completions.create(
        model=model, stream=True, stream_options={"include_usage": True}, **options
    )
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
                call["id"] = delta.id or call["id"]
                if delta.function is not None:
                    call["name"] += delta.function.name or ""
                    call["arguments"] += delta.function.arguments or ""
            finish = choice.finish_reason or finish
    return text, [calls[index] for index in sorted(calls)], finish, usage


@pytest.mark.parametrize("model", TRANSLATED)
def test_streamed_text_reads_as_a_native_stream(client, primary, model):
    native = _streamed(client, "native", messages=HELLO)
    translated = _streamed(client, model, messages=HELLO)
    assert translated[0] == native[0] == "Hello from the fake provider."
    assert translated[2] == native[2] == "stop"
    assert translated[3].prompt_tokens > 0 and translated[3].completion_tokens > 0


@pytest.mark.parametrize("model", TRANSLATED)
def test_streamed_tool_call_reads_as_a_native_stream(client, primary, model):
    scenario = primary.scenario_header(tool_call=True, tool_args=ARGS)
    native = _streamed(client, "native", messages=HELLO, tools=[WEATHER], extra_headers=scenario)
    translated = _streamed(client, model, messages=HELLO, tools=[WEATHER], extra_headers=scenario)
    [call], [native_call] = translated[1], native[1]
    assert call["name"] == native_call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == json.loads(native_call["arguments"]) == ARGS
    assert call["id"]
    assert translated[2] == native[2] == "tool_calls"


CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": [
        {"type": "text", "text": "Weather here?"}, {"type": "image_url", "image_url": {"url": PNG}}]},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"location": "Oslo"}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 21}'},
]


def test_tool_results_and_images_reach_anthropic_in_its_own_shape(client, primary):
    client.chat.completions.create(model="via-claude", messages=CONVERSATION, tools=[WEATHER], max_tokens=50)
    sent, _ = _sent(primary)
    assert sent["system"] == "You are terse."
    assert sent["max_tokens"] == 50
    assert sent["tools"] == [{"name": "get_weather", "description": "Weather for a city",
                              "input_schema": WEATHER["function"]["parameters"]}]
    user, assistant, result = sent["messages"]
    assert user["content"][1] == {"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": PNG.split(",", 1)[1]}}
    assert assistant["content"] == [{"type": "tool_use", "id": "call_1", "name": "get_weather", "input": ARGS}]
    assert result == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call_1", "content": '{"temperature": 21}'}]}


def test_tool_results_and_images_reach_gemini_in_its_own_shape(client, primary):
    client.chat.completions.create(model="via-gemini", messages=CONVERSATION, tools=[WEATHER])
    sent, _ = _sent(primary)
    assert sent["systemInstruction"] == {"parts": [{"text": "You are terse."}]}
    assert sent["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"
    user, model_turn, result = sent["contents"]
    assert user["parts"][1] == {"inlineData": {"mimeType": "image/png", "data": PNG.split(",", 1)[1]}}
    assert model_turn == {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": ARGS}}]}
    assert result == {"role": "user", "parts": [
        {"functionResponse": {"name": "get_weather", "response": {"temperature": 21}}}]}


def test_upstream_error_comes_back_in_openai_shape(client, primary):
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(
            model="via-claude", messages=HELLO, extra_headers=primary.scenario_header(rate_limit=True)
        )
    assert caught.value.status_code == 429
    assert caught.value.body["message"]


def test_chain_falls_over_from_openai_to_anthropic(client, primary, backup):
    primary.script(overloaded=True)
    raw = client.chat.completions.with_raw_response.create(model="smart", messages=HELLO, tools=[WEATHER])
    assert raw.headers["x-capsem-upstream"] == "claude-backup:claude-sonnet-4-5"
    assert raw.parse().choices[0].message.content == "Hello from the fake provider."
    assert [record["path"] for record in backup.requests()] == ["/v1/messages"]


def test_policies_run_once_on_the_client_request(client, primary):
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="via-claude", messages=[{"role": "user", "content": "capsem_block"}])
    assert primary.requests() == []


@pytest.fixture(scope="module")
def guarded(primary: FakeProviderProcess) -> Iterator[ProxyProcess]:
    config = {
        "upstreams": [{"name": "claude", "type": "anthropic", "base_url": primary.base_url},
                      {"name": "gem", "type": "gemini", "base_url": primary.base_url}],
        "models": {"via-claude": ["claude:claude-sonnet-4-5"], "via-gemini": ["gem:gemini-2.5-flash"]},
        "policies": [{"class": "tests.integration.policies.ResponseGuardPolicy", "options": {"keyword": "FORBIDDEN"}}],
    }
    process = start_proxy(primary.base_url, config, env={"PYTHONPATH": str(REPO_ROOT)})
    yield process
    process.stop()


@pytest.mark.parametrize("model", ["via-claude", "via-gemini"])
def test_answer_policies_read_the_translated_answer(guarded, primary, model):
    forbidden = primary.scenario_header(reply="This answer is FORBIDDEN here.")
    with OpenAI(base_url=guarded.base_url + "/v1", api_key=KEY, max_retries=0, timeout=20) as client:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            client.chat.completions.create(model=model, messages=HELLO, extra_headers=forbidden)
        assert "Response blocked by security policy" in caught.value.message
        stream = client.chat.completions.create(model=model, messages=HELLO, stream=True, extra_headers=forbidden)
        text = ""
        with pytest.raises(openai.APIError, match="blocked by security policy"):
            for chunk in stream:
                text += "".join(choice.delta.content or "" for choice in chunk.choices)
        assert "FORBIDDEN" not in text
        destructive = primary.scenario_header(tool_call=True, tool_args={"command": "rm -rf /"})
        with pytest.raises(openai.PermissionDeniedError):
            client.chat.completions.create(model=model, messages=HELLO, tools=[WEATHER], extra_headers=destructive)


def test_an_entry_that_cannot_take_the_request_is_skipped(client, primary):
    audio = [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]
    raw = client.chat.completions.with_raw_response.create(model="hearing", messages=audio)
    assert raw.headers["x-capsem-upstream"] == "openai:gpt-4o"
    assert [record["path"] for record in primary.requests()] == ["/v1/chat/completions"]
    primary.reset()
    with pytest.raises(openai.BadRequestError, match="input_audio"):  # no entry can take it
        client.chat.completions.create(model="via-claude", messages=audio)
    assert primary.requests() == []
