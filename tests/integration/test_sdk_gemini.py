"""The official google-genai SDK, sync and async, driven through the real proxy against the fake provider:
generate_content (plain, streamed, function calls, function responses) under /v1 and /v1beta,
count_tokens, the model list, the SDK's auth error and its 429 retry."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from google import genai
from google.genai import errors, types

KEY = "AIzaTestGeminiSdk0123456789"
MODEL = "gemini-2.5-flash"
WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Weather for a city",
    parameters_json_schema={
        "type": "object",
        "properties": {"location": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["location"],
    },
)
TOOL_ARGS = {"location": "Oslo", "days": 3}


def _client(proxy, api_version: str | None = None, **http_options) -> genai.Client:
    options = types.HttpOptions(base_url=proxy.base_url, api_version=api_version, **http_options)
    return genai.Client(api_key=KEY, http_options=options)


def _config(
    fake_provider, *, tools: bool = False, system: str | None = None, **scenario
) -> types.GenerateContentConfig:
    """Tools off or `get_weather`, no automatic function calling, the scenario as a per-request header."""
    return types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])] if tools else None,
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        system_instruction=system,
        http_options=types.HttpOptions(headers=fake_provider.scenario_header(**scenario)) if scenario else None,
    )


def _body(record: dict) -> dict:
    return json.loads(base64.b64decode(record["body_b64"]))


def _header(record: dict, name: str) -> list[str]:
    return [value for key, value in record["headers"] if key.lower() == name]


def _only_request(fake_provider, path: str) -> dict:
    records = fake_provider.requests()
    assert [r["path"] for r in records] == [path]
    assert _header(records[0], "x-goog-api-key") == [KEY]
    return records[0]


@pytest.fixture
def client(proxy) -> Iterator[genai.Client]:
    with _client(proxy) as sdk:
        yield sdk


@pytest.mark.parametrize("api_version", ["v1", "v1beta"])
def test_generate_content_plain(proxy, fake_provider, api_version):
    with _client(proxy, api_version) as client:
        response = client.models.generate_content(
            model=MODEL, contents="Say hello", config=_config(fake_provider, reply="Hello from Gemini's stand-in.")
        )
    assert response.text == "Hello from Gemini's stand-in."
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.usage_metadata.total_token_count > 0
    assert response.sdk_http_response.headers["x-capsem-request-id"]
    record = _only_request(fake_provider, f"/{api_version}/models/{MODEL}:generateContent")
    assert _body(record)["contents"] == [{"parts": [{"text": "Say hello"}], "role": "user"}]


def test_generate_content_stream(client, fake_provider):
    reply = "Gemini streams through the proxy."
    chunks = list(
        client.models.generate_content_stream(
            model=MODEL, contents="Stream it", config=_config(fake_provider, reply=reply, chunk_size=5)
        )
    )
    assert "".join(chunk.text for chunk in chunks) == reply
    assert len(chunks) == -(-len(reply) // 5)
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    record = _only_request(fake_provider, f"/v1/models/{MODEL}:streamGenerateContent")
    assert record["query_string"] == "alt=sse"


def test_function_call(client, fake_provider):
    response = client.models.generate_content(
        model=MODEL, contents="Weather in Oslo for 3 days?",
        config=_config(fake_provider, tools=True, tool_call=True, tool_args=TOOL_ARGS),
    )
    [call] = response.function_calls
    assert call.name == "get_weather"
    assert call.args == TOOL_ARGS
    declarations = _body(fake_provider.last())["tools"][0]["functionDeclarations"]
    assert [d["name"] for d in declarations] == ["get_weather"]


def test_function_call_streamed(client, fake_provider):
    chunks = list(
        client.models.generate_content_stream(
            model=MODEL, contents="Weather?", config=_config(fake_provider, tools=True, tool_call=True,
                                                             tool_args=TOOL_ARGS),
        )
    )
    calls = [call for chunk in chunks for call in chunk.function_calls or []]
    assert [(call.name, call.args) for call in calls] == [("get_weather", TOOL_ARGS)]


def test_function_response_is_sent_back(client, fake_provider):
    question = types.Content(role="user", parts=[types.Part.from_text(text="Weather in Oslo?")])
    first = client.models.generate_content(
        model=MODEL, contents=[question],
        config=_config(fake_provider, tools=True, tool_call=True, tool_args=TOOL_ARGS),
    )
    model_turn = first.candidates[0].content
    [call] = first.function_calls
    answer = types.Content(
        role="user",
        parts=[types.Part.from_function_response(name=call.name, response={"temp_c": 4, "sky": "snow"})],
    )
    second = client.models.generate_content(
        model=MODEL, contents=[question, model_turn, answer],
        config=_config(fake_provider, tools=True, reply="4 degrees and snow in Oslo."),
    )
    assert second.text == "4 degrees and snow in Oslo."
    contents = _body(fake_provider.last())["contents"]
    assert contents[1]["role"] == "model"
    assert contents[1]["parts"][0]["functionCall"] == {"name": "get_weather", "args": TOOL_ARGS}
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"temp_c": 4, "sky": "snow"}}}
    ]
    assert len(fake_provider.requests()) == 2


def test_count_tokens(client, fake_provider):
    counted = client.models.count_tokens(model=MODEL, contents="How many tokens is this sentence?")
    record = _only_request(fake_provider, f"/v1/models/{MODEL}:countTokens")
    body_length = len(base64.b64decode(record["body_b64"]))
    assert counted.total_tokens == max(1, body_length // 4)  # the fake provider's estimate, unchanged
    assert _body(record)["contents"][0]["parts"] == [{"text": "How many tokens is this sentence?"}]


def test_embed_content_goes_through_the_policies(client, fake_provider):
    result = client.models.embed_content(model="text-embedding-004", contents=["first text", "second text"])
    assert len(result.embeddings) == 2 and result.embeddings[0].values
    assert len(fake_provider.requests()) == 1
    with pytest.raises(errors.ClientError) as caught:
        client.models.embed_content(model="text-embedding-004", contents=["please capsem_block"])
    assert caught.value.code == 403
    assert len(fake_provider.requests()) == 1


@pytest.mark.parametrize("api_version", ["v1", "v1beta"])
def test_model_list(proxy, fake_provider, api_version):
    with _client(proxy, api_version) as client:
        names = [model.name for model in client.models.list()]
    assert names == [
        "models/gemini-2.5-flash", "models/gemini-2.5-pro", "models/gemini-2.0-flash", "models/text-embedding-004"
    ]
    record = _only_request(fake_provider, f"/{api_version}/models")
    assert record["method"] == "GET"


def test_bad_key_raises_client_error_401(proxy, fake_provider):
    bad = genai.Client(api_key="bad-key", http_options=types.HttpOptions(base_url=proxy.base_url))
    with bad, pytest.raises(errors.ClientError) as caught:
        bad.models.generate_content(model=MODEL, contents="hi")
    error = caught.value
    assert error.code == 401
    assert error.status == "UNAUTHENTICATED"
    assert error.message == "API key not valid. Please pass a valid API key."
    assert len(fake_provider.requests()) == 1


def test_rate_limit_is_retried(proxy, fake_provider):
    # google-genai retries 429 with its own exponential back-off (it does not read retry-after),
    # and only when retry options are set; the proxy must hand it a 429 it recognises.
    retry = types.HttpRetryOptions(attempts=2, initial_delay=0.05, max_delay=0.1, jitter=0, http_status_codes=[429])
    with _client(proxy, retry_options=retry) as client:
        response = client.models.generate_content(
            model=MODEL, contents="hi",
            config=_config(fake_provider, rate_limit=True, fail_times=1, retry_after=0.05, reply="after the retry"),
        )
    assert response.text == "after the retry"
    assert len(fake_provider.requests()) == 2


# ----------------------------------------------------------------------------- async client


async def test_async_generate_content(proxy, fake_provider):
    client = _client(proxy)
    try:
        response = await client.aio.models.generate_content(
            model=MODEL, contents="hi", config=_config(fake_provider, system="Be brief.", reply="async hello")
        )
    finally:
        await client.aio.aclose()
        client.close()
    assert response.text == "async hello"
    record = _only_request(fake_provider, f"/v1/models/{MODEL}:generateContent")
    assert _body(record)["systemInstruction"]["parts"] == [{"text": "Be brief."}]


async def test_async_stream_and_function_call(proxy, fake_provider):
    client = _client(proxy)
    try:
        stream = await client.aio.models.generate_content_stream(
            model=MODEL, contents="hi", config=_config(fake_provider, reply="async gemini stream", chunk_size=4)
        )
        texts = [chunk.text async for chunk in stream]
        tool_stream = await client.aio.models.generate_content_stream(
            model=MODEL, contents="Weather?",
            config=_config(fake_provider, tools=True, tool_call=True, tool_args=TOOL_ARGS),
        )
        calls = [call async for chunk in tool_stream for call in chunk.function_calls or []]
        counted = await client.aio.models.count_tokens(model=MODEL, contents="count me")
    finally:
        await client.aio.aclose()
        client.close()
    assert "".join(texts) == "async gemini stream"
    assert len(texts) == 5
    assert [(call.name, call.args) for call in calls] == [("get_weather", TOOL_ARGS)]
    assert counted.total_tokens >= 1
    assert [r["path"].rsplit(":", 1)[-1] for r in fake_provider.requests()] == [
        "streamGenerateContent", "streamGenerateContent", "countTokens"
    ]
