"""The official openai SDK, sync and async, driven through the real proxy against the fake provider:
Chat Completions (plain, streamed, tool calls, tool results), Responses (string input and item
arrays, streamed and not), embeddings, the model list, the SDK's auth error and its 429 retry."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import openai
import pytest
from openai import AsyncOpenAI, OpenAI

KEY = "sk-test-openai-sdk-0123456789"
MODEL = "gpt-4o-mini"
WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {"location": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["location"],
}
CHAT_TOOLS = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather for a city", "parameters": WEATHER_PARAMETERS},
    }
]
RESPONSES_TOOLS = [
    {"type": "function", "name": "get_weather", "description": "Weather for a city", "parameters": WEATHER_PARAMETERS}
]
TOOL_ARGS = {"location": "Oslo", "days": 3}


def _body(fake_provider, record: dict | None = None) -> dict:
    record = record if record is not None else fake_provider.last()
    assert record is not None, "the fake provider received nothing"
    return json.loads(base64.b64decode(record["body_b64"]))


def _header(record: dict, name: str) -> list[str]:
    return [value for key, value in record["headers"] if key.lower() == name]


def _only_request(fake_provider, path: str) -> dict:
    records = fake_provider.requests()
    assert [r["path"] for r in records] == [path]
    record = records[0]
    assert _header(record, "authorization") == [f"Bearer {KEY}"]
    return record


@pytest.fixture
def client(proxy) -> Iterator[OpenAI]:
    with OpenAI(base_url=proxy.base_url + "/v1", api_key=KEY, max_retries=0, timeout=10) as sdk:
        yield sdk


def _async_client(proxy, **options) -> AsyncOpenAI:
    """A fresh async client per test (each async test runs in its own event loop)."""
    return AsyncOpenAI(base_url=proxy.base_url + "/v1", api_key=KEY, **{"max_retries": 0, "timeout": 10, **options})


# ----------------------------------------------------------------------------- chat completions


def test_chat_plain(client, fake_provider):
    reply = "Bonjour from the fake provider."
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Say hello in French"}],
        extra_headers=fake_provider.scenario_header(reply=reply),
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == reply
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == MODEL
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert len(raw.headers["x-capsem-request-id"]) == 24
    assert raw.headers["x-request-id"].startswith("req_")
    record = _only_request(fake_provider, "/v1/chat/completions")
    assert _body(fake_provider, record)["messages"] == [{"role": "user", "content": "Say hello in French"}]


def test_chat_stream(client, fake_provider):
    reply = "Streaming through the proxy, piece by piece."
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Stream please"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=fake_provider.scenario_header(reply=reply, chunk_size=5),
    )
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == reply
    assert len(pieces) == -(-len(reply) // 5)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    record = _only_request(fake_provider, "/v1/chat/completions")
    assert _body(fake_provider, record)["stream"] is True


def test_chat_tool_call(client, fake_provider):
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Oslo for 3 days?"}],
        tools=CHAT_TOOLS,
        extra_headers=fake_provider.scenario_header(tool_call=True, tool_args=TOOL_ARGS),
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == TOOL_ARGS
    assert call.id.startswith("call_")
    assert _body(fake_provider)["tools"] == CHAT_TOOLS


def test_chat_tool_call_streamed(client, fake_provider):
    with client.chat.completions.stream(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=CHAT_TOOLS,
        extra_headers=fake_provider.scenario_header(tool_call=True, tool_args=TOOL_ARGS, chunk_size=4),
    ) as stream:
        fragments = [event.arguments_delta for event in stream if event.type == "tool_calls.function.arguments.delta"]
        final = stream.get_final_completion()
    assert len(fragments) > 3  # the arguments really arrived in pieces and the SDK assembled them
    [call] = final.choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == TOOL_ARGS
    assert "".join(fragments) == call.function.arguments
    assert final.choices[0].finish_reason == "tool_calls"


def test_chat_tool_result_is_sent_back(client, fake_provider):
    messages: list = [{"role": "user", "content": "Weather in Oslo?"}]
    first = client.chat.completions.create(
        model=MODEL, messages=messages, tools=CHAT_TOOLS,
        extra_headers=fake_provider.scenario_header(tool_call=True, tool_args=TOOL_ARGS),
    )
    assistant = first.choices[0].message
    [call] = assistant.tool_calls
    messages.append(assistant.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temp_c": 4, "sky": "snow"})})
    second = client.chat.completions.create(
        model=MODEL, messages=messages, tools=CHAT_TOOLS,
        extra_headers=fake_provider.scenario_header(reply="It is 4 degrees and snowing in Oslo."),
    )
    assert second.choices[0].message.content == "It is 4 degrees and snowing in Oslo."
    sent = _body(fake_provider)["messages"]
    assert sent[-1] == {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 4, "sky": "snow"}'}
    assert sent[-2]["role"] == "assistant"
    assert sent[-2]["tool_calls"][0]["id"] == call.id
    assert sent[-2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert len(fake_provider.requests()) == 2


# ----------------------------------------------------------------------------- responses


def test_responses_string_input(client, fake_provider):
    response = client.responses.create(
        model=MODEL, input="Tell me a joke", extra_headers=fake_provider.scenario_header(reply="A fake joke.")
    )
    assert response.output_text == "A fake joke."
    assert response.status == "completed"
    assert response.output[0].type == "message"
    record = _only_request(fake_provider, "/v1/responses")
    assert _body(fake_provider, record)["input"] == "Tell me a joke"


def test_responses_string_input_streamed(client, fake_provider):
    reply = "Responses API, streamed through the proxy."
    stream = client.responses.create(
        model=MODEL, input="Stream a sentence", stream=True,
        extra_headers=fake_provider.scenario_header(reply=reply, chunk_size=6),
    )
    events = list(stream)
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert "".join(deltas) == reply
    assert len(deltas) == -(-len(reply) // 6)
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == reply
    assert _body(fake_provider)["stream"] is True


def _items_input() -> list:
    return [
        {"role": "user", "content": "Weather in Oslo?"},
        {"type": "function_call", "call_id": "call_oslo_1", "name": "get_weather", "arguments": '{"location":"Oslo"}'},
        {"type": "function_call_output", "call_id": "call_oslo_1", "output": '{"temp_c": 4}'},
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_responses_items_with_function_call_output(client, fake_provider, stream):
    reply = "It is 4 degrees in Oslo."
    headers = fake_provider.scenario_header(reply=reply)
    if stream:
        with client.responses.stream(model=MODEL, input=_items_input(), tools=RESPONSES_TOOLS,
                                     extra_headers=headers) as events:
            response = events.get_final_response()
    else:
        response = client.responses.create(model=MODEL, input=_items_input(), tools=RESPONSES_TOOLS,
                                           extra_headers=headers)
    assert response.output_text == reply
    sent = _body(fake_provider)["input"]
    assert sent[1] == {
        "type": "function_call", "call_id": "call_oslo_1", "name": "get_weather", "arguments": '{"location":"Oslo"}'
    }
    assert sent[2] == {"type": "function_call_output", "call_id": "call_oslo_1", "output": '{"temp_c": 4}'}
    assert len(fake_provider.requests()) == 1


def test_responses_tool_call(client, fake_provider):
    response = client.responses.create(
        model=MODEL, input="Weather in Oslo?", tools=RESPONSES_TOOLS,
        extra_headers=fake_provider.scenario_header(tool_call=True, tool_args=TOOL_ARGS),
    )
    [call] = response.output
    assert call.type == "function_call"
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == TOOL_ARGS
    assert call.call_id.startswith("call_")


def test_responses_tool_call_streamed(client, fake_provider):
    with client.responses.stream(
        model=MODEL, input="Weather in Oslo?", tools=RESPONSES_TOOLS,
        extra_headers=fake_provider.scenario_header(tool_call=True, tool_args=TOOL_ARGS, chunk_size=5),
    ) as stream:
        fragments = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
        response = stream.get_final_response()
    assert len(fragments) > 3
    [call] = response.output
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == TOOL_ARGS
    assert "".join(fragments) == call.arguments


# ----------------------------------------------------------------------------- embeddings, models


def test_embeddings(client, fake_provider):
    result = client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"])
    assert [item.index for item in result.data] == [0, 1]
    first, second = (item.embedding for item in result.data)
    assert len(first) == len(second) == 1536
    assert first != second
    assert abs(sum(x * x for x in first) - 1.0) < 1e-3  # the fake provider's vectors are unit vectors
    assert result.model == "text-embedding-3-small"
    record = _only_request(fake_provider, "/v1/embeddings")
    assert _body(fake_provider, record)["input"] == ["alpha", "beta"]


def test_embeddings_with_dimensions_as_floats(client, fake_provider):
    result = client.embeddings.create(
        model="text-embedding-3-small", input="gamma", dimensions=16, encoding_format="float"
    )
    [item] = result.data
    assert len(item.embedding) == 16
    assert all(isinstance(x, float) for x in item.embedding)
    assert _body(fake_provider)["dimensions"] == 16


def test_model_list(client, fake_provider):
    ids = [model.id for model in client.models.list()]
    assert "gpt-4o-mini" in ids and "text-embedding-3-small" in ids
    record = _only_request(fake_provider, "/v1/models")
    assert record["method"] == "GET"


# ----------------------------------------------------------------------------- errors and retries


def test_bad_key_raises_authentication_error(proxy, fake_provider):
    bad = OpenAI(base_url=proxy.base_url + "/v1", api_key="bad-key", max_retries=2)
    with bad, pytest.raises(openai.AuthenticationError) as caught:
        bad.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    error = caught.value
    assert error.status_code == 401
    assert error.code == "invalid_api_key"
    assert "Incorrect API key provided" in error.message
    assert error.response.headers["x-capsem-request-id"]
    assert len(fake_provider.requests()) == 1  # a 401 is not retried


def test_rate_limit_is_retried_after_retry_after(proxy, fake_provider):
    retry_after = 0.6  # longer than the SDK's own first back-off (at most 0.5 s): only retry-after explains it
    with OpenAI(base_url=proxy.base_url + "/v1", api_key=KEY, max_retries=2) as retrying:
        started = time.monotonic()
        completion = retrying.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers=fake_provider.scenario_header(
                rate_limit=True, fail_times=1, retry_after=retry_after, reply="after the retry"
            ),
        )
        elapsed = time.monotonic() - started
    assert completion.choices[0].message.content == "after the retry"
    records = fake_provider.requests()
    assert len(records) == 2
    assert _header(records[1], "x-stainless-retry-count") == ["1"]
    assert elapsed >= retry_after


# ----------------------------------------------------------------------------- async client


async def test_async_chat_plain(proxy, fake_provider):
    async with _async_client(proxy) as aclient:
        completion = await aclient.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}],
            extra_headers=fake_provider.scenario_header(reply="async hello"),
        )
        assert completion.choices[0].message.content == "async hello"
        _only_request(fake_provider, "/v1/chat/completions")


async def test_async_chat_stream(proxy, fake_provider):
    async with _async_client(proxy) as aclient:
        reply = "async streaming works"
        stream = await aclient.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True,
            extra_headers=fake_provider.scenario_header(reply=reply, chunk_size=4),
        )
        pieces = [chunk.choices[0].delta.content async for chunk in stream if chunk.choices[0].delta.content]
        assert "".join(pieces) == reply
        assert len(pieces) == 6


async def test_async_chat_tool_call_streamed(proxy, fake_provider):
    async with _async_client(proxy) as aclient:
        async with aclient.chat.completions.stream(
            model=MODEL, messages=[{"role": "user", "content": "Weather?"}], tools=CHAT_TOOLS,
            extra_headers=fake_provider.scenario_header(tool_call=True, tool_args=TOOL_ARGS, chunk_size=3),
        ) as stream:
            final = await stream.get_final_completion()
        [call] = final.choices[0].message.tool_calls
        assert call.function.name == "get_weather"
        assert json.loads(call.function.arguments) == TOOL_ARGS


async def test_async_responses_streamed(proxy, fake_provider):
    async with _async_client(proxy) as aclient:
        async with aclient.responses.stream(
            model=MODEL, input=_items_input(), tools=RESPONSES_TOOLS,
            extra_headers=fake_provider.scenario_header(reply="async responses", chunk_size=4),
        ) as stream:
            deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
            response = await stream.get_final_response()
        assert "".join(deltas) == "async responses"
        assert response.output_text == "async responses"
        assert _body(fake_provider)["input"][2]["type"] == "function_call_output"


async def test_async_embeddings_and_models(proxy, fake_provider):
    async with _async_client(proxy) as aclient:
        result = await aclient.embeddings.create(model="text-embedding-3-large", input="delta")
        assert len(result.data[0].embedding) == 3072
        page = await aclient.models.list()
        assert "gpt-4.1" in [model.id for model in page.data]
        assert [r["path"] for r in fake_provider.requests()] == ["/v1/embeddings", "/v1/models"]


async def test_async_rate_limit_is_retried(proxy, fake_provider):
    async with AsyncOpenAI(base_url=proxy.base_url + "/v1", api_key=KEY, max_retries=1) as retrying:
        response = await retrying.responses.create(
            model=MODEL, input="hi",
            extra_headers=fake_provider.scenario_header(
                rate_limit=True, fail_times=1, retry_after=0.05, reply="async retried"
            ),
        )
    assert response.output_text == "async retried"
    assert len(fake_provider.requests()) == 2
