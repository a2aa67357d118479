"""AnthropicAdapter: requests captured from the anthropic SDK, hand-written answers and streams."""

from __future__ import annotations

import json

import anthropic
import httpx2
import pytest

from capsem_proxy.errors import ErrorKind
from capsem_proxy.providers.anthropic import AnthropicAdapter
from capsem_proxy.providers.base import ConflictingKeys
from capsem_proxy.streaming.events import (
    ErrorDelta,
    FinishDelta,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    UnreadableDelta,
    UsageDelta,
)
from tests.providers.capture_fixtures import PNG_BYTES, assemble, load_fixture, sse

adapter = AnthropicAdapter()


def _request(name: str, operation: str = "messages"):
    return adapter.decode_request(operation, load_fixture(name)["body"])


def _feed(events: list[StreamEvent]) -> list:
    decoder = adapter.stream_decoder("messages")
    return [delta for event in events for delta in decoder.feed(event)]


def _event(data: dict) -> StreamEvent:
    return sse(data["type"], data)


# ---------------------------------------------------------------------------- requests


def test_plain_message_string_content_is_user_text():
    exchange = _request("anthropic_plain")
    assert (exchange.provider, exchange.operation, exchange.model) == ("anthropic", "messages", "claude-sonnet-4-6")
    assert [(m.role, m.text) for m in exchange.messages] == [("user", "Hello Claude")]
    assert (exchange.system, exchange.stream) == ("", False)


def test_system_blocks_are_joined_and_base64_image_is_decoded():
    exchange = _request("anthropic_system_blocks")
    assert exchange.system == "You are terse.\nNever use emoji."
    (message,) = exchange.messages
    assert message.text == "Describe this"
    assert [(m.mime_type, m.data, m.uri) for m in message.media] == [("image/png", PNG_BYTES, None)]


def test_tool_use_and_tool_result_history_split_into_tool_then_user_messages():
    exchange = _request("anthropic_tools_history")
    roles = [m.role for m in exchange.messages]
    assert roles == ["user", "assistant", "tool", "user"]
    _, assistant, tool, user = exchange.messages
    assert assistant.text == "Let me check."
    (call,) = assistant.tool_calls
    assert (call.name, call.call_id, call.arguments) == ("get_weather", "toolu_01", {"city": "Paris"})
    assert json.loads(call.raw_arguments) == {"city": "Paris"}
    (result,) = tool.tool_results
    assert (result.call_id, result.name, result.content) == ("toolu_01", "get_weather", "21C and sunny")
    assert tool.text == ""
    assert user.text == "And tomorrow?"
    assert exchange.prompt == "Weather in Paris?\nLet me check.\nAnd tomorrow?"


def test_custom_and_server_tools_become_definitions():
    exchange = _request("anthropic_tools_history")
    custom, server = exchange.tools
    assert (custom.name, custom.description) == ("get_weather", "Current weather in a city")
    assert custom.parameters["required"] == ["city"]
    assert (server.name, server.description, server.parameters) == ("web_search", "", {})


def test_thinking_blocks_become_thinking_and_redacted_thinking_is_skipped():
    exchange = _request("anthropic_thinking")
    first, assistant, last = exchange.messages
    assert (assistant.role, assistant.text, assistant.thinking) == ("assistant", "4", "Simple addition.")
    assert "ZW5jcnlwdGVk" not in assistant.thinking
    assert (first.text, last.text) == ("What is 2+2?", "And 3+3?")


def test_stream_flag():
    assert _request("anthropic_stream").stream is True


def test_count_tokens_body_decodes_like_messages():
    exchange = _request("anthropic_count_tokens", "count_tokens")
    assert (exchange.operation, exchange.system, exchange.prompt) == ("count_tokens", "Be brief.", "Count me")


def test_tool_result_json_text_error_flag_images_and_documents():
    body = {
        "model": "claude-haiku-4-5",
        "messages": [
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "fetch", "input": {"url": "u"}},
                    {"type": "tool_use", "id": "t2", "name": "shot", "input": {}},
                    {"type": "server_tool_use", "id": "srv1", "name": "web_search", "input": {"query": "news"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": '{"status": 404}', "is_error": True},
                    {
                        "type": "tool_result",
                        "tool_use_id": "t2",
                        "content": [
                            {"type": "text", "text": "screenshot:"},
                            {"type": "image", "source": {"type": "url", "url": "https://example.com/s.png"}},
                        ],
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
                    },
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}},
                    {"type": "document", "source": {"type": "file", "file_id": "file_01"}},
                    {"type": "text", "text": "Compare"},
                ],
            },
        ],
    }
    exchange = adapter.decode_request("messages", body)
    assistant, tool, user = exchange.messages
    assert [c.name for c in assistant.tool_calls] == ["fetch", "shot", "web_search"]
    first, second = tool.tool_results
    assert (first.name, first.content) == ("fetch", {"content": {"status": 404}, "is_error": True})
    assert (second.name, second.content) == ("shot", "screenshot:")
    assert [(m.mime_type, m.uri) for m in tool.media] == [("image/png", "https://example.com/s.png")]
    assert [(m.mime_type, m.data, m.uri) for m in user.media] == [
        ("application/pdf", b"%PDF-", None),
        ("text/plain", b"notes", None),
        ("application/octet-stream", None, "file_01"),
    ]
    # A document with a text source is text of the conversation too, read (and rewritten) there.
    assert (user.role, user.text) == ("user", "notes\nCompare")
    assert exchange.media_texts() == []


def test_malformed_blocks_are_skipped_and_non_object_body_raises():
    body = {
        "system": [None, {"type": "text", "text": 3}, {"type": "text", "text": "ok"}],
        "messages": [
            None,
            {"role": "user", "content": [None, {"type": "image", "source": None}, {"type": "tool_use", "input": 5}]},
            {"role": "user", "content": 42},
        ],
        "tools": [None, {"name": ""}, {"description": "no name"}],
    }
    exchange = adapter.decode_request("messages", body)
    assert exchange.system == "ok"
    assert [(c.name, c.arguments) for c in exchange.tool_calls] == [("", {})]
    assert exchange.tools == []
    with pytest.raises(ValueError):
        adapter.decode_request("messages", "text")


# ---------------------------------------------------------------------------- answers


def test_message_answer_with_thinking_text_tool_use_and_usage():
    body = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": [
            {"type": "thinking", "thinking": "The user wants weather.", "signature": "EqQB"},
            {"type": "text", "text": "I'll check."},
            {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Lima"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 310, "output_tokens": 92, "cache_read_input_tokens": 0},
    }
    answer = adapter.decode_answer("messages", body)
    assert (answer.text, answer.thinking) == ("I'll check.", "The user wants weather.")
    (call,) = answer.tool_calls
    assert (call.call_id, call.name, call.arguments) == ("toolu_9", "get_weather", {"city": "Lima"})
    assert answer.finish_reason == "tool_use"
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (310, 92)


@pytest.mark.parametrize("body", [None, [], {"content": "x"}, {"content": [None, 1, {"type": "text"}]}, {"usage": 5}])
def test_odd_answer_shapes_never_raise(body):
    answer = adapter.decode_answer("messages", body)
    assert (answer.text, answer.tool_calls) == ("", [])


def test_count_tokens_answer_is_empty():
    answer = adapter.decode_answer("count_tokens", {"input_tokens": 14})
    assert (answer.text, answer.usage.input_tokens) == ("", None)


# ---------------------------------------------------------------------------- streams

_STREAM = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": "claude-sonnet-4-6",
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 472, "output_tokens": 2},
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me think"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQB"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Okay, "}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "checking."}},
    {"type": "content_block_stop", "index": 1},
    {
        "type": "content_block_start",
        "index": 2,
        "content_block": {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}},
    },
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"city": "'}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": 'Oslo"}'}},
    {"type": "content_block_stop", "index": 2},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 89},
    },
    {"type": "message_stop"},
]


def test_stream_deltas_in_order_with_tool_call_indexed_by_content_block():
    deltas = _feed([_event(data) for data in _STREAM])
    assert deltas == [
        UsageDelta(input_tokens=472),
        ThinkingDelta("Let me think"),
        TextDelta("Okay, "),
        TextDelta("checking."),
        ToolCallDelta(index=2, call_id="toolu_01", name="get_weather"),
        ToolCallDelta(index=2, arguments_fragment='{"city": "'),
        ToolCallDelta(index=2, arguments_fragment='Oslo"}'),
        FinishDelta("tool_use"),
        UsageDelta(output_tokens=89),
    ]
    assembled = assemble(deltas)
    assert json.loads(assembled["calls"][2]["arguments"]) == {"city": "Oslo"}


def test_stream_without_event_names_uses_the_data_type():
    events = [StreamEvent(raw=b"", data=json.dumps(data), event=None) for data in _STREAM]
    assert assemble(_feed(events))["text"] == "Okay, checking."


def test_stream_ping_events_are_skipped_without_parsing_like_the_sdk_does():
    decoder = adapter.stream_decoder("messages")
    assert decoder.feed(StreamEvent(raw=b"", data="{not json", event="ping")) == []


def test_stream_stop_events_are_parsed_because_the_sdk_reads_them_by_their_data():
    decoder = adapter.stream_decoder("messages")
    for name in ("content_block_stop", "message_stop"):
        assert decoder.feed(StreamEvent(raw=b"", data=json.dumps({"type": name}), event=name)) == []
        [unreadable] = decoder.feed(StreamEvent(raw=b"", data="{not json", event=name))
        assert isinstance(unreadable, UnreadableDelta)


def test_stream_event_whose_name_and_data_type_disagree_is_unreadable():
    # The SDK would read this "message_stop" as the text delta its data says it is.
    data = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hidden"}}
    [unreadable] = _feed([StreamEvent(raw=b"", data=json.dumps(data), event="message_stop")])
    assert isinstance(unreadable, UnreadableDelta)


def test_stream_error_event_is_an_error_delta():
    data = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert _feed([_event(data)]) == [ErrorDelta("Overloaded")]


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kind", "status", "error_type"),
    [
        (ErrorKind.INVALID_REQUEST, 400, "invalid_request_error"),
        (ErrorKind.AUTHENTICATION, 401, "authentication_error"),
        (ErrorKind.PERMISSION, 403, "permission_error"),
        (ErrorKind.NOT_FOUND, 404, "not_found_error"),
        (ErrorKind.TOO_LARGE, 413, "request_too_large"),
        (ErrorKind.RATE_LIMIT, 429, "rate_limit_error"),
        (ErrorKind.INTERNAL, 500, "api_error"),
        (ErrorKind.UPSTREAM_UNAVAILABLE, 502, "api_error"),
        (ErrorKind.UNAVAILABLE, 503, "overloaded_error"),
        (ErrorKind.TIMEOUT, 504, "timeout_error"),
        ("unknown", 529, "overloaded_error"),
        ("unknown", 599, "api_error"),
        ("unknown", 418, "invalid_request_error"),
    ],
)
def test_error_payload_type_by_kind(kind, status, error_type):
    assert adapter.error_payload(status, "nope", kind) == {
        "type": "error",
        "error": {"type": error_type, "message": "nope"},
    }


def test_stream_error_event_bytes_and_the_sdk_raises():
    data = adapter.stream_error_event("messages", 403, "Blocked by policy: pii", ErrorKind.PERMISSION, sse=True)
    assert data == (
        b'event: error\ndata: {"type":"error","error":{"type":"permission_error","message":"Blocked by policy: pii"}}'
        b"\n\n"
    )
    start = b"".join(sse(d["type"], d).raw for d in [*_STREAM[:2], {"type": "ping"}, _STREAM[5], _STREAM[7]])
    transport = httpx2.MockTransport(
        lambda request: httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=start + data)
    )
    client = anthropic.Anthropic(
        api_key="sk-ant-test",
        base_url="http://proxy.test",
        http_client=httpx2.Client(transport=transport),
        max_retries=0,
    )
    texts = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        stream = client.messages.create(
            model="claude-sonnet-4-6", max_tokens=5, messages=[{"role": "user", "content": "x"}], stream=True
        )
        for event in stream:
            if event.type == "content_block_delta":
                texts.append(event.delta.text)
    assert texts == ["Okay, "]
    assert "Blocked by policy: pii" in str(caught.value)
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "permission_error", "message": "Blocked by policy: pii"},
    }
    assert _feed([sse("error", json.loads(data.split(b"data: ")[1]))]) == [ErrorDelta("Blocked by policy: pii")]


# ---------------------------------------------------------------------------- keys


def test_extract_key_reads_what_the_sdk_sends():
    headers = load_fixture("anthropic_plain")["headers"]
    assert adapter.extract_key({k.lower(): v for k, v in headers.items()}, {}) == "sk-ant-test-capsem"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"x-api-key": " sk-ant-1 "}, "sk-ant-1"),
        ({"x-api-key": "sk-ant-1", "authorization": "Bearer sk-ant-1"}, "sk-ant-1"),
        ({"authorization": "Bearer sk-ant-oauth"}, "sk-ant-oauth"),
        ({"x-api-key": ""}, ""),
        ({"x-api-key": "sk ant"}, ""),
        ({"x-api-key": "sk-\x7fant"}, ""),
        ({"authorization": "Basic abc"}, ""),
        ({"authorization": "Bearer"}, ""),
    ],
)
def test_extract_key_missing_is_none_and_malformed_is_empty(headers, expected):
    assert adapter.extract_key(headers, {}) == expected


def test_two_different_keys_are_refused_as_ambiguous():
    with pytest.raises(ConflictingKeys):
        adapter.extract_key({"x-api-key": "sk-ant-1", "authorization": "Bearer sk-ant-2"}, {})


def test_stream_tool_use_block_that_opens_with_its_input_carries_it():
    start = {"type": "content_block_start", "index": 1,
             "content_block": {"type": "tool_use", "id": "t1", "name": "shell", "input": {"command": "rm -rf /"}}}
    [call] = _feed([_event(start)])
    assert json.loads(call.arguments_fragment) == {"command": "rm -rf /"}
