"""GeminiAdapter: requests captured from google-genai, hand-written answers and streams."""

from __future__ import annotations

import json

import httpx
import pytest
from google import genai
from google.genai import errors, types

from capsem_proxy.errors import ErrorKind
from capsem_proxy.providers.base import ConflictingKeys
from capsem_proxy.providers.gemini import GeminiAdapter
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

adapter = GeminiAdapter()


def _request(name: str):
    fixture = load_fixture(name)
    model, verb = fixture["path"].rsplit("/", 1)[1].split(":")
    operation = {
        "generateContent": "generate",
        "streamGenerateContent": "stream_generate",
        "countTokens": "count_tokens",
    }
    return adapter.decode_request(operation[verb], fixture["body"], model)


def _element(data: dict) -> StreamEvent:
    """A JSON-array stream element (no event name)."""
    text = json.dumps(data)
    return StreamEvent(raw=text.encode() + b",\r\n", data=text)


def _feed(events: list[StreamEvent]) -> list:
    decoder = adapter.stream_decoder("stream_generate")
    return [delta for event in events for delta in decoder.feed(event)]


# ---------------------------------------------------------------------------- requests


def test_plain_generate_content_is_one_user_message_with_model_from_path():
    exchange = _request("gemini_plain")
    assert (exchange.provider, exchange.operation, exchange.model) == ("gemini", "generate", "gemini-2.0-flash")
    assert [(m.role, m.text) for m in exchange.messages] == [("user", "Hello Gemini")]
    assert exchange.stream is False


def test_system_instruction_and_url_safe_inline_image():
    exchange = _request("gemini_system")
    assert exchange.system == "You are a pirate."
    (message,) = exchange.messages
    assert message.text == "Describe this"
    # google-genai sends URL-safe base64 under a camelCase key with a snake_case mime key.
    assert [(m.mime_type, m.data) for m in message.media] == [("image/png", PNG_BYTES)]


def test_function_declarations_from_python_function_and_dict():
    exchange = _request("gemini_tools")
    weather, time = exchange.tools
    assert (weather.name, weather.description) == ("get_weather", "Current weather in a city.")
    assert weather.parameters["properties"] == {"city": {"type": "string"}}  # from parameters_json_schema
    assert (time.name, time.description) == ("get_time", "Current time in a timezone")
    assert time.parameters["properties"] == {"tz": {"type": "STRING"}}


def test_function_call_and_function_response_history():
    exchange = _request("gemini_function_response")
    user, model, tool = exchange.messages
    assert (user.role, user.text) == ("user", "Weather in Paris?")
    (call,) = model.tool_calls
    assert (model.role, call.name, call.arguments) == ("assistant", "get_weather", {"city": "Paris"})
    assert json.loads(call.raw_arguments) == {"city": "Paris"}
    (result,) = tool.tool_results
    assert (tool.role, result.name, result.content) == ("tool", "get_weather", {"result": "sunny"})
    assert result.as_dict() == {"result": "sunny"}


def test_stream_operation_sets_stream_flag():
    exchange = _request("gemini_stream")
    assert (exchange.stream, exchange.prompt) == (True, "Stream a poem")


def test_count_tokens_plain_and_wrapped_in_generate_content_request():
    assert _request("gemini_count_tokens").prompt == "How many tokens?"
    body = {
        "generateContentRequest": {
            "model": "models/gemini-2.5-pro",
            "contents": [{"role": "user", "parts": [{"text": "Wrapped"}]}],
            "systemInstruction": {"parts": [{"text": "Sys"}]},
        }
    }
    exchange = adapter.decode_request("count_tokens", body, "")
    assert (exchange.model, exchange.system, exchange.prompt) == ("gemini-2.5-pro", "Sys", "Wrapped")


def test_snake_case_body_thoughts_file_data_and_ids():
    body = {
        "system_instruction": "Plain string system",
        "contents": [
            {
                "role": "user",
                "parts": [{"text": "Look"}, {"file_data": {"mime_type": "video/mp4", "file_uri": "gs://b/v"}}],
            },
            {
                "role": "model",
                "parts": [
                    {"text": "Pondering", "thought": True},
                    {"function_call": {"id": "fc-1", "name": "search", "args": {"q": "cats"}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"function_response": {"id": "fc-1", "name": "search", "response": {"hits": 3}}},
                    {"text": "Summarise the hits"},
                ],
            },
        ],
        "tools": [
            {"function_declarations": [{"name": "search", "parametersJsonSchema": {"type": "object"}}]},
            {"googleSearch": {}},
            {"codeExecution": {}},
        ],
    }
    exchange = adapter.decode_request("generate", body, "models/gemini-2.5-flash")
    assert exchange.model == "gemini-2.5-flash"
    assert exchange.system == "Plain string system"
    assert [m.role for m in exchange.messages] == ["user", "assistant", "tool", "user"]
    user, model, tool, follow_up = exchange.messages
    assert [(m.mime_type, m.uri) for m in user.media] == [("video/mp4", "gs://b/v")]
    assert (model.thinking, model.text) == ("Pondering", "")
    assert [(c.call_id, c.name, c.arguments) for c in model.tool_calls] == [("fc-1", "search", {"q": "cats"})]
    assert [(r.call_id, r.name, r.content) for r in tool.tool_results] == [("fc-1", "search", {"hits": 3})]
    assert follow_up.text == "Summarise the hits"
    assert [(t.name, t.parameters) for t in exchange.tools] == [("search", {"type": "object"})]


def test_malformed_parts_are_skipped_and_non_object_body_raises():
    body = {
        "contents": [None, 5, {"role": "user", "parts": [None, {"inlineData": "x"}, {"functionCall": 1}, {"text": 2}]}],
        "tools": [None, {"functionDeclarations": [None, {"name": ""}, {"description": "anonymous"}]}],
        "systemInstruction": {"parts": "nope"},
    }
    exchange = adapter.decode_request("generate", body, "gemini-2.0-flash")
    assert [(m.role, m.text, m.media) for m in exchange.messages] == [("user", "", [])]
    # A string where a list of parts belongs is still read as text: whatever reaches the provider is screened.
    assert (exchange.tools, exchange.system) == ([], "nope")
    with pytest.raises(ValueError):
        adapter.decode_request("generate", None, "gemini-2.0-flash")
    assert adapter.decode_request("models", None).messages == []


# ---------------------------------------------------------------------------- answers


def test_generate_content_answer_text_thought_function_call_image_and_usage():
    body = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "Considering options.", "thought": True},
                        {"text": "Here you go."},
                        {"functionCall": {"name": "get_weather", "args": {"city": "Kyoto"}}},
                        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
                "safetyRatings": [],
            }
        ],
        "usageMetadata": {"promptTokenCount": 21, "candidatesTokenCount": 13, "totalTokenCount": 34},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "abc",
    }
    answer = adapter.decode_answer("generate", body)
    assert (answer.text, answer.thinking) == ("Here you go.", "Considering options.")
    assert [(c.name, c.arguments) for c in answer.tool_calls] == [("get_weather", {"city": "Kyoto"})]
    assert [(m.mime_type, m.data) for m in answer.media] == [("image/png", b"\x89PNG\r\n\x1a\n")]
    assert answer.finish_reason == "STOP"
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (21, 13)


def test_blocked_prompt_answer_reports_block_reason():
    body = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 8}}
    answer = adapter.decode_answer("generate", body)
    assert (answer.text, answer.finish_reason, answer.usage.input_tokens) == ("", "SAFETY", 8)


@pytest.mark.parametrize("operation", ["generate", "count_tokens", "models"])
@pytest.mark.parametrize(
    "body", [None, [], {"candidates": "x"}, {"candidates": [None]}, {"candidates": [{"content": 1}]}]
)
def test_odd_answer_shapes_never_raise(operation, body):
    answer = adapter.decode_answer(operation, body)
    assert (answer.text, answer.tool_calls) == ("", [])


def test_count_tokens_answer_is_empty():
    assert adapter.decode_answer("count_tokens", {"totalTokens": 31}).usage.input_tokens is None


# ---------------------------------------------------------------------------- streams

_CHUNKS = [
    {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Weighing it", "thought": True}]}, "index": 0}],
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
        "modelVersion": "gemini-2.5-flash",
    },
    {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Roses are "}]}, "index": 0}],
        "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 3, "totalTokenCount": 12},
    },
    {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "red."},
                        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                        {"functionCall": {"id": "fc2", "name": "get_time", "args": {}}},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 20, "totalTokenCount": 29},
    },
]


def test_sse_stream_deltas_in_order_with_complete_tool_calls():
    deltas = _feed([sse(None, chunk) for chunk in _CHUNKS])
    assert deltas == [
        ThinkingDelta("Weighing it"),
        UsageDelta(9, None),
        TextDelta("Roses are "),
        UsageDelta(9, 3),
        TextDelta("red."),
        ToolCallDelta(index=0, name="get_weather", arguments_fragment='{"city":"Paris"}'),
        ToolCallDelta(index=1, call_id="fc2", name="get_time", arguments_fragment="{}"),
        FinishDelta("STOP"),
        UsageDelta(9, 20),
    ]


def test_json_array_stream_elements_decode_the_same_as_sse():
    assert _feed([_element(chunk) for chunk in _CHUNKS]) == _feed([sse(None, chunk) for chunk in _CHUNKS])
    assert assemble(_feed([_element(chunk) for chunk in _CHUNKS]))["text"] == "Roses are red."


def test_tool_call_indexes_keep_counting_across_events():
    call = {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {"n": 1}}}]}}]}
    deltas = _feed([sse(None, call), sse(None, call)])
    assert [(d.index, d.name) for d in deltas] == [(0, "f"), (1, "f")]


def test_stream_error_object_is_an_error_delta():
    error = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    assert _feed([sse(None, error)]) == [ErrorDelta("The model is overloaded.")]


def test_stream_ignores_empty_events_and_odd_shapes():
    decoder = adapter.stream_decoder("stream_generate")
    for data in ["", "[]", '{"candidates": [null, {"content": {"parts": [7]}}]}']:
        assert decoder.feed(sse(None, data)) == []


def test_stream_event_that_is_no_response_object_is_unreadable():
    decoder = adapter.stream_decoder("stream_generate")
    for data in ["not json", "3", "[1]"]:
        [unreadable] = decoder.feed(sse(None, data))
        assert isinstance(unreadable, UnreadableDelta), data


def test_stream_reads_numbers_orjson_refuses_like_the_sdk_does():
    data = '{"x": 1e999, "candidates": [{"content": {"parts": [{"text": "read anyway"}]}}]}'
    assert adapter.stream_decoder("stream_generate").feed(sse(None, data)) == [TextDelta("read anyway")]


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kind", "status", "rpc"),
    [
        (ErrorKind.INVALID_REQUEST, 400, "INVALID_ARGUMENT"),
        (ErrorKind.AUTHENTICATION, 401, "UNAUTHENTICATED"),
        (ErrorKind.PERMISSION, 403, "PERMISSION_DENIED"),
        (ErrorKind.NOT_FOUND, 404, "NOT_FOUND"),
        (ErrorKind.TOO_LARGE, 413, "INVALID_ARGUMENT"),
        (ErrorKind.RATE_LIMIT, 429, "RESOURCE_EXHAUSTED"),
        (ErrorKind.INTERNAL, 500, "INTERNAL"),
        (ErrorKind.UPSTREAM_UNAVAILABLE, 502, "UNAVAILABLE"),
        (ErrorKind.UNAVAILABLE, 503, "UNAVAILABLE"),
        (ErrorKind.TIMEOUT, 504, "DEADLINE_EXCEEDED"),
        ("unknown", 429, "RESOURCE_EXHAUSTED"),
        ("unknown", 599, "INTERNAL"),
    ],
)
def test_error_payload_status_name_by_kind(kind, status, rpc):
    assert adapter.error_payload(status, "nope", kind) == {"error": {"code": status, "message": "nope", "status": rpc}}


def test_sse_stream_error_event_bytes_and_the_sdk_raises():
    data = adapter.stream_error_event("stream_generate", 403, "Blocked by policy", ErrorKind.PERMISSION, sse=True)
    assert data == b'data: {"error":{"code":403,"message":"Blocked by policy","status":"PERMISSION_DENIED"}}\r\n\r\n'
    first = b"data: " + json.dumps(_CHUNKS[1]).encode() + b"\r\n\r\n"
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=first + data)
    )
    client = genai.Client(
        api_key="AIza-test",
        http_options=types.HttpOptions(base_url="http://proxy.test", httpx_client=httpx.Client(transport=transport)),
    )
    texts = []
    with pytest.raises(errors.APIError) as caught:
        for chunk in client.models.generate_content_stream(model="gemini-2.0-flash", contents="x"):
            texts.append(chunk.text)
    assert texts == ["Roses are "]
    assert (caught.value.code, caught.value.status, caught.value.message) == (
        403,
        "PERMISSION_DENIED",
        "Blocked by policy",
    )
    assert _feed([sse(None, data[6:].decode().strip())]) == [ErrorDelta("Blocked by policy")]


def test_json_array_stream_error_element_is_the_bare_object():
    data = adapter.stream_error_event("stream_generate", 504, "Upstream timed out", ErrorKind.TIMEOUT, sse=False)
    assert json.loads(data) == {"error": {"code": 504, "message": "Upstream timed out", "status": "DEADLINE_EXCEEDED"}}
    array = b"[" + json.dumps(_CHUNKS[1]).encode() + b",\r\n" + data + b"]"
    assert json.loads(array)[1]["error"]["status"] == "DEADLINE_EXCEEDED"


# ---------------------------------------------------------------------------- keys


def test_extract_key_reads_the_header_the_sdk_sends():
    headers = load_fixture("gemini_plain")["headers"]
    assert adapter.extract_key({k.lower(): v for k, v in headers.items()}, {}) == "AIza-test-capsem"


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        ({}, {}, None),
        ({"x-goog-api-key": " AIza1 "}, {"key": "AIza1"}, "AIza1"),
        ({}, {"key": "AIza2"}, "AIza2"),
        ({"x-goog-api-key": "AIza 1"}, {}, ""),
        ({"x-goog-api-key": ""}, {}, ""),
        ({}, {"key": ""}, ""),
        ({}, {"key": "AIza\n"}, "AIza"),
        ({}, {"key": "AI\tza"}, ""),
        ({"authorization": "Bearer ya29.token"}, {}, None),
    ],
)
def test_extract_key_missing_is_none_and_malformed_is_empty(headers, query, expected):
    assert adapter.extract_key(headers, query) == expected


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"x-goog-api-key": "AIza1"}, {"key": "AIza2"}),
        ({"x-goog-api-key": "AIza1", "authorization": "Bearer ya29.token"}, {}),
        ({"authorization": "Bearer ya29.token"}, {"key": "AIza1"}),
    ],
)
def test_two_different_credentials_are_refused_as_ambiguous(headers, query):
    with pytest.raises(ConflictingKeys):
        adapter.extract_key(headers, query)
