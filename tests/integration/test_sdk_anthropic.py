"""The official anthropic SDK, sync and async, driven through the real proxy against the fake provider:
messages (plain, streamed, tool use, tool results), count_tokens, x-api-key and Bearer auth, the SDK's
auth error and its 429 retry."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import anthropic
import pytest
from anthropic import Anthropic, AsyncAnthropic

from tests.proxy_process import start_proxy

KEY = "sk-ant-test-sdk-0123456789"
MODEL = "claude-sonnet-4-6"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["location"],
    },
}
TOOL_ARGS = {"location": "Oslo", "days": 3}


def _body(record: dict) -> dict:
    return json.loads(base64.b64decode(record["body_b64"]))


def _header(record: dict, name: str) -> list[str]:
    return [value for key, value in record["headers"] if key.lower() == name]


def _only_request(fake_provider, path: str = "/v1/messages") -> dict:
    records = fake_provider.requests()
    assert [r["path"] for r in records] == [path]
    # This SDK sends `api_key` as `Authorization: Bearer`; older ones sent `x-api-key`.
    assert _header(records[0], "authorization") == [f"Bearer {KEY}"] or _header(records[0], "x-api-key") == [KEY]
    assert _header(records[0], "anthropic-version")
    return records[0]


@pytest.fixture
def client(proxy) -> Iterator[Anthropic]:
    with Anthropic(base_url=proxy.base_url, api_key=KEY, max_retries=0, timeout=10) as sdk:
        yield sdk


def _async_client(proxy, **options) -> AsyncAnthropic:
    """A fresh async client per test (each async test runs in its own event loop)."""
    return AsyncAnthropic(base_url=proxy.base_url, api_key=KEY, **{"max_retries": 0, "timeout": 10, **options})


def test_messages_plain(client, fake_provider):
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Say hello"}],
        extra_headers=fake_provider.scenario_header(reply="Hello from Claude's stand-in."),
    )
    message = raw.parse()
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from Claude's stand-in."
    assert message.stop_reason == "end_turn"
    assert message.model == MODEL
    assert message.usage.output_tokens > 0
    assert len(raw.headers["x-capsem-request-id"]) == 24
    assert raw.headers["request-id"].startswith("req_")
    record = _only_request(fake_provider)
    assert _body(record)["messages"] == [{"role": "user", "content": "Say hello"}]
    assert _body(record)["max_tokens"] == 64


@pytest.mark.parametrize(
    ("options", "header", "value"),
    [
        ({"auth_token": KEY}, "authorization", f"Bearer {KEY}"),
        ({"api_key": None, "default_headers": {"x-api-key": KEY}}, "x-api-key", KEY),
    ],
    ids=["bearer", "x-api-key"],
)
def test_messages_with_either_auth_header(proxy, fake_provider, monkeypatch, options, header, value):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    with Anthropic(base_url=proxy.base_url, max_retries=0, **options) as sdk:
        message = sdk.messages.create(
            model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}],
            extra_headers=fake_provider.scenario_header(reply="auth works"),
        )
    assert message.content[0].text == "auth works"
    record = fake_provider.last()
    assert _header(record, header) == [value]
    other = "x-api-key" if header == "authorization" else "authorization"
    assert _header(record, other) == []


def test_messages_stream_helper(client, fake_provider):
    reply = "Streaming Claude through the proxy."
    with client.messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Stream it"}],
        extra_headers=fake_provider.scenario_header(reply=reply, chunk_size=5),
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == reply
    assert len(pieces) == -(-len(reply) // 5)
    assert final.content[0].text == reply
    assert final.stop_reason == "end_turn"
    assert _body(_only_request(fake_provider))["stream"] is True


def test_messages_create_stream_events(client, fake_provider):
    stream = client.messages.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Stream it"}], stream=True,
        extra_headers=fake_provider.scenario_header(reply="abcdefghij", chunk_size=2),
    )
    events = list(stream)
    types = [event.type for event in events]
    assert types[0] == "message_start"
    assert types[-1] == "message_stop"
    deltas = [event.delta.text for event in events if event.type == "content_block_delta"]
    assert deltas == ["ab", "cd", "ef", "gh", "ij"]
    assert [event.delta.stop_reason for event in events if event.type == "message_delta"] == ["end_turn"]


def test_tool_use(client, fake_provider):
    message = client.messages.create(
        model=MODEL, max_tokens=64, tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "Weather in Oslo for 3 days?"}],
        extra_headers=fake_provider.scenario_header(tool_call=True, tool_args=TOOL_ARGS),
    )
    assert message.stop_reason == "tool_use"
    [block] = message.content
    assert block.type == "tool_use"
    assert block.name == "get_weather"
    assert block.input == TOOL_ARGS
    assert block.id.startswith("toolu_")
    assert _body(fake_provider.last())["tools"] == [WEATHER_TOOL]


def test_tool_use_streamed(client, fake_provider):
    with client.messages.stream(
        model=MODEL, max_tokens=64, tools=[WEATHER_TOOL], messages=[{"role": "user", "content": "Weather?"}],
        extra_headers=fake_provider.scenario_header(tool_call=True, tool_args=TOOL_ARGS, chunk_size=4),
    ) as stream:
        fragments = [e.partial_json for e in stream if e.type == "input_json"]
        final = stream.get_final_message()
    assert len([f for f in fragments if f]) > 3  # the input arrived in pieces; the SDK assembled it
    assert json.loads("".join(fragments)) == TOOL_ARGS
    [block] = final.content
    assert block.type == "tool_use"
    assert block.name == "get_weather"
    assert block.input == TOOL_ARGS
    assert final.stop_reason == "tool_use"


def test_tool_result_is_sent_back(client, fake_provider):
    messages: list = [{"role": "user", "content": "Weather in Oslo?"}]
    first = client.messages.create(
        model=MODEL, max_tokens=64, tools=[WEATHER_TOOL], messages=messages,
        extra_headers=fake_provider.scenario_header(tool_call=True, tool_args=TOOL_ARGS),
    )
    [tool_use] = first.content
    messages.append({"role": "assistant", "content": first.content})
    messages.append({
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": '{"temp_c": 4, "sky": "snow"}'}],
    })
    second = client.messages.create(
        model=MODEL, max_tokens=64, tools=[WEATHER_TOOL], messages=messages,
        extra_headers=fake_provider.scenario_header(reply="4 degrees and snow in Oslo."),
    )
    assert second.content[0].text == "4 degrees and snow in Oslo."
    sent = _body(fake_provider.last())["messages"]
    assert sent[-1] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": '{"temp_c": 4, "sky": "snow"}'}],
    }
    assistant_block = sent[-2]["content"][0]
    assert (assistant_block["type"], assistant_block["id"], assistant_block["name"], assistant_block["input"]) == (
        "tool_use", tool_use.id, "get_weather", TOOL_ARGS,
    )
    assert len(fake_provider.requests()) == 2


def test_count_tokens(client, fake_provider):
    counted = client.messages.count_tokens(
        model=MODEL, system="Be brief.", tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "How many tokens is this sentence?"}],
    )
    record = _only_request(fake_provider, "/v1/messages/count_tokens")
    body_length = len(base64.b64decode(record["body_b64"]))
    assert counted.input_tokens == max(1, body_length // 4)  # the fake provider's estimate, unchanged
    assert _body(record)["system"] == "Be brief."


@pytest.fixture(scope="module")
def split_proxy(fake_provider):
    """A proxy whose OpenAI upstream differs from the Anthropic one, so a misrouted request shows."""
    process = start_proxy(
        fake_provider.base_url, env={"CAPSEM_PROXY_OPENAI_BASE_URL": fake_provider.base_url + "/openai-upstream/v1"}
    )
    yield process
    process.stop()


@pytest.mark.parametrize(
    "options", [{"api_key": KEY}, {"api_key": None, "default_headers": {"x-api-key": KEY}}], ids=["bearer", "x-api-key"]
)
def test_model_list_goes_to_anthropic(split_proxy, fake_provider, monkeypatch, options):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    with Anthropic(base_url=split_proxy.base_url, max_retries=0, **options) as sdk:
        models = [model.id for model in sdk.models.list()]
    assert models == ["claude-opus-4-7", "claude-sonnet-4-6", "claude-haiku-4-5-20251001"]
    assert [r["path"] for r in fake_provider.requests()] == ["/v1/models"]


def test_bad_key_raises_authentication_error(proxy, fake_provider):
    bad = Anthropic(base_url=proxy.base_url, api_key="bad-key", max_retries=2)
    with bad, pytest.raises(anthropic.AuthenticationError) as caught:
        bad.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    error = caught.value
    assert error.status_code == 401
    assert error.body["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}
    assert "invalid x-api-key" in str(error)
    assert len(fake_provider.requests()) == 1  # a 401 is not retried


def test_rate_limit_is_retried_after_retry_after(proxy, fake_provider):
    retry_after = 0.6  # longer than the SDK's own first back-off (at most 0.5 s): only retry-after explains it
    with Anthropic(base_url=proxy.base_url, api_key=KEY, max_retries=2) as retrying:
        started = time.monotonic()
        message = retrying.messages.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}],
            extra_headers=fake_provider.scenario_header(
                rate_limit=True, fail_times=1, retry_after=retry_after, reply="after the retry"
            ),
        )
        elapsed = time.monotonic() - started
    assert message.content[0].text == "after the retry"
    records = fake_provider.requests()
    assert len(records) == 2
    assert _header(records[1], "x-stainless-retry-count") == ["1"]
    assert elapsed >= retry_after


# ----------------------------------------------------------------------------- async client


async def test_async_messages_plain(proxy, fake_provider):
    async with _async_client(proxy) as client:
        message = await client.messages.create(
            model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}],
            extra_headers=fake_provider.scenario_header(reply="async hello"),
        )
    assert message.content[0].text == "async hello"
    _only_request(fake_provider)


async def test_async_stream(proxy, fake_provider):
    reply = "async anthropic stream"
    async with _async_client(proxy) as client, client.messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}],
        extra_headers=fake_provider.scenario_header(reply=reply, chunk_size=3),
    ) as stream:
        pieces = [piece async for piece in stream.text_stream]
    assert "".join(pieces) == reply
    assert len(pieces) == -(-len(reply) // 3)


async def test_async_tool_use_streamed(proxy, fake_provider):
    async with _async_client(proxy) as client, client.messages.stream(
        model=MODEL, max_tokens=64, tools=[WEATHER_TOOL], messages=[{"role": "user", "content": "Weather?"}],
        extra_headers=fake_provider.scenario_header(tool_call=True, tool_args=TOOL_ARGS, chunk_size=3),
    ) as stream:
        final = await stream.get_final_message()
    [block] = final.content
    assert (block.name, block.input) == ("get_weather", TOOL_ARGS)


async def test_async_count_tokens_and_retry(proxy, fake_provider):
    async with _async_client(proxy, max_retries=1) as client:
        counted = await client.messages.count_tokens(
            model=MODEL, messages=[{"role": "user", "content": "count me"}],
            extra_headers=fake_provider.scenario_header(rate_limit=True, fail_times=1, retry_after=0.05),
        )
    records = fake_provider.requests()
    assert [r["path"] for r in records] == ["/v1/messages/count_tokens"] * 2
    assert counted.input_tokens == max(1, len(base64.b64decode(records[1]["body_b64"])) // 4)
